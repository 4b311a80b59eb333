"""
Discrete-action IQL against behaviour cloning on mixed-quality data (``sb3_iql.datasets.discrete``).

    python benchmarks/diagnostics/discrete.py --steps 10000 --seeds 3

Builds ``sb3-iql/cartpole/mixed-v0`` and ``sb3-iql/acrobot/mixed-v0`` where they are missing, trains IQL
(defaults: expectile 0.7, beta 3) and BC (IQL's actor with every advantage weight 1: ``beta=0``) on each
for ``--steps`` gradient steps and several seeds, evaluates every ``--eval-freq`` steps (deterministic,
``--eval-episodes`` episodes) and writes ``<out>/evaluations.csv``, ``<out>/discrete.md`` and ``<out>/curves.png``.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import minari
import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the runners' protocol package
from protocol import mean_std, write_markdown

from sb3_iql import IQL, IQLEvalCallback
from sb3_iql.data.scores import episode_scores
from sb3_iql.datasets import build

ALGOS = {"iql": {}, "bc": {"beta": 0.0}}


def dataset(task: str) -> minari.MinariDataset:
    dataset_id = f"sb3-iql/{task}/mixed-v0"
    if dataset_id not in minari.list_local_datasets():
        build(f"{task}-mixed")
    return minari.load_dataset(dataset_id)


def run(data: minari.MinariDataset, algo: str, seed: int, steps: int, eval_freq: int, eval_episodes: int) -> list[dict]:
    """:return: One row per evaluation of one (algorithm, dataset, seed)."""
    model = IQL("MlpPolicy", None, seed=seed, device="cpu", **ALGOS[algo])
    evaluation = IQLEvalCallback(data.recover_environment(), data, eval_freq, eval_episodes)
    evaluation.eval_env.seed(seed)
    started = time.perf_counter()
    model.learn_offline(data, steps, callback=evaluation)
    print(
        f"{algo} {data.spec.dataset_id} seed {seed}: {time.perf_counter() - started:.0f} s, final {evaluation.evaluations[-1]}"
    )
    return [
        {"algo": algo, "dataset": data.spec.dataset_id, "seed": seed, "step": int(result["timesteps"]),
         "normalized_score": result["normalized_score"], "mean_reward": result["mean_reward"]}
        for result in evaluation.evaluations
    ]  # fmt: skip


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({row["dataset"] for row in rows})
    figure, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.5), squeeze=False)
    for axis, name in zip(axes.flat, datasets):
        for algo in ALGOS:
            steps = sorted({row["step"] for row in rows if row["dataset"] == name and row["algo"] == algo})
            scores = [
                [r["normalized_score"] for r in rows if (r["dataset"], r["algo"], r["step"]) == (name, algo, s)] for s in steps
            ]
            means, stds = np.array([np.mean(s) for s in scores]), np.array([np.std(s) for s in scores])
            axis.plot(steps, means, label=algo.upper())
            axis.fill_between(steps, means - stds, means + stds, alpha=0.2)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("gradient step")
        axis.set_ylabel("normalized score")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["cartpole", "acrobot"])
    parser.add_argument("--steps", type=int, default=10_000, help="gradient steps per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-freq", type=int, default=2_000)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results/discrete")
    args = parser.parse_args()
    th.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    lines = ["| dataset | data's episodes | BC | IQL | IQL - BC |", "|---|---|---|---|---|"]
    for task in args.tasks:
        data = dataset(task)
        for algo in ALGOS:
            for seed in range(args.seeds):
                rows += run(data, algo, seed, args.steps, args.eval_freq, args.eval_episodes)
        final = {
            algo: [
                r["normalized_score"]
                for r in rows
                if (r["dataset"], r["algo"], r["step"]) == (data.spec.dataset_id, algo, args.steps)
            ]
            for algo in ALGOS
        }
        lines.append(
            f"| {data.spec.dataset_id} | {np.mean(episode_scores(data)):.1f} | {mean_std(final['bc'])} | {mean_std(final['iql'])} "
            f"| {np.mean(final['iql']) - np.mean(final['bc']):+.1f} |"
        )
    with open(out / "evaluations.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "curves.png")
    lines.append(
        f"\nnormalized score (0: the bad policy, 100: the good controller) after {args.steps} gradient steps, "
        f"{args.eval_episodes} deterministic episodes, mean ± std over {args.seeds} seeds"
    )
    write_markdown(out, "discrete.md", lines)


if __name__ == "__main__":
    main()
