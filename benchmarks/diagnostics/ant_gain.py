"""
How the goal-reaching ant's action gain trades falls against speed on the paper's AntMaze tasks.

    python benchmarks/diagnostics/ant_gain.py --gains 1.0 0.6 0.5 0.4 --episodes 50
    python benchmarks/diagnostics/ant_gain.py --controllers old.npz new.npz --gains 1.0 0.6 --episodes 100   # side by side

For each controller file (default: the shipped one) and gain (a factor on its actions), the planner-driven ant with the data's
action noise does the paper's task in each maze (evaluation start to goal within D4RL's time limit):
success rate, share of episodes that end with the ant upside down, median steps of the successes.
Writes ``<out>/ant_gain.md`` and ``<out>/ant_gain.csv``.
"""

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the runners' protocol package
from protocol import write_markdown

from sb3_iql.datasets.ant_controller import SHIPPED_CONTROLLER, AntController
from sb3_iql.datasets.antmaze import planner_success

MAZES = ("umaze", "medium-play", "large-play")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--controllers", nargs="+", default=[str(SHIPPED_CONTROLLER)], help="controller files")
    parser.add_argument("--gains", nargs="+", type=float, default=[1.0, 0.6, 0.5, 0.4])
    parser.add_argument("--episodes", type=int, default=50, help="episodes per maze and gain")
    parser.add_argument("--seed", type=int, default=7000)
    parser.add_argument("--out", default="benchmarks/results/ant_controller_gain")
    args = parser.parse_args()
    rows = []
    for path in args.controllers:
        for gain in args.gains:
            controller = AntController.load(path, gain=gain)
            for maze in MAZES:
                result = planner_success(maze, controller, n_episodes=args.episodes, seed=args.seed)
                rows.append({"controller": Path(path).name, "gain": gain, "maze": maze, **result})
                print(rows[-1], flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with open(Path(args.out) / "ant_gain.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| controller | gain | " + " | ".join(f"{maze}: success / fallen / median steps" for maze in MAZES) + " |",
        "|---|---|" + "---|" * len(MAZES),
    ]
    for path in args.controllers:
        for gain in args.gains:
            cells = [
                f"{100 * row['success_rate']:.0f}% / {100 * row['fell_over']:.0f}% / {row['median_steps']:.0f}"
                for row in rows
                if row["gain"] == gain and row["controller"] == Path(path).name
            ]
            lines.append(f"| {Path(path).name} | {gain} | " + " | ".join(cells) + " |")
    lines.append(f"\n{args.episodes} episodes per maze and gain, the data's action noise 0.2, seeds from {args.seed}.")
    write_markdown(args.out, "ant_gain.md", lines)


if __name__ == "__main__":
    main()
