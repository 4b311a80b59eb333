"""
Table 2 as this project has run it: the finetuning runs' evaluations (the rows ``finetune.py`` writes, one CSV
per run, committed as they grow) beside the paper's IQL, CORL's published IQL and the data's own score.

    python benchmarks/table2.py benchmarks/results/table2/*_seed*.csv --out benchmarks/results/table2

Per task: the protocol each run actually ran (offline gradient steps + online environment steps reached, so a
shortened or unfinished run says so), ours offline -> online on the normalized scale (the last evaluation of each
phase, mean ± standard error over seeds), the success rate, the paper's and CORL's numbers, and the mean normalized score of
the dataset's own episodes where the dataset is local; a task of the paper's Table 2 without a run says "not run
yet". Writes ``table2.md``, ``glance.md`` (one line a task: its best protocol reached, ours beside the paper's,
with a link to the run's probe note or CSV, written for the README: the links are relative to the repository root)
and ``curves.png`` (every run's normalized score against total steps, offline and online
on one axis). The data's scores are recorded in ``data_scores.json`` beside the table, so a machine without a
dataset keeps its number; ``--readme README.md`` replaces the README's copy of ``glance.md``.
"""

import argparse
import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import minari
from protocol import PAPER, data_score, final_scores, mean_std, paper_name, plot_curves, typed_rows, write_markdown

from sb3_iql.data.readers import load_minari_dataset

FULL_PROTOCOL = 1_000_000
TABLE_START = "| task | protocol run |"  # how the table's header begins
GLANCE_START = "| task | IQL, ours |"  # how the glance table's header begins (the README's copy)


def read_runs(paths: list[str]) -> list[dict]:
    """:return: The evaluation rows of every CSV, numbers as numbers, each with the file it came from (``run``)."""
    rows = []
    for path in paths:
        with open(path, newline="") as handle:
            rows += [{**row, "run": path} for row in csv.DictReader(handle)]
    if not rows:
        raise SystemExit(f"No evaluation rows in {paths}: pass the CSVs finetune.py wrote (evaluations.csv).")
    return typed_rows(rows)


def steps_reached(rows: list[dict]) -> tuple[int, int]:
    """:return: The offline gradient steps and online environment steps a run's rows reached."""
    offline = max((row["step"] for row in rows if row["phase"] == "offline"), default=0)
    online = max((row["step"] for row in rows if row["phase"] == "online"), default=offline) - offline
    return offline, online


def steps_label(steps: tuple[int, int]) -> str:
    """:return: ``"1,000k + 300k"``: the offline and online steps a run reached."""
    offline, online = steps
    return f"{offline / 1e3:,.0f}k + {online / 1e3:,.0f}k"


def protocol_label(steps: tuple[int, int]) -> str:
    """:return: ``"1,000k + 300k (short of 1M + 1M)"``: the protocol a run followed, and whether it is the paper's."""
    full = min(steps) >= FULL_PROTOCOL
    return steps_label(steps) + ("" if full else " (short of 1M + 1M)")


def group_by_protocol(rows: list[dict]) -> dict[tuple[str, tuple[int, int]], list[list[dict]]]:
    """
    :return: The runs (one seed of one CSV each) of every task and protocol: a run joins the runs of its task that
        reached the same steps, so a full-protocol row and a shortened one of the same task stay apart.
    """
    runs: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    for row in rows:
        runs[(row["run"], row["dataset"], row["seed"])].append(row)
    groups: dict[tuple[str, tuple[int, int]], list[list[dict]]] = defaultdict(list)
    for (_, dataset, _), run in runs.items():
        groups[(dataset, steps_reached(run))].append(run)
    return dict(sorted(groups.items(), key=lambda item: (item[0][0], [-steps for steps in item[0][1]])))


def last_scores(runs: list[list[dict]], field: str, scale: float = 1.0) -> str:
    """:return: ``"offline → online"``: each phase's last evaluation of ``field``, mean ± standard error over the runs."""
    phases = [
        [scale * value for run in runs for seeds in final_scores(run, phase, field).values() for value in seeds.values()]
        for phase in ("offline", "online")
    ]
    if all(math.isnan(value) for values in phases for value in values):
        return "-"
    return f"{mean_std(phases[0], standard_error=True)} → {mean_std(phases[1], standard_error=True)}"


def published(table: str, name: str | None) -> str:
    scores = PAPER[table].get(name) if name else None
    return f"{scores[0]:.1f} → {scores[1]:.1f}" if scores else "-"


def data_scores(dataset_ids: set[str], record: Path) -> dict[str, str]:
    """
    :return: Each dataset's own episodes' mean normalized score (``data_score``; "-" without one), computed where the
        dataset is local and written into ``record``, read from ``record`` where it is not ("(not local)" if absent).
    """
    scores = json.loads(record.read_text()) if record.exists() else {}
    for dataset_id in sorted(dataset_ids & set(minari.list_local_datasets())):
        score = data_score(load_minari_dataset(dataset_id))
        scores[dataset_id] = None if score is None else round(score, 1)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(scores, indent=1, sort_keys=True) + "\n")
    return {dataset_id: score_cell(scores.get(dataset_id, "(not local)")) for dataset_id in dataset_ids}


def score_cell(score: float | str | None) -> str:
    """:return: A recorded score with one decimal, "-" for None (the data have no score), or a note as it is."""
    return "-" if score is None else score if isinstance(score, str) else f"{score:.1f}"


def table(groups: dict[tuple[str, tuple[int, int]], list[list[dict]]], data: dict[str, str]) -> list[str]:
    """
    :return: The markdown lines: a row per task and protocol (``group_by_protocol``), ``data`` the data's scores, then
        a "not run yet" row for each of the paper's Table 2 tasks without a run.
    """
    lines = [
        f"{TABLE_START} seeds | data's episodes | IQL, paper | IQL, CORL (D4RL v2) | IQL, ours (normalized) "
        "| ours: success rate (%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (dataset, steps), runs in groups.items():
        name = paper_name(dataset)
        lines.append(
            f"| {name or dataset} | {protocol_label(steps)} | {len(runs)} | {data[dataset]} | "
            f"{published('table2', name)} | {published('corl_table2', name)} | {last_scores(runs, 'normalized_score')} "
            f"| {last_scores(runs, 'success_rate', scale=100)} |"
        )
    reached = {paper_name(dataset) for dataset, _ in groups}
    for name in (name for name in PAPER["table2"] if name not in reached):  # the paper's tasks without a run yet
        lines.append(
            f"| {name} | not run yet | 0 | - | {published('table2', name)} | {published('corl_table2', name)} | - | - |"
        )
    return lines


def best_protocols(groups: dict[tuple[str, tuple[int, int]], list[list[dict]]]) -> dict[str, tuple[tuple[int, int], list]]:
    """:return: Per task, the protocol that went furthest (the paper's whole protocol first, then one that reached its
    online phase, then the most steps of its shorter phase, then of both, then the most seeds) and its runs."""

    def rank(steps: tuple[int, int], runs: list) -> tuple:
        return min(steps) >= FULL_PROTOCOL, steps[1] > 0, min(steps), sum(steps), len(runs)

    best: dict[str, tuple[tuple[int, int], list]] = {}
    for (dataset, steps), runs in groups.items():
        name = paper_name(dataset) or dataset
        if name not in best or rank(steps, runs) > rank(*best[name]):
            best[name] = (steps, runs)
    return best


def details_link(runs: list[list[dict]]) -> str:
    """:return: A markdown link to the runs' probe note (``<run>_probe.md`` beside their CSV) or else to the first CSV."""
    csv_path = Path(sorted(run[0]["run"] for run in runs)[0])
    probe = csv_path.with_name(csv_path.name.split("_seed")[0] + "_probe.md")
    target = probe if probe.exists() else csv_path
    return f"[{'probe note' if probe.exists() else 'rows'}]({target.as_posix()})"


def glance(groups: dict[tuple[str, tuple[int, int]], list[list[dict]]]) -> list[str]:
    """:return: The markdown lines of the table at a glance: one line a task of the paper's Table 2, its best protocol."""
    lines = [
        f"{GLANCE_START} IQL, paper | protocol reached | seeds | details |",
        "|---|---|---|---|---|---|",
    ]
    best = best_protocols(groups)
    for name in [*PAPER["table2"], *sorted(set(best) - set(PAPER["table2"]))]:
        if name not in best:
            lines.append(f"| {name} | not run yet | {published('table2', name)} | - | 0 | - |")
            continue
        steps, runs = best[name]
        lines.append(
            f"| {name} | {last_scores(runs, 'normalized_score')} | {published('table2', name)} | {steps_label(steps)} "
            f"| {len(runs)} | {details_link(runs)} |"
        )
    return lines


def table_span(readme: Path) -> tuple[list[str], int, int]:
    """:return: The lines of ``readme`` and where its copy of the glance table starts and ends; an error if it has none."""
    text = readme.read_text().splitlines()
    start = next((index for index, line in enumerate(text) if line.startswith(GLANCE_START)), None)
    if start is None:
        raise SystemExit(
            f"{readme} has no table starting with {GLANCE_START!r}: paste benchmarks/results/table2/glance.md there once."
        )
    end = next((index for index in range(start, len(text)) if not text[index].startswith("|")), len(text))
    return text, start, end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="evaluation CSVs written by finetune.py")
    parser.add_argument("--out", default="runs/table2")
    parser.add_argument("--readme", type=Path, help="a markdown file whose copy of the table to replace (README.md)")
    args = parser.parse_args()
    rows = [row for row in read_runs(args.runs) if row["algo"] == "iql"]
    groups = group_by_protocol(rows)
    for (_, steps), runs in groups.items():
        for row in (row for run in runs for row in run):
            row["series"] = f"IQL, {steps_label(steps)}"
    readme = table_span(args.readme) if args.readme else None  # checked before anything is written
    lines = table(groups, data_scores({dataset for dataset, _ in groups}, Path(args.out) / "data_scores.json"))
    write_markdown(args.out, "table2.md", lines)
    at_a_glance = glance(groups)
    write_markdown(args.out, "glance.md", at_a_glance)
    if readme:
        text, start, end = readme
        args.readme.write_text("\n".join(text[:start] + at_a_glance + text[end:]) + "\n")
        print(f"Wrote the table into {args.readme}")
    plot_curves(Path(args.out) / "curves.png", rows, "Table 2 runs: offline, then online (dashed: 1M)", boundary=FULL_PROTOCOL)
    print(f"Wrote {Path(args.out) / 'curves.png'}")


if __name__ == "__main__":
    main()
