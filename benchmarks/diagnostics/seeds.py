"""
Seeds trained together score like seeds trained apart: ``IQL.learn_offline_seeds`` against one ``learn_offline`` per
seed, on the README example's Pendulum data (half swing-ups, half random), same steps and evaluation.

    python benchmarks/diagnostics/seeds.py --seeds 4 --steps 5000 --eval-episodes 30 --out benchmarks/results/seeds

Writes ``seeds.csv`` (one row per seed and way) and ``seeds.md`` (per-seed scores, means, wall times).
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from pendulum_data import data_score, make_dataset

from sb3_iql import IQL
from sb3_iql.data.scores import normalized_score


def score(model: IQL, dataset, episodes: int, seed: int) -> float:
    """Mean normalized score of the deterministic policy over ``episodes`` episodes of the dataset's env."""
    env = dataset.recover_environment()
    env.reset(seed=seed + 1000)
    returns, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True)
    return float(np.mean(normalized_score(dataset, np.asarray(returns))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4, help="number of seeds (0, 1, ...)")
    parser.add_argument("--steps", type=int, default=5000, help="offline gradient steps of each seed")
    parser.add_argument("--eval-episodes", type=int, default=30, help="evaluation episodes of each final policy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/seeds", help="output folder")
    args = parser.parse_args()
    dataset = make_dataset()
    kwargs = {**IQL.paper_hyperparameters("locomotion"), "device": args.device}
    seeds = list(range(args.seeds))

    start = time.perf_counter()
    together = IQL.learn_offline_seeds(seeds, "MlpPolicy", None, dataset, args.steps, log_interval=0, **kwargs)
    seconds = {"together": time.perf_counter() - start}
    start = time.perf_counter()
    apart = [IQL("MlpPolicy", None, seed=seed, **kwargs).learn_offline(dataset, args.steps, log_interval=0) for seed in seeds]
    seconds["apart"] = time.perf_counter() - start

    rows = [
        {"way": way, "seed": seed, "normalized_score": score(model, dataset, args.eval_episodes, seed)}
        for way, models in (("together", together), ("apart", apart))
        for seed, model in zip(seeds, models)
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "seeds.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, ["way", "seed", "normalized_score"])
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# {args.seeds} seeds together (`IQL.learn_offline_seeds`) and apart (`learn_offline` each)",
        "",
        f"Data: the README example's Pendulum data (data score {data_score(dataset):.1f}); {args.steps} gradient steps per "
        f"seed, locomotion presets; {args.eval_episodes} deterministic evaluation episodes per final policy; "
        f"{args.device}, torch {th.__version__}, {th.get_num_threads()} thread(s).",
        "",
        "| way | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean ± std | wall time |",
        "|---|" + "---|" * len(seeds) + "---|---|",
    ]
    for way in ("together", "apart"):
        scores = [row["normalized_score"] for row in rows if row["way"] == way]
        cells = " | ".join(f"{value:.1f}" for value in scores)
        lines.append(f"| {way} | {cells} | {np.mean(scores):.1f} ± {np.std(scores):.1f} | {seconds[way]:.0f} s |")
    command = f"python benchmarks/diagnostics/seeds.py --seeds {args.seeds} --steps {args.steps} --eval-episodes {args.eval_episodes}"
    lines += ["", f"Command: `{command} --out {args.out}`"]
    (out / "seeds.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
