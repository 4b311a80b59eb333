"""
What a run's training did between its evaluations, from the CSV logs the runners write beside it
(``<run>/logs/<phase>-from-<step>/progress.csv``, SB3's logger): the update's statistics (mean Q and V, advantage,
advantage weight, actor and critic loss) averaged over each evaluation interval, and online how often the run's own
episodes reached the goal. For a score that stays at ~0: does the critic learn values, do the weights single out
actions, does the policy ever succeed while it collects data?

    python benchmarks/diagnostics/training_log.py /work/runs/table2/300k/finetune/runs/iql/sb3-iql_door_binary-v2/seed0 \\
        --name door_binary_seed0 --out benchmarks/results/table2

Writes ``<out>/<name>_training.md`` (a row per evaluation) and ``<out>/<name>_training.png`` (the same against steps,
offline and online on one axis; dashed: the switch). An evaluation whose logs this machine lacks keeps the row of
the ``_training.md`` written before (the plot has only the logs found).
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the runners' protocol package
from protocol import read_rows, write_markdown

STATS = {
    "train/mean_q": "mean Q",
    "train/mean_v": "mean V",
    "train/mean_advantage": "mean advantage",
    "train/mean_weight": "mean weight",
    "train/actor_loss": "actor loss",
    "train/critic_loss": "critic loss",
}
ONLINE = {"rollout/success_rate": "online episodes: success (%)", "rollout/ep_rew_mean": "online episodes: return"}
STEP_KEYS = {"offline": "time/gradient_steps", "online": "time/total_timesteps"}


def log_rows(run: Path) -> list[dict]:
    """
    :return: The run's logged rows that carry a step, on the evaluations' step axis (online steps after the offline
        phase's), sorted; where a phase resumed from a checkpoint, the rows logged after it by the stretch that
        was cut short give way to the resumed stretch's
    """
    evaluations = read_rows(run / "evaluations.csv")
    offline_steps = max((int(row["step"]) for row in evaluations if row["phase"] == "offline"), default=0)
    stretches = []
    for path in (run / "logs").glob("*-from-*/progress.csv"):
        phase, start = path.parent.name.split("-from-")
        if phase in STEP_KEYS:
            stretches.append((phase == "online", int(start), phase, path))
    rows: list[dict] = []
    for _, start, phase, path in sorted(stretches):
        offset = offline_steps if phase == "online" else 0
        rows = [row for row in rows if row["phase"] != phase or row["step"] <= offset + start]
        for row in read_rows(path):
            if row.get(STEP_KEYS[phase]):
                values = {key: float(row[key]) if row.get(key) else math.nan for key in (*STATS, *ONLINE)}
                rows.append({"phase": phase, "step": offset + int(float(row[STEP_KEYS[phase]])), **values})
    return sorted(rows, key=lambda row: row["step"])


def interval_rows(run: Path, logged: list[dict]) -> list[dict]:
    """
    :param logged: The run's ``log_rows``
    :return: A row per evaluation: its scores, the update's statistics averaged over the logged rows since the previous
        evaluation, and online the success rate and return of the last 100 episodes collected by then
    """
    previous, rows = -1, []
    for evaluation in read_rows(run / "evaluations.csv"):
        step = int(evaluation["step"])
        inside = [row for row in logged if previous < row["step"] <= step]
        row = {"phase": evaluation["phase"], "step": step, "score": float(evaluation["normalized_score"] or math.nan)}
        row["success"] = 100 * float(evaluation["success_rate"] or math.nan)
        for key in STATS:
            values = [value for value in (line[key] for line in inside) if not math.isnan(value)]
            row[key] = float(np.mean(values)) if values else math.nan
        last_online = [line for line in inside if line["phase"] == "online"]
        row["rollout/success_rate"] = 100 * last_online[-1]["rollout/success_rate"] if last_online else math.nan
        row["rollout/ep_rew_mean"] = last_online[-1]["rollout/ep_rew_mean"] if last_online else math.nan
        rows.append(row)
        previous = step
    return rows


def fill_from_earlier(rows: list[dict], earlier: Path) -> list[dict]:
    """
    :return: ``rows``, where one has none of the update's statistics (a run that went on from a checkpoint kept before
        2026-12-05 22:30 UTC on a wiped machine: the kept checkpoint held no training logs) with those of the same evaluation
        in the log this script wrote earlier (``earlier``, a ``table``), where there is one
    """
    if not earlier.exists():
        return rows
    lines = [[cell.strip() for cell in line.strip("|").split("|")] for line in earlier.read_text().splitlines()[2:]]
    columns = {label: index for index, label in enumerate(table([])[0].strip("| ").split(" | "))}
    written = {(line[0], int(line[1].replace(",", ""))): line for line in lines}
    for row in rows:
        line = written.get((row["phase"], row["step"]))
        if line is not None and all(math.isnan(row[key]) for key in STATS):
            for key, label in {**STATS, **ONLINE}.items():
                value = line[columns[label]]
                row[key] = math.nan if value == "-" else float(value)
    return rows


def cell(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def table(rows: list[dict]) -> list[str]:
    columns = ["phase", "step", "evaluation: normalized", "evaluation: success (%)", *ONLINE.values(), *STATS.values()]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row["phase"], f"{row['step']:,}", cell(row["score"], 1), cell(row["success"], 0)]
        cells += [cell(row["rollout/success_rate"], 0), cell(row["rollout/ep_rew_mean"], 1)]
        cells += [cell(row[key], 3) for key in STATS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot(path: Path, logged: list[dict], evaluations: list[dict], title: str) -> None:
    """Four panels against steps: success rates, the critics' values, the advantage weights, the actor's loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    steps = np.array([row["step"] for row in logged])
    panels = (
        ("success (%)", []),
        ("value", ["train/mean_q", "train/mean_v"]),
        ("advantage weight", ["train/mean_weight"]),
        ("loss", ["train/actor_loss"]),
    )
    for axis, (label, keys) in zip(axes.flat, panels):
        for key in keys:
            axis.plot(steps, [row[key] for row in logged], label=STATS[key], linewidth=1)
        axis.set_ylabel(label)
    axes[0, 0].plot([row["step"] for row in evaluations], [row["success"] for row in evaluations], "o-", label="evaluation")
    online = [row for row in logged if row["phase"] == "online"]
    if online:  # an offline run has neither its own episodes nor a switch to mark
        episodes = [100 * row["rollout/success_rate"] for row in online]
        axes[0, 0].plot([row["step"] for row in online], episodes, label=ONLINE["rollout/success_rate"])
    switch = max((row["step"] for row in evaluations if row["phase"] == "offline"), default=None) if online else None
    for axis in axes.flat:
        if switch is not None:
            axis.axvline(switch, color="grey", linestyle="--", linewidth=1)
        axis.legend(fontsize=7)
    for axis in axes[1]:
        axis.set_xlabel("step (offline gradient steps, then online env steps)")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run's folder: <out>/runs/<algo>/<dataset>/seed<k>, with evaluations.csv and logs/")
    parser.add_argument("--name", help="the outputs' name (default: <dataset>_<seed folder>)")
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    run = Path(args.run)
    if not (run / "evaluations.csv").exists() or not list((run / "logs").glob("*-from-*/progress.csv")):
        raise SystemExit(
            f"{run} holds no evaluations.csv or no logs/*/progress.csv: pass a run folder written by offline.py or "
            "finetune.py (runs started before 2026-12-05 10:00 UTC wrote no logs)."
        )
    name = args.name or f"{run.parent.name}_{run.name}"
    logged = log_rows(run)
    rows = fill_from_earlier(interval_rows(run, logged), Path(args.out) / f"{name}_training.md")
    write_markdown(args.out, f"{name}_training.md", table(rows))
    plot(Path(args.out) / f"{name}_training.png", logged, rows, f"{name}: what training did")
    print(f"Wrote {Path(args.out) / f'{name}_training.png'}")


if __name__ == "__main__":
    main()
