"""
The goal-reaching ant behind the AntMaze datasets: its reach rate and learning curve.

    python benchmarks/diagnostics/ant_controller.py [--workdir runs/goal-reaching-ant] [--trials 100]

Measures the shipped controller (or ``--controller``) on ``--trials`` random targets 2-5 m away, reached
within 0.5 m in 200 steps (10 s), with and without the datasets' action noise (0.2); then the
planner-driven ant on the paper's umaze task (``--maze-episodes`` episodes from the evaluation start to the
goal within 700 steps, noise 0.2 as in the data, and noise-free); and plots the learning curve that
``python -m sb3_iql.datasets train-ant`` recorded in ``--workdir``. Writes ``<out>/reach_rate.json``,
``learning_curve.csv`` and ``learning_curve.png``.
"""

import argparse
import csv
import json
import shutil
import time
from pathlib import Path

from sb3_iql.datasets.ant_controller import DATA_ACTION_NOISE, SHIPPED_CONTROLLER, AntController, reach_rate
from sb3_iql.datasets.antmaze import planner_success


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [int(row["steps"]) / 1000 for row in rows]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(steps, [100 * float(row["reach_rate"]) for row in rows], marker="o", label="targets reached (%)")
    axis.plot(steps, [100 * float(row["fell_over"]) for row in rows], marker="x", label="fell over (%)")
    axis.set(xlabel="SAC environment steps (thousands)", ylabel="% of 20 trials", title="Goal-reaching ant (AntMaze's ant)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--controller", default=str(SHIPPED_CONTROLLER), help="controller file")
    parser.add_argument("--workdir", default="runs/goal-reaching-ant", help="train-ant's folder (learning_curve.csv)")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--maze-episodes", type=int, default=100, help="umaze episodes of the planner-driven ant")
    parser.add_argument("--out", default="benchmarks/results/ant_controller")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    controller = AntController.load(args.controller)
    result = {"trials": args.trials, "maze_episodes": args.maze_episodes}
    for noise in (0.0, DATA_ACTION_NOISE):
        result[f"open_maze_noise_{noise}"] = reach_rate(controller, n_trials=args.trials, seed=0, action_noise=noise)
        result[f"umaze_task_noise_{noise}"] = planner_success("umaze", controller, args.maze_episodes, noise=noise)
    result["seconds"] = round(time.perf_counter() - start, 1)
    (out / "reach_rate.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    curve = Path(args.workdir) / "learning_curve.csv"
    if curve.exists():
        shutil.copy(curve, out / "learning_curve.csv")
        with open(curve, newline="") as file:
            rows = list(csv.DictReader(file))
        plot(rows, out / "learning_curve.png")
        for row in rows:
            print(
                f"{int(row['steps']):>7} steps, {float(row['minutes']):5.1f} min: reach {float(row['reach_rate']):.0%}, fell {float(row['fell_over']):.0%}"
            )
    else:
        print(f"no learning curve at {curve}")


if __name__ == "__main__":
    main()
