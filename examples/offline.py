"""
What offline RL is for, in a few minutes on a laptop: IQL against behaviour cloning on mixed-quality data.

The example builds a small Pendulum dataset in which half the episodes are good swing-ups and half are
random, trains behaviour cloning and IQL on it for the same number of gradient steps, and prints the
data's average, BC and IQL as normalized scores (0 = random, 100 = the controller), each over enough
evaluation episodes to trust; it also writes a PNG of both learning curves.

    python examples/offline.py [--steps 5000] [--eval-episodes 30]
"""

import argparse

import numpy as np
from pendulum_data import data_score, make_dataset

from sb3_iql import IQL, IQLEvalCallback


def train(name: str, dataset, steps: int, eval_episodes: int, seed: int, **hyperparameters) -> list[dict]:
    """Train offline (no env: the dataset gives the spaces) and evaluate along the way in the dataset's env."""
    model = IQL("MlpPolicy", None, seed=seed, **hyperparameters)
    env = dataset.recover_environment()
    env.reset(seed=seed + 1000)
    evaluation = IQLEvalCallback(env, dataset, eval_freq=max(steps // 10, 1), n_eval_episodes=eval_episodes)
    print(f"training {name} for {steps} gradient steps")
    model.learn_offline(dataset, steps, callback=evaluation, progress_bar=True)
    model.save(f"{name.lower()}_pendulum_offline")
    return evaluation.evaluations


def plot(curves: dict[str, list[dict]], data: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for name, evaluations in curves.items():
        axis.plot([e["timesteps"] for e in evaluations], [e["normalized_score"] for e in evaluations], marker="o", label=name)
    axis.axhline(data, color="grey", linestyle="--", label="data average")
    axis.set(xlabel="gradient steps", ylabel="normalized score", title="Pendulum, mixed-quality data")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000, help="offline gradient steps for each of BC and IQL")
    parser.add_argument("--eval-episodes", type=int, default=30, help="episodes per evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="offline_pendulum.png", help="where to write the learning curves")
    args = parser.parse_args()

    dataset = make_dataset()
    data = data_score(dataset)
    print(f"dataset {dataset.spec.dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps} transitions")
    hyperparameters = IQL.paper_hyperparameters("locomotion")
    curves = {
        "BC": train(
            "BC", dataset, args.steps, args.eval_episodes, args.seed, **{**hyperparameters, "beta": 0.0, "reward_scale": 1.0}
        ),
        "IQL": train("IQL", dataset, args.steps, args.eval_episodes, args.seed, **hyperparameters),
    }
    plot(curves, data, args.plot)
    print(f"\nnormalized score (0 random, 100 controller), {args.eval_episodes} episodes each, after {args.steps} steps:")
    print(f"| {'':12s} | score |\n|{'-' * 14}|-------|\n| {'data average':12s} | {data:5.1f} |")
    for name, evaluations in curves.items():
        last = evaluations[-1]
        stderr = last["std_reward"] / np.sqrt(args.eval_episodes)
        print(f"| {name:12s} | {last['normalized_score']:5.1f} |  (return {last['mean_reward']:.0f} ± {stderr:.0f} s.e.)")
    print(f"learning curves: {args.plot}; models: bc_pendulum_offline.zip, iql_pendulum_offline.zip")


if __name__ == "__main__":
    main()
