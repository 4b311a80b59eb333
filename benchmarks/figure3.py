"""
The paper's Figure 3 from the runners' rows: AntMaze success against gradient steps, left for expectile 0.5 /
0.7 / 0.9, right for expectile 0.9 with the minimum of the twin critics (clipped double Q) or their mean.

    python benchmarks/offline.py sb3-iql/antmaze/umaze-diverse-v1 --algos iql iql-tau0.5 iql-tau0.7 iql-mean-q \\
        --seeds 1 --offline-steps 100000 --eval-freq 50000 --eval-episodes 100 --compile --out out/figure3
    python benchmarks/figure3.py out/figure3/evaluations.csv --out benchmarks/results/figure3

Writes ``figure3.png`` and ``figure3.md`` (final success rates, mean ± std over seeds).
"""

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from protocol.reports import mean_std, typed_rows
from protocol.runs import read_rows

PANELS = {
    "expectile (paper: a larger one is crucial on AntMaze)": {"iql-tau0.5": "0.5", "iql-tau0.7": "0.7", "iql": "0.9"},
    "expectile 0.9 (paper: clipped double Q is crucial)": {"iql": "min of twin critics", "iql-mean-q": "mean of twin critics"},
}


def curves(rows: list[dict]) -> dict[str, dict[int, list[float]]]:
    """:return: Per algo, per step, the seeds' scores."""
    by_algo: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_algo[row["algo"]][row["step"]].append(row["normalized_score"])
    return by_algo


def plot(by_algo: dict[str, dict[int, list[float]]], dataset: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for axis, (title, algos) in zip(axes, PANELS.items()):
        for algo, label in algos.items():
            if algo not in by_algo:
                continue
            steps = sorted(by_algo[algo])
            means = np.array([np.mean(by_algo[algo][step]) for step in steps])
            stds = np.array([np.std(by_algo[algo][step]) for step in steps])
            axis.plot(steps, means, marker="o", label=label)
            axis.fill_between(steps, means - stds, means + stds, alpha=0.2)
        axis.set(title=title, xlabel="gradient steps")
        axis.title.set_fontsize(9)
        axis.legend(fontsize=8)
    axes[0].set_ylabel(f"success rate (%), {dataset}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evaluations", help="the runners' evaluations.csv")
    parser.add_argument("--out", default="benchmarks/results/figure3", help="output folder")
    args = parser.parse_args()
    rows = typed_rows(read_rows(Path(args.evaluations)))
    dataset = rows[0]["dataset"]
    by_algo = curves(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(by_algo, dataset, out / "figure3.png")
    lines = [
        f"# Figure 3 on `{dataset}`",
        "",
        "| setting | " + " | ".join(f"{s:,} steps" for s in sorted(by_algo["iql"])) + " |",
    ]
    lines.append("|---|" + "---|" * len(by_algo["iql"]))
    for algos in PANELS.values():
        for algo, label in algos.items():
            if algo in by_algo:
                cells = [mean_std(scores) for _, scores in sorted(by_algo[algo].items())]
                lines.append(f"| {algo} ({label}) | " + " | ".join(cells) + " |")
    (out / "figure3.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
