"""
Goal-reaching data with the IQL paper's task semantics (AntMaze), and the paper's evaluation env.

Minari's ``D4RL/antmaze/*-v1`` (and our ``sb3-iql/antmaze/*-v1``) were collected as a continuing task:
no terminations, and once the ant reaches the goal it stays there, collecting reward 1 until the time
limit. The paper's D4RL data had a terminal where the ant reached the goal, rewards shifted to -1 a
step (0 at the goal), and its score was 100 x the success rate. ``goal_reaching_transitions`` turns
a recorded dataset into that task:

- a transition whose next state lies within ``radius`` of the goal is terminal, with reward 1 (the
  IQL preset's shift of -1 makes it 0 and every other step -1);
- the steps after a reach, while the ant stays within the goal region, are dropped;
- should the ant leave the region again within the same recorded episode, a new episode starts at
  its first state outside, and ends at the next reach (or where the recording ends, a truncation).

Which goal: ``"episode"`` keeps each episode's own goal (``desired_goal``, which the policy then sees:
a goal-conditioned policy); ``"evaluation"`` relabels every episode against the evaluation goal, as
the paper's single-goal task, and writes that goal into ``desired_goal``.
"""

import gymnasium as gym
import minari
import numpy as np

from sb3_iql.common.offline_data import Transitions, _check_finite

GOAL_RADIUS = 0.45
GOALS = ("episode", "evaluation")
ROBOT_START, GOAL_CELL = "r", "g"
# The paper evaluated on D4RL's fixed start and goal, in the maze the data was collected in, for 700 steps
# on umaze and 1,000 on medium and large.
PAPER_EVAL_STEPS = {"umaze": 700, "medium": 1000, "large": 1000}


def is_goal_dataset(dataset: minari.MinariDataset) -> bool:
    """:return: Whether observations are a Dict with ``achieved_goal`` and ``desired_goal`` (AntMaze, PointMaze, ...)."""
    space = dataset.observation_space
    return isinstance(space, gym.spaces.Dict) and {"achieved_goal", "desired_goal"} <= set(space.spaces)


def goal_segments(reached: np.ndarray) -> list[tuple[int, int, bool]]:
    """
    Cut one recorded episode at its goal reaches.

    :param reached: Per step, whether the step's next state lies in the goal region
    :return: ``(first, last, reached_goal)`` step indices of each kept segment, as the module docstring says
    """
    segments, start, n_steps = [], 0, len(reached)
    while start < n_steps:
        reaches = np.flatnonzero(reached[start:])
        if len(reaches) == 0:
            segments.append((start, n_steps - 1, False))
            break
        end = start + int(reaches[0])
        segments.append((start, end, True))
        # The next segment starts at the first state outside the goal region again: state j is outside when
        # step j - 1 did not end in the region.
        outside = np.flatnonzero(~reached[end + 1 :])
        if len(outside) == 0:
            break
        start = end + 2 + int(outside[0])
    return segments


def evaluation_goal(dataset: minari.MinariDataset) -> np.ndarray:
    """:return: The ``(x, y)`` centre of the goal cell of the paper's evaluation map for this dataset."""
    env = paper_eval_env(dataset)
    maze_map = env.unwrapped.maze.maze_map
    cell = next((row, col) for row, line in enumerate(maze_map) for col, value in enumerate(line) if value == GOAL_CELL)
    goal = env.unwrapped.maze.cell_rowcol_to_xy(np.array(cell))
    env.close()
    return goal


def goal_reaching_transitions(
    dataset: minari.MinariDataset, goal: str = "episode", radius: float = GOAL_RADIUS
) -> Transitions:
    """
    The dataset's transitions with the paper's semantics (module docstring).

    :param dataset: A goal-reaching Minari dataset (Dict observations with ``achieved_goal`` / ``desired_goal``)
    :param goal: ``"episode"`` (each episode's own goal) or ``"evaluation"`` (the paper's fixed evaluation goal)
    :param radius: Distance to the goal that counts as reaching it (AntMaze: 0.45)
    :return: The transitions
    """
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {GOALS}, got '{goal}'.")
    if not is_goal_dataset(dataset):
        raise ValueError(
            f"Dataset '{dataset.spec.dataset_id}' has no achieved_goal/desired_goal observations: the goal-reaching "
            "semantics apply to goal datasets such as AntMaze; leave goal_semantics unset for it."
        )
    fixed_goal = evaluation_goal(dataset) if goal == "evaluation" else None
    parts: dict[str, list] = {name: [] for name in ("obs", "next_obs", "actions", "rewards", "dones", "timeouts")}
    returns = []
    for episode in dataset.iterate_episodes():
        observations = {key: np.asarray(value, dtype=np.float32) for key, value in episode.observations.items()}
        if fixed_goal is not None:
            observations["desired_goal"] = np.broadcast_to(fixed_goal, observations["desired_goal"].shape).astype(np.float32)
        distance = np.linalg.norm(observations["achieved_goal"][1:] - observations["desired_goal"][1:], axis=-1)
        reached = distance <= radius
        for first, last, reached_goal in goal_segments(reached):
            steps = slice(first, last + 1)
            parts["obs"].append({key: value[first : last + 1] for key, value in observations.items()})
            parts["next_obs"].append({key: value[first + 1 : last + 2] for key, value in observations.items()})
            parts["actions"].append(np.asarray(episode.actions[steps], dtype=np.float32))
            rewards = np.zeros(last + 1 - first, dtype=np.float32)
            rewards[-1] = float(reached_goal)
            parts["rewards"].append(rewards)
            ends = np.zeros(last + 1 - first, dtype=bool)
            ends[-1] = True
            terminal = reached_goal or bool(episode.terminations[last])
            parts["dones"].append(ends)
            parts["timeouts"].append(ends & (not terminal))
            returns.append(float(reached_goal))
    if not parts["rewards"]:
        raise ValueError(f"Dataset '{dataset.spec.dataset_id}' holds no transitions.")
    transitions = Transitions(
        observations={key: np.concatenate([part[key] for part in parts["obs"]]) for key in parts["obs"][0]},
        next_observations={key: np.concatenate([part[key] for part in parts["next_obs"]]) for key in parts["obs"][0]},
        actions=np.concatenate(parts["actions"]),
        rewards=np.concatenate(parts["rewards"]),
        dones=np.concatenate(parts["dones"]),
        timeouts=np.concatenate(parts["timeouts"]),
        episode_returns=np.array(returns),
    )
    _check_finite(transitions, dataset.spec.dataset_id)
    return transitions


def _walls(maze_map: list) -> list[list[bool]]:
    return [[cell == 1 for cell in row] for row in maze_map]


def _maze_size(maze_map: list) -> str:
    from gymnasium_robotics.envs.maze import maps

    for name, layout in (("umaze", maps.U_MAZE), ("medium", maps.MEDIUM_MAZE), ("large", maps.LARGE_MAZE)):
        if _walls(layout) == _walls(maze_map):
            return name
    raise ValueError("The dataset's maze is none of AntMaze's umaze, medium or large: pass an evaluation env yourself.")


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
    from sb3_iql.datasets.antmaze import EVAL_MAPS, UMAZE_DATA_MAP

    size = _maze_size(maze_map)
    return UMAZE_DATA_MAP if size == "umaze" else EVAL_MAPS[size]


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


def paper_task_env(collection_env: gym.Env, max_episode_steps: int | None = None) -> gym.Env:
    """:return: ``paper_eval_env`` made from an AntMaze collection env instead of a dataset"""
    data_map, env_id = collection_env.unwrapped.maze.maze_map, collection_env.spec.id
    steps = max_episode_steps or PAPER_EVAL_STEPS[_maze_size(data_map)]
    return gym.make(
        env_id, maze_map=paper_eval_map(data_map), continuing_task=False, reset_target=False, max_episode_steps=steps
    )
