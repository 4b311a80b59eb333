"""
Goal-reaching data with the IQL paper's task semantics (AntMaze): a transform of episodes.

Minari's ``D4RL/antmaze/*-v1`` (and our ``sb3-iql/antmaze/*-v1``) were collected as a continuing task:
no terminations, and once the ant reaches the goal it stays there, collecting reward 1 until the time
limit. The paper's D4RL data had a terminal where the ant reached the goal, rewards shifted to -1 a
step (0 at the goal), and its score was 100 x the success rate. ``paper_task_episodes`` turns the
recorded episodes into that task:

- a transition whose next state lies within ``GOAL_RADIUS`` of the goal is terminal, with reward 1 (the
  IQL preset's shift of -1 makes it 0 and every other step -1);
- the steps after a reach, while the ant stays within the goal region, are dropped;
- should the ant leave the region again within the same recorded episode, a new episode starts at
  its first state outside, and ends at the next reach (or where the recording ends, a truncation).

Which goal: ``"episode"`` keeps each episode's own goal (``desired_goal``, which the policy then sees:
a goal-conditioned policy); ``"evaluation"`` relabels every episode against the evaluation goal, as
the paper's single-goal task, and writes that goal into ``desired_goal``.
"""

from collections.abc import Iterable

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector.episode_buffer import EpisodeBuffer

from sb3_iql.tasks.antmaze import GOAL_RADIUS, evaluation_goal, is_antmaze, paper_eval_env
from sb3_iql.tasks.antmaze_d4rl import is_d4rl_antmaze

GOALS = ("episode", "evaluation")


def is_goal_dataset(dataset: minari.MinariDataset) -> bool:
    """:return: Whether observations are a Dict with ``achieved_goal`` and ``desired_goal`` (AntMaze, PointMaze, ...)."""
    space = dataset.observation_space
    return isinstance(space, gym.spaces.Dict) and {"achieved_goal", "desired_goal"} <= set(space.spaces)


def check_goal_semantics(dataset: minari.MinariDataset, goal: str) -> None:
    """Raise a ``ValueError`` unless ``goal`` is one of ``GOALS`` and the dataset has goals to apply it to."""
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {GOALS}, got '{goal}'.")
    if not is_goal_dataset(dataset) and not is_d4rl_antmaze(dataset):
        raise ValueError(
            f"Dataset '{dataset.spec.dataset_id}' has no achieved_goal/desired_goal observations: the goal-reaching "
            "semantics apply to goal datasets such as AntMaze; leave goal_semantics unset for it."
        )


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


def paper_task_episodes(
    dataset: minari.MinariDataset, episodes: Iterable, goal: str = "episode", radius: float = GOAL_RADIUS
) -> list[EpisodeBuffer]:
    """
    The dataset's episodes with the paper's semantics (module docstring).

    :param dataset: A goal-reaching Minari dataset (Dict observations with ``achieved_goal`` / ``desired_goal``)
    :param episodes: Its episodes (``dataset.iterate_episodes()``)
    :param goal: ``"episode"`` (each episode's own goal) or ``"evaluation"`` (the paper's fixed evaluation goal)
    :param radius: Distance to the goal that counts as reaching it (AntMaze: 0.45)
    :return: The episodes of the paper's task, each ending at a reach (a termination) or where the recording ends
    """
    check_goal_semantics(dataset, goal)
    if is_d4rl_antmaze(dataset):
        # D4RL's design: the data already are the paper's task, relabelled to its goal, terminal where it is reached.
        return list(episodes)
    fixed_goal = evaluation_goal(dataset) if goal == "evaluation" else None
    segments = []
    for episode in episodes:
        observations = {key: np.asarray(value, dtype=np.float32) for key, value in episode.observations.items()}
        if fixed_goal is not None:
            observations["desired_goal"] = np.broadcast_to(fixed_goal, observations["desired_goal"].shape).astype(np.float32)
        distance = np.linalg.norm(observations["achieved_goal"][1:] - observations["desired_goal"][1:], axis=-1)
        for first, last, reached_goal in goal_segments(distance <= radius):
            n_steps = last + 1 - first
            rewards = np.zeros(n_steps, dtype=np.float32)
            rewards[-1] = float(reached_goal)
            last_step = np.arange(n_steps) == n_steps - 1
            terminal = reached_goal or bool(episode.terminations[last])
            segments.append(
                EpisodeBuffer(
                    observations={key: value[first : last + 2] for key, value in observations.items()},
                    actions=np.asarray(episode.actions[first : last + 1], dtype=np.float32),
                    rewards=rewards,
                    terminations=last_step & terminal,
                    truncations=last_step & (not terminal),
                )
            )
    return segments


def is_maze_task(dataset: minari.MinariDataset) -> bool:
    """:return: Whether the dataset is AntMaze's (either ant): its policies are scored by the paper's task's success rate."""
    return is_antmaze(dataset) or is_d4rl_antmaze(dataset)


def evaluation_env(dataset: minari.MinariDataset) -> tuple[gym.Env, bool]:
    """
    The env a dataset's policies are evaluated in, and how they are scored: the one place that chooses.

    :return: For AntMaze, the paper's terminating maze (``paper_eval_env``) and ``True``: scored as 100 x the
        success rate; for the D4RL-physics AntMaze, its evaluation env (already the paper's task) and ``True``; for any
        other dataset, Minari's evaluation env and ``False``: scored by the dataset's
        reference scores
    """
    env = paper_eval_env(dataset) if is_antmaze(dataset) else dataset.recover_environment(eval_env=True)
    return env, is_maze_task(dataset)
