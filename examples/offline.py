"""Train IQL offline on a small Pendulum dataset that this example builds itself, and evaluate it.

python examples/offline.py --steps 5000
"""

import argparse

from pendulum_data import data_score, make_dataset

from sb3_iql import IQL, IQLEvalCallback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000, help="offline gradient steps")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dataset = make_dataset()
    dataset_score = data_score(dataset)
    print(
        f"dataset {dataset.spec.dataset_id}: {dataset.total_steps} transitions, normalized score of the data {dataset_score:.1f}"
    )

    # No env needed to train: the dataset gives the spaces; its recorded env evaluates.
    model = IQL("MlpPolicy", None, seed=args.seed, verbose=0, **IQL.paper_hyperparameters("locomotion"))
    evaluation = IQLEvalCallback(
        dataset.recover_environment(), dataset, eval_freq=max(args.steps // 5, 1), n_eval_episodes=args.eval_episodes
    )
    model.learn_offline(dataset, total_timesteps=args.steps, callback=evaluation, progress_bar=True)
    for result in evaluation.evaluations:
        print(
            f"step {int(result['timesteps']):>7}: return {result['mean_reward']:8.1f}, normalized score {result['normalized_score']:6.1f}"
        )
    model.save("iql_pendulum_offline")
    print(
        f"IQL offline normalized score {evaluation.evaluations[-1]['normalized_score']:.1f} (data {dataset_score:.1f}); saved to iql_pendulum_offline.zip"
    )


if __name__ == "__main__":
    main()
