"""
The paper's Figure 3 from the runners' rows: AntMaze success against gradient steps, left for expectile 0.5 /
0.7 / 0.9, right for expectile 0.9 with the minimum of the twin critics (clipped double Q) or their mean.

    python benchmarks/offline.py sb3-iql/antmaze-d4rl/medium-play-v0 --algos iql iql-tau0.5 iql-tau0.7 iql-mean-q \\
        --seeds 2 --offline-steps 300000 --eval-freq 50000 --eval-episodes 100 --compile --out out/figure3
    python benchmarks/figure3.py out/figure3/runs/*/*/seed*/evaluations.csv --out benchmarks/results/figure3

Reads any number of the runners' CSVs (one dataset). Writes ``figure3.png`` and ``figure3.md``: success rate at each
evaluation, mean ± standard error over seeds (the error of the mean, as the paper's shaded curves).
"""

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from protocol.reports import typed_rows
from protocol.runs import read_rows

PANELS = {
    "expectile (paper: a larger one is crucial on AntMaze)": {"iql-tau0.5": "0.5", "iql-tau0.7": "0.7", "iql": "0.9"},
    "expectile 0.9 (paper: clipped double Q is crucial)": {"iql": "min of twin critics", "iql-mean-q": "mean of twin critics"},
}


def curves(rows: list[dict]) -> dict[str, dict[int, list[float]]]:
    """:return: Per algo, per step, the seeds' scores (a row found in two files counts once)."""
    score = {(row["algo"], row["step"], row["seed"]): row["normalized_score"] for row in rows}
    by_algo: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (algo, step, _), value in sorted(score.items()):
        by_algo[algo][step].append(value)
    return by_algo


def standard_error(scores: list[float]) -> float:
    """:return: The standard error of the seeds' mean (0 for one seed)."""
    return float(np.std(scores, ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else 0.0


def mean_error(scores: list[float]) -> str:
    """:return: ``"mean ± standard error (n seeds)"``; one seed's score alone (one seed has no spread to show)."""
    if len(scores) == 1:
        return f"{scores[0]:.1f} (1)"
    return f"{np.mean(scores):.1f} ± {standard_error(scores):.1f} ({len(scores)})"


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
            errors = np.array([standard_error(by_algo[algo][step]) for step in steps])
            axis.plot(steps, means, marker="o", label=label)
            axis.fill_between(steps, means - errors, means + errors, alpha=0.2)
        axis.set(title=title, xlabel="gradient steps")
        axis.title.set_fontsize(9)
        axis.legend(fontsize=8)
    axes[0].set_ylabel("success rate (%)")
    figure.suptitle(dataset, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evaluations", nargs="+", help="the runners' evaluations.csv files (one dataset)")
    parser.add_argument("--out", default="benchmarks/results/figure3", help="output folder")
    args = parser.parse_args()
    rows = typed_rows([row for path in args.evaluations for row in read_rows(Path(path))])
    datasets = sorted({row["dataset"] for row in rows})
    if len(datasets) != 1:
        raise SystemExit(f"Figure 3 is drawn on one dataset; these files hold {datasets}: pass one dataset's files.")
    dataset = datasets[0]
    by_algo = curves(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(by_algo, dataset, out / "figure3.png")
    lines = [
        f"# Figure 3 on `{dataset}`",
        "",
        "Success rate (%), mean ± standard error over seeds (number of seeds).",
        "",
        "| setting | " + " | ".join(f"{s:,} steps" for s in sorted(by_algo["iql"])) + " |",
    ]
    lines.append("|---|" + "---|" * len(by_algo["iql"]))
    for algos in PANELS.values():
        for algo, label in algos.items():
            if algo in by_algo:
                cells = [mean_error(scores) for _, scores in sorted(by_algo[algo].items())]
                lines.append(f"| {algo} ({label}) | " + " | ".join(cells) + " |")
    (out / "figure3.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
