"""
The D4RL-physics AntMaze datasets side by side: what the data ant did, and what the data hold for the paper's task.

    python benchmarks/diagnostics/antmaze_d4rl_data.py sb3-iql/antmaze-d4rl/medium-play-v0 sb3-iql/antmaze-d4rl/medium-play-v1 \\
        --planner-episodes 100 --out benchmarks/results/antmaze_d4rl_v1

For each ``sb3-iql/antmaze-d4rl*`` dataset (``antmaze_d4rl.dataset_id``; the version and driving are read from the id):
the data ant itself on the paper's task (its controller, driving and way of acting, with the data's noise N(0, 0.2):
success, median steps of the successes, falls; ``--planner-episodes``), then the data as recorded: rewarded rows,
episodes that pass within 0.5 of the evaluation goal (a terminal row), episodes that reach their own commanded goal,
falls (episodes that end upside down, rows spent upside down), the ant's mean planar speed and the share of still
steps (under 1 cm of travel in a 0.1 s step). Writes ``<out>/data.md``.
"""

import argparse
import sys
from pathlib import Path

import minari
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the runners' protocol package
from protocol import column_table, planner_cell, write_markdown

from sb3_iql.data.readers import load_minari_dataset
from sb3_iql.datasets.ant_controller import fell_over
from sb3_iql.datasets.antmaze_d4rl import dataset_recipe, planner_success
from sb3_iql.tasks.antmaze_d4rl import D4RL_FRAME_SKIP, D4RL_GOAL_RADIUS, D4RL_TIMESTEP

#: Travel under this in one step (m) counts as standing still.
STILL_DISTANCE = 0.01


def data_statistics(dataset: minari.MinariDataset) -> dict[str, str]:
    """:return: The dataset as recorded (module docstring)."""
    n_rows = n_rewarded = n_pass_eval = n_reach_own = n_end_fallen = n_rows_fallen = n_still = 0
    travel = 0.0
    for episode in dataset.iterate_episodes():
        xy = episode.observations[:, :2]
        step_travel = np.linalg.norm(np.diff(xy, axis=0), axis=1)
        fallen = np.array([fell_over(state) for state in episode.observations[1:, 2:]])
        goal = episode.infos["goal"][0]
        n_rows += len(episode.actions)
        n_rewarded += int(np.sum(episode.rewards == 1))
        n_pass_eval += int(episode.terminations.any())
        n_reach_own += int(np.any(np.linalg.norm(xy[1:] - goal, axis=1) <= D4RL_GOAL_RADIUS))
        n_end_fallen += int(fallen[-1])
        n_rows_fallen += int(fallen.sum())
        n_still += int(np.sum(step_travel < STILL_DISTANCE))
        travel += float(step_travel.sum())
    n_episodes = dataset.total_episodes
    step_seconds = D4RL_TIMESTEP * D4RL_FRAME_SKIP
    return {
        "rewarded rows": f"{n_rewarded:,}",
        "episodes passing the evaluation goal": f"{100 * n_pass_eval / n_episodes:.1f}% ({n_pass_eval:,})",
        "episodes reaching their own goal": f"{100 * n_reach_own / n_episodes:.1f}%",
        "episodes ending upside down / rows upside down": f"{100 * n_end_fallen / n_episodes:.1f}% / {100 * n_rows_fallen / n_rows:.2f}%",
        "mean planar speed (m/s)": f"{travel / n_rows / step_seconds:.2f}",
        f"still steps (< {100 * STILL_DISTANCE:g} cm a step)": f"{100 * n_still / n_rows:.1f}%",
        "episodes / rows": f"{n_episodes:,} / {n_rows:,}",
    }


def planner_statistics(recipe: tuple[str, str, int, str | None], n_episodes: int) -> dict[str, str]:
    """
    :param recipe: The dataset's ``(name, ant, version, driving)`` (``dataset_recipe``)
    :return: The dataset's own data ant on the paper's task in its maze, with the data's noise
    """
    name, ant, version, driving = recipe
    result = planner_success(name, n_episodes=n_episodes, ant=ant, version=version, driving=driving, seed=5_000)
    return {
        f"data ant on the paper's task ({n_episodes} episodes): success / ended upside down / median steps": planner_cell(
            result
        )
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="sb3-iql/antmaze-d4rl* Minari dataset ids")
    parser.add_argument(
        "--planner-episodes", type=int, default=0, help="episodes of the data ant on the paper's task (0: skip)"
    )
    parser.add_argument("--out", default="runs/antmaze_d4rl_data")
    args = parser.parse_args()
    columns = {}
    for dataset_id in args.datasets:
        try:
            recipe = dataset_recipe(dataset_id)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        columns[dataset_id] = planner_statistics(recipe, args.planner_episodes) if args.planner_episodes else {}
        columns[dataset_id] |= data_statistics(load_minari_dataset(dataset_id))
    write_markdown(args.out, "data.md", column_table(columns))


if __name__ == "__main__":
    main()
