"""Where AntMaze's task semantics lived before ``sb3_iql.data.goals`` and ``sb3_iql.tasks.antmaze``; kept for old imports."""

import minari

from sb3_iql.data.goals import GOALS, goal_segments, is_goal_dataset, paper_task_episodes
from sb3_iql.data.readers import episode_transitions
from sb3_iql.data.transitions import Transitions
from sb3_iql.tasks.antmaze import (
    GOAL_RADIUS,
    PAPER_EVAL_STEPS,
    evaluation_goal,
    paper_eval_env,
    paper_eval_map,
    paper_task_env,
)


def goal_reaching_transitions(
    dataset: minari.MinariDataset, goal: str = "episode", radius: float = GOAL_RADIUS
) -> Transitions:
    """:return: The transitions of ``paper_task_episodes`` (what ``dataset_transitions(dataset, goal)`` gives)."""
    episodes = paper_task_episodes(dataset, dataset.iterate_episodes(), goal, radius)
    return episode_transitions(episodes, dataset.spec.dataset_id)


__all__ = [
    "GOALS",
    "GOAL_RADIUS",
    "PAPER_EVAL_STEPS",
    "evaluation_goal",
    "goal_reaching_transitions",
    "goal_segments",
    "is_goal_dataset",
    "paper_eval_env",
    "paper_eval_map",
    "paper_task_env",
]
