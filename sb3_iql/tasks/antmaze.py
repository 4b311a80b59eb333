"""
AntMaze as the IQL paper evaluates it: the one home of its maps, markers, goal radius and time limits.

Minari's ``D4RL/antmaze/*-v1`` (and sb3-iql's ``sb3-iql/antmaze/*-v1``) record a continuing task in
Gymnasium-Robotics' ``AntMaze_*-v4``. The paper evaluates from D4RL's fixed start ``r`` to its fixed
goal ``g``, the episode ending at the goal (within ``GOAL_RADIUS``), for 700 steps on umaze and 1,000
on medium and large, and scores 100 x the success rate. ``paper_eval_env`` makes that env for a dataset.
"""

import gymnasium as gym
import minari
import numpy as np
from gymnasium_robotics.envs.maze import maps
from gymnasium_robotics.envs.maze.maps import G, R  # the map markers of the fixed goal and the robot's fixed start

#: Distance to the goal that counts as reaching it.
GOAL_RADIUS = 0.45
#: AntMaze's default size of a maze cell, metres.
MAZE_SIZE_SCALING = 4.0
#: D4RL's evaluation time limits.
PAPER_EVAL_STEPS = {"umaze": 700, "medium": 1000, "large": 1000}
#: The three mazes' layouts, walls only.
LAYOUTS = {"umaze": maps.U_MAZE, "medium": maps.MEDIUM_MAZE, "large": maps.LARGE_MAZE}

# Minari's EVAL_ENV_MAPS: the fixed start "r" and goal "g" of evaluation.
EVAL_MAPS = {
    "umaze": [[1, 1, 1, 1, 1], [1, 0, 0, R, 1], [1, 0, 1, 1, 1], [1, 0, 0, G, 1], [1, 1, 1, 1, 1]],
    "medium": [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, R, 0, 1, 1, 0, 0, 1],
        [1, 0, 0, 1, 0, 0, 0, 1],
        [1, 1, 0, 0, 0, 1, 1, 1],
        [1, 0, 0, 1, 0, 0, 0, 1],
        [1, 0, 1, 0, 0, 1, 0, 1],
        [1, 0, 0, 0, 1, 0, G, 1],
        [1, 1, 1, 1, 1, 1, 1, 1],
    ],
    "large": [
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        [1, R, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
        [1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1],
        [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
        [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
        [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1],
        [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1],
        [1, 0, 0, 1, 0, 0, 0, 1, 0, G, 0, 1],
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    ],
}
# antmaze-umaze-v1 collects with the goal top-left and the start bottom-left; the others use the env's default map.
UMAZE_DATA_MAP = [[1, 1, 1, 1, 1], [1, G, 0, 0, 1], [1, 1, 1, 0, 1], [1, R, 0, 0, 1], [1, 1, 1, 1, 1]]


def _walls(maze_map: list) -> list[list[bool]]:
    return [[cell == 1 for cell in row] for row in maze_map]


def maze_size(maze_map: list) -> str | None:
    """:return: ``"umaze"``, ``"medium"`` or ``"large"`` for one of AntMaze's three mazes (whatever its markers), else None."""
    return next((name for name, layout in LAYOUTS.items() if _walls(layout) == _walls(maze_map)), None)


def paper_eval_map(maze_map: list) -> list:
    """
    The maze the paper evaluates a dataset in: its collection maze, with D4RL's fixed start and goal.

    Minari records, for medium and large, the collection maze with D4RL's start ``r`` and goal ``g``:
    that map is used. For umaze it records a mirror image of the collection maze (the U opens the other
    way), whose path from ``r`` to ``g`` crosses cells that are walls where the data was collected. There
    the start and goal of ``antmaze-umaze``'s collection map are used: the D4RL task, in which the data
    goes from start to goal.

    :param maze_map: The map of the maze the data was collected in
    """
    size = maze_size(maze_map)
    if size is None:
        raise ValueError("The dataset's maze is none of AntMaze's umaze, medium or large: pass an evaluation env yourself.")
    return UMAZE_DATA_MAP if size == "umaze" else EVAL_MAPS[size]


def _collection_map(dataset: minari.MinariDataset) -> list | None:
    """:return: The map of the AntMaze env a dataset was collected in (its spec's, else the registered default), or None."""
    spec = dataset.spec.env_spec
    if spec is None or not spec.name.startswith("AntMaze_"):  # Gymnasium-Robotics' AntMaze_*, or ours with D4RL's ant
        return None
    return spec.kwargs.get("maze_map") or gym.spec(spec.id).kwargs.get("maze_map")


def is_antmaze(dataset: minari.MinariDataset) -> bool:
    """:return: Whether the dataset was collected in one of AntMaze's three mazes (so the paper's task applies)."""
    maze_map = _collection_map(dataset)
    return maze_map is not None and maze_size(maze_map) is not None


def cell_centre(maze_map: list, cell: tuple[int, int], scaling: float = MAZE_SIZE_SCALING) -> np.ndarray:
    """:return: The ``(x, y)`` centre of a ``(row, col)`` cell, as Gymnasium-Robotics' ``Maze.cell_rowcol_to_xy``."""
    rows, cols = len(maze_map), len(maze_map[0])
    row, col = cell
    return np.array([(col + 0.5) * scaling - cols * scaling / 2, rows * scaling / 2 - (row + 0.5) * scaling])


def free_cells(maze_map: list) -> list[tuple[int, int]]:
    """:return: The ``(row, col)`` of every cell of ``maze_map`` that is not a wall."""
    return [(row, col) for row, line in enumerate(maze_map) for col, cell in enumerate(line) if cell != 1]


def marked_cells(maze_map: list, marker: str) -> list[tuple[int, int]]:
    """:return: The ``(row, col)`` of every cell of ``maze_map`` marked ``marker``."""
    return [(row, col) for row, line in enumerate(maze_map) for col, cell in enumerate(line) if cell == marker]


def marker_cell(maze_map: list, marker: str) -> tuple[int, int]:
    """:return: The ``(row, col)`` of the first cell of ``maze_map`` marked ``marker`` (``R``: the fixed start, ``G``: the goal)."""
    return marked_cells(maze_map, marker)[0]


def evaluation_goal(dataset: minari.MinariDataset) -> np.ndarray:
    """:return: The ``(x, y)`` centre of the goal cell of the paper's evaluation map for this dataset (no env is made)."""
    if not is_antmaze(dataset):
        raise ValueError(f"Dataset '{dataset.spec.dataset_id}' is not an AntMaze dataset: it has no paper evaluation goal.")
    eval_map = paper_eval_map(_collection_map(dataset))
    return cell_centre(
        eval_map, marker_cell(eval_map, G), dataset.spec.env_spec.kwargs.get("maze_size_scaling", MAZE_SIZE_SCALING)
    )


def terminating_maze_env(collection_env: gym.Env, maze_map: list, max_episode_steps: int | None = None) -> gym.Env:
    """
    :param collection_env: An AntMaze env the data was collected in (its env id is used)
    :param maze_map: The map to make the env with (its ``r`` / ``g`` / ``c`` cells place starts and goals)
    :param max_episode_steps: Time limit (default: D4RL's for the maze)
    :return: That maze as a task that ends at the goal (``continuing_task=False``, no new goal on reaching it)
    """
    steps = max_episode_steps or PAPER_EVAL_STEPS[maze_size(maze_map)]
    env_id = collection_env.spec.id
    return gym.make(env_id, maze_map=maze_map, continuing_task=False, reset_target=False, max_episode_steps=steps)


def paper_task_env(collection_env: gym.Env, max_episode_steps: int | None = None) -> gym.Env:
    """:return: ``paper_eval_env`` made from an AntMaze collection env instead of a dataset"""
    return terminating_maze_env(collection_env, paper_eval_map(collection_env.unwrapped.maze.maze_map), max_episode_steps)


def paper_eval_env(dataset: minari.MinariDataset, max_episode_steps: int | None = None) -> gym.Env:
    """
    The paper's AntMaze evaluation env for a dataset: fixed start and goal (``paper_eval_map``), the episode
    ending when the ant reaches the goal (``continuing_task=False``), D4RL's time limit. Its return is 1 on
    success and 0 otherwise, so 100 x the success rate is the paper's score.

    :param dataset: An AntMaze Minari dataset (Minari's ``D4RL/antmaze/*-v1`` or sb3-iql's ``sb3-iql/antmaze/*-v1``)
    :param max_episode_steps: Time limit (default: 700 on umaze, 1,000 on medium and large)
    """
    collection = dataset.recover_environment()
    try:
        return paper_task_env(collection, max_episode_steps)
    finally:
        collection.close()
