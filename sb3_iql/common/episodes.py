"""Where the episode helpers lived before ``sb3_iql.data.episodes``; kept so that code importing them still runs."""

from sb3_iql.data.episodes import (
    Policy,
    cut_episode,
    episode_buffer,
    rollout_episode,
    rollout_episodes,
    rollout_transitions,
    split_episodes,
    stack_observations,
)
from sb3_iql.data.transitions import take_rows

__all__ = [
    "Policy",
    "cut_episode",
    "episode_buffer",
    "rollout_episode",
    "rollout_episodes",
    "rollout_transitions",
    "split_episodes",
    "stack_observations",
    "take_rows",
]
