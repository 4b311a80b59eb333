"""
One page of every committed result, generated from ``benchmarks/results/`` so it cannot drift from it.

    python benchmarks/results_page.py            # writes docs/results.md
    python benchmarks/results_page.py --check    # fails if docs/results.md is not what the results give

The page opens with one table of every IQL run the protocol runners wrote (``evaluations.csv``): ours offline and
online beside the paper's numbers and CORL's published ones (``paper_numbers.json``). Then each results folder
in turn: how it was made (its ``COMMAND.md``: command, machine, date), its tables and its pictures.
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


def folder_sections() -> list[str]:
    lines = []
    for folder in sorted(path for path in RESULTS.iterdir() if path.is_dir()):
        lines += ["", f"## `{folder.name}`", ""]
        command = folder / "COMMAND.md"
        others = sorted(set(folder.rglob("*.md")) - {command}) + sorted(folder.rglob("*.txt"))
        for path in ([command] if command.exists() else []) + others:
            if path != command:
                lines += ["", f"*{path.relative_to(RESULTS)}*", ""]
            text = path.read_text()
            lines += ["```", *text.rstrip().splitlines(), "```"] if path.suffix == ".txt" else as_section_text(text)
        for picture in sorted(folder.rglob("*.png")):
            relative = Path("..") / picture.relative_to(ROOT)
            lines += ["", f"![{picture.relative_to(RESULTS)}]({relative.as_posix()})", ""]
    return lines


def page() -> str:
    lines = [
        "# Results",
        "",
        "Every result committed under `benchmarks/results/`, generated from those files by",
        "`python benchmarks/results_page.py` (a test fails when this page and the files disagree).",
        "",
        "## IQL runs beside the paper and CORL",
        "",
        "Final scores (normalized; AntMaze: 100 x success rate over the evaluation episodes) of every run the",
        "protocol runners wrote, mean ± std over seeds at each seed's last evaluation. The paper's numbers are on",
        "D4RL's data (Table 1, or Table 2 offline → online), CORL's on D4RL's antmaze-v2; ours are on the datasets",
        "named, most of them sb3-iql's own re-creations, and often at fewer steps than the paper's 1M: the steps",
        "column says how many.",
        "",
        *summary_table(),
        *folder_sections(),
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
