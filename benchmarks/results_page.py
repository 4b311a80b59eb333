"""
One page of every committed result, generated from ``benchmarks/results/`` so it cannot drift from it.

    python benchmarks/results_page.py            # writes docs/results.md
    python benchmarks/results_page.py --check    # fails if docs/results.md is not what the results give

The page opens with Table 2 (``table2/glance.md``: one line a task, its best protocol reached), then the paper's
Figures 2 and 3, the offline evidence, speed and the studies (``SECTIONS`` says which results folder goes where; a
folder it does not name is a study), each folder as it was made (its ``COMMAND.md``: command, machine, date), its
tables and its pictures. It ends with an index of every run the protocol runners wrote (``evaluations.csv``): ours
offline and online beside the paper's numbers and CORL's published ones (``paper_numbers.json``).
"""

import argparse
import csv
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from protocol.paper import PAPER, paper_name, paper_offline_score
from protocol.reports import final_scores, mean_std, typed_rows
from protocol.runs import read_rows

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "results.md"
EVALUATION_HEADER = ["algo", "dataset", "seed", "phase", "step"]
#: The page's sections and the results folders in each, in order; the folders named nowhere are studies.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Table 2": ("table2", "pen_binary_finetune", "adroit_binary_short"),
    "Figures 2 and 3": ("figure2", "figure3"),
    "Offline evidence": ("antmaze_d4rl", "peer", "antmaze_d4rl_v1", "adroit_binary_data", "discrete"),
    "Speed": ("seeds",),
}
#: A section's opening sentence, where it has one.
INTROS = {
    "Table 2": "The paper's finetuning table as run here: first one line a task at the protocol it got furthest with "
    "(mean ± standard error over seeds; AntMaze scored as 100 x the success rate), then every run, its curves, how "
    "each was made, and a probe note beside every AntMaze row far from the paper's.",
    "Speed": "speed.py's tables (sb3-iql eager and compiled, d3rlpy and a plain PyTorch loop, on the CPU and on a GPU) "
    "are on the docs' speed page; a finetuning run's phases are in table2/online_speed.md above. Here: many seeds at once.",
    "Studies": "What the project measured on its way to the paper's numbers (the docs' studies page tells the story).",
    "Offline evidence": "Offline-only runs: IQL on the D4RL-physics AntMaze at 300k steps beside BC, a peer library "
    "(d3rlpy) on the same data, the AntMaze data made with D4RL's data ant (v1), what the Adroit binary data score, and "
    "discrete IQL against BC.",
}
#: What leads a folder's part, before its ``COMMAND.md`` (Table 2's table at a glance, then the whole table).
LEADS = {"table2": ("glance.md", "table2.md", "curves.png")}


def evaluation_files() -> list[Path]:
    """Every CSV of the runners' evaluation rows under ``benchmarks/results``."""
    files = []
    for path in sorted(RESULTS.rglob("*.csv")):
        with open(path, newline="") as file:
            if next(csv.reader(file), [])[:5] == EVALUATION_HEADER:
                files.append(path)
    return files


def score_cell(scores: dict[int, float], rows: list[dict], phase: str) -> str:
    """Mean ± std over seeds (the score alone for one seed), and the phase's last step."""
    values = list(scores.values())
    last_step = max(row["step"] for row in rows if row["phase"] == phase)
    return f"{mean_std(values)} ({last_step:,})"


def pair(values: list[float] | float | None) -> str:
    if values is None:
        return ""
    return f"{values[0]} → {values[1]}" if isinstance(values, list) else f"{values}"


def summary_table() -> list[str]:
    lines = [
        "| results | dataset (paper's) | algo | seeds | ours offline (steps) | ours online (total steps) | paper offline → online "
        "| CORL offline → online |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in evaluation_files():
        rows = typed_rows(read_rows(path))
        finals = {phase: final_scores(rows, phase) for phase in ("offline", "online")}
        for algo, dataset in sorted({(row["algo"], row["dataset"]) for row in rows}):
            offline, online = finals["offline"].get((algo, dataset)), finals["online"].get((algo, dataset))
            run_rows = [row for row in rows if (row["algo"], row["dataset"]) == (algo, dataset)]
            name = paper_name(dataset)
            paper = PAPER["table2"].get(name) if online else paper_offline_score(name)
            corl = PAPER["corl"]["finetune"].get(name) if online else PAPER["corl"]["offline"].get(name)
            cells = [
                f"`{path.parent.relative_to(RESULTS)}`",
                f"`{dataset}` ({name or 'not in the paper'})",
                algo,
                str(len(offline or online)),  # type: ignore[arg-type]
                score_cell(offline, run_rows, "offline") if offline else "",
                score_cell(online, run_rows, "online") if online else "",
                pair(paper),
                pair(corl),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def as_section_text(markdown: str) -> list[str]:
    """A results file as page text: its headings become bold lines, its links plain text (their targets sit in the
    repository, not in the docs)."""
    lines, in_code = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code:
            heading = re.match(r"^#+\s+(.*)$", line)
            if heading:
                line = f"**{heading.group(1)}**"
            line = re.sub(r"\[([^\]]+)\]\((?!https?://)[^)]*\)", r"\1", line)
        lines.append(line)
    return lines


def folder_part(folder: Path) -> list[str]:
    """One results folder: its leading files (``LEADS``), ``COMMAND.md``, its other notes and its pictures."""
    lines = ["", f"### `{folder.name}`", ""]
    leads = [folder / name for name in LEADS.get(folder.name, ())]
    command = folder / "COMMAND.md"
    notes = sorted(set(folder.rglob("*.md")) - {command, *leads}) + sorted(folder.rglob("*.txt"))
    pictures = sorted(set(folder.rglob("*.png")) - set(leads))
    for path in [*leads, *([command] if command.exists() else []), *notes, *pictures]:
        if path.suffix == ".png":
            relative = Path("..") / path.relative_to(ROOT)
            lines += ["", f"![{path.relative_to(RESULTS)}]({relative.as_posix()})", ""]
            continue
        if path != command:
            lines += ["", f"*{path.relative_to(RESULTS)}*", ""]
        text = path.read_text()
        lines += ["```", *text.rstrip().splitlines(), "```"] if path.suffix == ".txt" else as_section_text(text)
    return lines


def sections() -> list[str]:
    """The page's sections in ``SECTIONS``' order, then the studies: every results folder exactly once."""
    folders = {path.name: path for path in sorted(RESULTS.iterdir()) if path.is_dir()}
    named = {name for names in SECTIONS.values() for name in names}
    studies = tuple(name for name in folders if name not in named)
    lines = []
    for title, names in [*SECTIONS.items(), ("Studies", studies)]:
        lines += ["", f"## {title}", ""]
        if title in INTROS:
            lines += [INTROS[title]]
        for name in names:
            if name in folders:
                lines += folder_part(folders[name])
    return lines


def page() -> str:
    lines = [
        "# Results",
        "",
        "Every result committed under `benchmarks/results/`, generated from those files by",
        "`python benchmarks/results_page.py` (a test fails when this page and the files disagree): Table 2 first, then",
        "the paper's Figures 2 and 3, the offline evidence, speed, the studies, and an index of every run.",
        *sections(),
        "",
        "## Index of every run",
        "",
        "Final scores (normalized; AntMaze: 100 x success rate over the evaluation episodes) of every run the",
        "protocol runners wrote, mean ± std over seeds at each seed's last evaluation. The paper's numbers are on",
        "D4RL's data (Table 1, or Table 2 offline → online), CORL's on D4RL's antmaze-v2; ours are on the datasets",
        "named, most of them sb3-iql's own re-creations, and often at fewer steps than the paper's 1M: the steps",
        "column says how many.",
        "",
        *summary_table(),
    ]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if docs/results.md is out of date")
    parser.add_argument("--out", type=Path, default=PAGE, help="where to write the page")
    args = parser.parse_args()
    text = page()
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            sys.exit(f"{args.out} is out of date: run python benchmarks/results_page.py")
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
