"""Reports: evaluation rows read back, final scores, CSV, markdown and learning-curve PNGs."""

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from protocol.runs import EVAL_FIELDS, RunSpec, read_rows

ALGOS = ("iql", "bc", "bc10", "iql-naive", "iql-relabel", "iql-tau0.5", "iql-tau0.7", "iql-mean-q")
ALGO_TITLES = {
    "iql": "IQL (ours)",
    "bc": "BC",
    "bc10": "10% BC",
    "iql-naive": "IQL, data as recorded",
    "iql-relabel": "IQL, relabelled to the fixed goal",
    "iql-tau0.5": "IQL, expectile 0.5",
    "iql-tau0.7": "IQL, expectile 0.7",
    "iql-mean-q": "IQL, mean of the twin critics",
}


def collect_rows(specs: Sequence[RunSpec]) -> list[dict[str, Any]]:
    return typed_rows([row for spec in specs for row in read_rows(spec.directory / "evaluations.csv")])


def typed_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluation rows as read from a CSV, with their numbers as numbers (a missing score as NaN)."""
    for row in rows:
        row["seed"], row["step"] = int(row["seed"]), int(row["step"])
        for field in ("normalized_score", "success_rate"):
            row[field] = float(row[field]) if row.get(field, "") != "" else math.nan
    return rows


def final_scores(
    rows: Sequence[dict[str, Any]], phase: str, field: str = "normalized_score"
) -> dict[tuple[str, str], dict[int, float]]:
    """:return: ``{(algo, dataset): {seed: field (the normalized score) at the phase's last evaluation}}``."""
    last: dict[tuple[str, str, int], tuple[int, float]] = {}
    for row in rows:
        if row["phase"] == phase:
            key = (row["algo"], row["dataset"], row["seed"])
            if key not in last or row["step"] >= last[key][0]:
                last[key] = (row["step"], row.get(field, math.nan))
    scores: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for (algo, dataset, seed), (_, score) in last.items():
        scores[(algo, dataset)][seed] = score
    return scores


def mean_std(values: Sequence[float], standard_error: bool = False) -> str:
    """
    ``"mean ± std"`` over seeds, or with ``standard_error`` ``"mean ± standard error"`` (the std with one degree of
    freedom less, over the square root of the seeds: for two seeds the same number); a single seed's score alone (a
    spread of one seed is no spread); ``"-"`` if none.
    """
    if len(values) == 0:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    spread = np.std(values, ddof=1) / math.sqrt(len(values)) if standard_error else np.std(values)
    return f"{np.mean(values):.1f} ± {spread:.1f}"


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, EVAL_FIELDS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: (row["algo"], row["dataset"], row["seed"], row["step"])))


def write_markdown(out: str | Path, name: str, lines: Sequence[str]) -> None:
    """Print a markdown table and write it to ``<out>/<name>`` (the folder made if need be)."""
    markdown = "\n".join(lines)
    path = Path(out) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown + "\n")
    print(markdown)
    print(f"\nWrote {path}")


def column_table(columns: dict[str, dict[str, str]]) -> list[str]:
    """:return: Markdown lines of a table with a column per key of ``columns`` (in code), a row per measure of theirs."""
    names = list(next(iter(columns.values())))
    return [
        "| | " + " | ".join(f"`{title}`" for title in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
        *(f"| {name} | " + " | ".join(column[name] for column in columns.values()) + " |" for name in names),
    ]


def planner_cell(result: dict[str, float]) -> str:
    """:return: A ``planner_success`` result as one table cell: ``success / fell over / median steps``."""
    return f"{100 * result['success_rate']:.0f}% / {100 * result['fell_over']:.0f}% / {result['median_steps']:.0f}"


def plot_curves(path: Path, rows: Sequence[dict[str, Any]], title: str, boundary: int | None = None) -> None:
    """
    One panel per dataset: normalized score against steps, mean ± std over seeds, a line per algorithm (or per
    ``row["series"]`` where the rows name one, e.g. the protocol a set of runs followed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({row["dataset"] for row in rows})
    columns = min(3, len(datasets))
    figure, axes = plt.subplots(
        math.ceil(len(datasets) / columns),
        columns,
        figsize=(5 * columns, 3.5 * math.ceil(len(datasets) / columns)),
        squeeze=False,
    )
    named = {row.get("series", row["algo"]) for row in rows}
    series = [algo for algo in ALGOS if algo in named] + sorted(named - set(ALGOS))
    for axis, dataset in zip(axes.flat, datasets):
        for line in series:
            curve: dict[int, list[float]] = defaultdict(list)
            for row in rows:
                if row["dataset"] == dataset and row.get("series", row["algo"]) == line:
                    curve[row["step"]].append(row["normalized_score"])
            if curve:
                steps = np.array(sorted(curve))
                means = np.array([np.mean(curve[s]) for s in steps])
                stds = np.array([np.std(curve[s]) for s in steps])
                axis.plot(steps, means, label=ALGO_TITLES.get(line, line))
                axis.fill_between(steps, means - stds, means + stds, alpha=0.2)
        if boundary:
            axis.axvline(boundary, color="grey", linestyle="--", linewidth=1)
        axis.set_title(dataset, fontsize=9)
        axis.set_xlabel("step")
        axis.set_ylabel("normalized score")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(datasets) :]:
        axis.set_visible(False)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
