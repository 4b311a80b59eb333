"""
Table 2 as this project has run it: the finetuning runs' evaluations (the rows ``finetune.py`` writes, one CSV
per run, committed as they grow) beside the paper's IQL, CORL's published IQL and the data's own score.

    python benchmarks/table2.py benchmarks/results/table2/*_seed*.csv --out benchmarks/results/table2

Per task: the protocol each run actually ran (offline gradient steps + online environment steps reached, so a
shortened or unfinished run says so), ours offline -> online on the normalized scale (the last evaluation of each
phase, mean ± std over seeds), the success rate, the paper's and CORL's numbers, and the mean normalized score of
the dataset's own episodes where the dataset is local. Writes ``table2.md`` and ``curves.png`` (every run's
normalized score against total steps, offline and online on one axis).
"""

import argparse
import csv
import math
from collections import defaultdict
from pathlib import Path

import minari
from protocol import PAPER, data_score, final_scores, mean_std, paper_name, plot_curves, typed_rows, write_markdown

FULL_PROTOCOL = 1_000_000


def read_runs(paths: list[str]) -> list[dict]:
    """:return: The evaluation rows of every CSV, numbers as numbers."""
    rows = []
    for path in paths:
        with open(path, newline="") as handle:
            rows += list(csv.DictReader(handle))
    if not rows:
        raise SystemExit(f"No evaluation rows in {paths}: pass the CSVs finetune.py wrote (evaluations.csv).")
    return typed_rows(rows)


def protocol_run(rows: list[dict]) -> str:
    """:return: The steps a task's runs reached: offline gradient steps + online environment steps."""
    offline = max((row["step"] for row in rows if row["phase"] == "offline"), default=0)
    online = max((row["step"] for row in rows if row["phase"] == "online"), default=offline) - offline
    full = offline >= FULL_PROTOCOL and online >= FULL_PROTOCOL
    return f"{offline / 1e3:,.0f}k + {online / 1e3:,.0f}k" + ("" if full else " (short of 1M + 1M)")


def published(table: str, name: str | None) -> str:
    scores = PAPER[table].get(name) if name else None
    return f"{scores[0]:.1f} → {scores[1]:.1f}" if scores else "-"


def local_data_score(dataset_id: str) -> str:
    """:return: The dataset's own episodes' mean normalized score, where the dataset is local."""
    if dataset_id not in minari.list_local_datasets():
        return "(not local)"
    score = data_score(dataset_id)
    return "-" if score is None else f"{score:.1f}"


def table(rows: list[dict]) -> list[str]:
    offline, online = final_scores(rows, "offline"), final_scores(rows, "online")
    success = {phase: final_scores(rows, phase, "success_rate") for phase in ("offline", "online")}
    lines = [
        "| task | protocol run | seeds | data's episodes | IQL, paper | IQL, CORL (D4RL v2) | IQL, ours (normalized) "
        "| ours: success rate (%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_dataset[row["dataset"]].append(row)
    for dataset, runs in by_dataset.items():
        name = paper_name(dataset)
        key = ("iql", dataset)
        ours = f"{mean_std(list(offline.get(key, {}).values()))} → {mean_std(list(online.get(key, {}).values()))}"
        rates = [[100 * rate for rate in success[phase].get(key, {}).values()] for phase in ("offline", "online")]
        rate = "-" if all(math.isnan(r) for part in rates for r in part) else f"{mean_std(rates[0])} → {mean_std(rates[1])}"
        seeds = len({row["seed"] for row in runs})
        lines.append(
            f"| {name or dataset} | {protocol_run(runs)} | {seeds} | {local_data_score(dataset)} | "
            f"{published('table2', name)} | {published('corl_table2', name)} | {ours} | {rate} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="evaluation CSVs written by finetune.py")
    parser.add_argument("--out", default="runs/table2")
    args = parser.parse_args()
    rows = [row for row in read_runs(args.runs) if row["algo"] == "iql"]
    write_markdown(args.out, "table2.md", table(rows))
    plot_curves(Path(args.out) / "curves.png", rows, "Table 2 runs: offline, then online (dashed: 1M)", boundary=FULL_PROTOCOL)
    print(f"Wrote {Path(args.out) / 'curves.png'}")


if __name__ == "__main__":
    main()
