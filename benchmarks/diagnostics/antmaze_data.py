"""
What an AntMaze dataset holds, and what the paper's task semantics make of it.

    python benchmarks/diagnostics/antmaze_data.py sb3-iql/antmaze/umaze-v1 sb3-iql/antmaze/medium-play-v1 [--planner-episodes 50]

For each dataset (a Minari id: ``D4RL/antmaze/*-v1`` or a built ``sb3-iql/antmaze/*-v1``): episodes and
transitions, the share of transitions at the goal (reward 1), the episodes that reach their goal and those in
which the ant falls over, the transitions and goal reaches that ``goal_semantics="episode"`` and
``"evaluation"`` keep, how many episodes start in the paper's start cell, end in its goal's cell (or next to
it) or do both, and (with ``--planner-episodes``) how often our planner-driven ant, with the data's
action noise, does the paper's task (evaluation start to fixed goal within D4RL's time limit) in that maze: a
bound on what the data can teach. Writes ``<out>/antmaze_data.md``.
"""

import argparse
import functools
import sys
from pathlib import Path

import minari
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the runners' protocol package
from protocol import column_table, paper_name, planner_cell, write_markdown

from sb3_iql.data.goals import GOALS, is_goal_dataset
from sb3_iql.data.readers import dataset_transitions, load_minari_dataset
from sb3_iql.datasets.ant_controller import DATA_ACTION_GAIN, AntController, fell_over
from sb3_iql.datasets.antmaze import planner_success
from sb3_iql.datasets.maze import CellPlanner
from sb3_iql.tasks.antmaze import GOAL_RADIUS, G, R, marker_cell, paper_eval_env


def recorded_statistics(dataset: minari.MinariDataset) -> dict[str, str]:
    """:return: The dataset's episodes as recorded: size, time at the goal, goals reached, falls."""
    n_steps = n_at_goal = n_reached = n_fallen = n_end_fallen = n_steps_fallen = 0
    for episode in dataset.iterate_episodes():
        observations = episode.observations
        distance = np.linalg.norm(observations["achieved_goal"] - observations["desired_goal"], axis=-1)
        fallen = np.array([fell_over(state) for state in observations["observation"][1:]])  # after each step
        n_steps += len(episode.rewards)
        n_at_goal += int(np.sum(episode.rewards == 1))
        n_reached += int(np.any(distance <= GOAL_RADIUS))
        n_fallen += int(fallen.any())
        n_end_fallen += int(fallen[-1])
        n_steps_fallen += int(fallen.sum())
    n_episodes = dataset.total_episodes
    return {
        "episodes / transitions": f"{n_episodes:,} / {n_steps:,}",
        "transitions at the goal (reward 1)": f"{100 * n_at_goal / n_steps:.1f}%",
        "episodes that reach their goal": f"{100 * n_reached / n_episodes:.1f}%",
        "episodes in which the ant falls over": f"{100 * n_fallen / n_episodes:.1f}%",
        "episodes that end with the ant upside down": f"{100 * n_end_fallen / n_episodes:.1f}%",
        "transitions spent upside down": f"{100 * n_steps_fallen / n_steps:.1f}%",
    }


def semantics_statistics(dataset: minari.MinariDataset) -> dict[str, str]:
    """:return: Per ``goal_semantics``, the transitions kept and the goal reaches (terminals) among them."""
    rows = {}
    for goal in GOALS:
        transitions = dataset_transitions(dataset, goal)
        reaches = int(np.sum(transitions.rewards == 1))
        rows[f'goal_semantics="{goal}": transitions kept / goal reaches'] = f"{len(transitions.rewards):,} / {reaches:,}"
    return rows


def task_statistics(dataset: minari.MinariDataset) -> dict[str, str]:
    """:return: How many episodes do part of the paper's task: start in its start cell, aim at (or next to) its goal's."""
    env = paper_eval_env(dataset)
    maze = env.unwrapped.maze
    env.close()
    planner = CellPlanner(maze)
    start_cell, goal = marker_cell(maze.maze_map, R), maze.cell_rowcol_to_xy(np.array(marker_cell(maze.maze_map, G)))
    n_from_start = n_to_goal = n_next_to_goal = n_both = 0
    for episode in dataset.iterate_episodes():
        observations = episode.observations
        from_start = planner.cell_of(observations["achieved_goal"][0]) == start_cell
        to_goal = planner.cells_between(observations["desired_goal"][0], goal)
        n_from_start += int(from_start)
        n_to_goal += int(to_goal == 0)
        n_next_to_goal += int(to_goal <= 1)
        n_both += int(from_start and to_goal <= 1)
    n_episodes = dataset.total_episodes
    return {
        "episodes that start in the paper's start cell": f"{100 * n_from_start / n_episodes:.1f}%",
        "episodes whose goal is in the paper's goal cell / within one cell of it": (
            f"{100 * n_to_goal / n_episodes:.1f}% / {100 * n_next_to_goal / n_episodes:.1f}%"
        ),
        "episodes from the paper's start cell to within one cell of its goal": f"{100 * n_both / n_episodes:.1f}%",
    }


@functools.cache
def maze_planner_success(maze: str, n_episodes: int) -> dict[str, float]:
    """:return: ``planner_success`` of the shipped ant in ``maze``, measured once for the datasets that share it."""
    return planner_success(maze, AntController.load(gain=DATA_ACTION_GAIN), n_episodes=n_episodes)


def planner_statistics(dataset_id: str, n_episodes: int) -> dict[str, str]:
    """:return: The planner-driven ant on the paper's task in the dataset's maze (with the data's action noise)."""
    name = paper_name(dataset_id)
    if name is None or not name.startswith("antmaze-"):
        raise SystemExit(f"'{dataset_id}' is none of the paper's AntMaze datasets: run it without --planner-episodes.")
    result = maze_planner_success(name.removeprefix("antmaze-").rsplit("-v", 1)[0], n_episodes)
    return {
        f"planner-driven ant on the paper's task ({n_episodes} episodes): success / fell over / median steps": planner_cell(
            result
        )
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="AntMaze Minari dataset ids")
    parser.add_argument("--planner-episodes", type=int, default=0, help="episodes of the planner-driven ant (0: skip)")
    parser.add_argument("--out", default="runs/antmaze_data")
    args = parser.parse_args()
    columns = {}
    for dataset_id in args.datasets:
        dataset = load_minari_dataset(dataset_id)
        if not is_goal_dataset(dataset):
            raise SystemExit(f"'{dataset_id}' has no achieved_goal/desired_goal observations: pass AntMaze datasets.")
        columns[dataset_id] = recorded_statistics(dataset) | semantics_statistics(dataset) | task_statistics(dataset)
        if args.planner_episodes:
            columns[dataset_id] |= planner_statistics(dataset_id, args.planner_episodes)
    write_markdown(args.out, "antmaze_data.md", column_table(columns))


if __name__ == "__main__":
    main()
