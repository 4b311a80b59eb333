"""Episodes as Minari ``EpisodeBuffer`` s: recorded from a policy in an env, or cut from flat arrays."""

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from minari.data_collector.episode_buffer import EpisodeBuffer
from tqdm.auto import tqdm

from sb3_iql.data.transitions import take_rows

Policy = Callable[[Any], np.ndarray]


def stack_observations(observations: Sequence[Any]) -> np.ndarray | dict[str, np.ndarray]:
    """Stack a list of Box or (nested) Dict observations into one array or a (nested) dict of arrays."""
    if isinstance(observations[0], dict):
        return {key: stack_observations([obs[key] for obs in observations]) for key in observations[0]}  # type: ignore[misc]
    return np.array(observations)


def as_action_array(actions: Any) -> np.ndarray:
    """:return: Continuous actions as float32, discrete ones (integers) as they are."""
    actions = np.asarray(actions)
    return actions.astype(np.float32) if np.issubdtype(actions.dtype, np.floating) else actions


def episode_buffer(
    observations: Sequence[Any],
    actions: Sequence[np.ndarray],
    rewards: Sequence[float],
    terminations: Sequence[bool],
    truncations: Sequence[bool],
    infos: Sequence[dict[str, Any]] | None = None,
) -> EpisodeBuffer:
    """
    :param infos: Per-step info dicts, one per observation (the reset's first), as Minari records them
    :return: A Minari episode of ``len(actions)`` steps (``observations`` has one more entry)
    """
    if len(observations) != len(actions) + 1:
        raise ValueError(f"An episode needs one more observation than actions; got {len(observations)} and {len(actions)}.")
    return EpisodeBuffer(
        observations=stack_observations(observations),
        actions=as_action_array(actions),
        rewards=np.asarray(rewards, dtype=np.float64),
        terminations=np.asarray(terminations, dtype=bool),
        truncations=np.asarray(truncations, dtype=bool),
        infos=stack_observations(infos) if infos else None,  # type: ignore[arg-type]
    )


def split_episodes(
    observations: np.ndarray | dict[str, np.ndarray],
    next_observations: np.ndarray | dict[str, np.ndarray],
    actions: np.ndarray,
    rewards: np.ndarray,
    terminals: np.ndarray,
    ends: np.ndarray,
    description: str = "episodes",
    progress: bool = False,
) -> list[EpisodeBuffer]:
    """
    Cut flat arrays of transitions (Box observations, or dicts of arrays) into episodes.

    :param ends: Index of each episode's last step (the last one must be the last row)
    :param terminals: Whether each step terminated; an episode's last step that did not is a truncation
    :return: Episodes whose final observation is the next observation of their last step
    """

    def episode_observations(start: int, end: int) -> np.ndarray | dict[str, np.ndarray]:
        if isinstance(observations, dict):
            return {
                key: np.concatenate([observations[key][start : end + 1], next_observations[key][end : end + 1]])
                for key in observations
            }  # type: ignore[index]
        return np.concatenate([observations[start : end + 1], next_observations[end : end + 1]])  # type: ignore[index]

    episodes, start = [], 0
    for end in tqdm(ends, desc=description, unit="episode", disable=not progress):
        last_step = np.arange(start, end + 1) == end
        terminal = bool(terminals[end])
        episodes.append(
            EpisodeBuffer(
                observations=episode_observations(start, end),
                actions=as_action_array(actions[start : end + 1]),
                rewards=np.asarray(rewards[start : end + 1], dtype=np.float64),
                terminations=last_step & terminal,
                truncations=last_step & (not terminal),
            )
        )
        start = end + 1
    return episodes


def rollout_episode(env: gym.Env, policy: Policy, seed: int | None = None, max_steps: int | None = None) -> EpisodeBuffer:
    """Run ``policy`` in ``env`` for one episode, until it ends or ``max_steps`` steps (then truncated)."""
    observation, _ = env.reset(seed=seed)
    observations, actions, rewards, terminations, truncations = [observation], [], [], [], []
    done = False
    while not done:
        action = as_action_array(policy(observation))
        observation, reward, terminated, truncated, _ = env.step(action)
        truncated = truncated or (max_steps is not None and len(actions) + 1 >= max_steps and not terminated)
        observations.append(observation)
        actions.append(action)
        rewards.append(float(reward))
        terminations.append(terminated)
        truncations.append(truncated)
        done = terminated or truncated
    return episode_buffer(observations, actions, rewards, terminations, truncations)


def rollout_episodes(
    env: gym.Env, policy: Policy, n_episodes: int, seed: int = 0, description: str = "rollouts", progress: bool = True
) -> list[EpisodeBuffer]:
    """Roll out ``n_episodes`` episodes, seeding the env's resets with ``seed, seed + 1, ...``."""
    return [
        rollout_episode(env, policy, seed=seed + episode)
        for episode in tqdm(range(n_episodes), desc=description, unit="episode", disable=not progress)
    ]


def rollout_transitions(
    env: gym.Env, policy: Policy, n_transitions: int, seed: int = 0, description: str = "rollouts", progress: bool = True
) -> list[EpisodeBuffer]:
    """Roll out episodes until there are ``n_transitions`` transitions; the last one is cut (truncated) to fit."""
    episodes: list[EpisodeBuffer] = []
    collected = 0  # a disabled tqdm does not count
    with tqdm(total=n_transitions, desc=description, unit="step", disable=not progress) as bar:
        while collected < n_transitions:
            episodes.append(rollout_episode(env, policy, seed=seed + len(episodes), max_steps=n_transitions - collected))
            collected += len(episodes[-1].actions)
            bar.update(len(episodes[-1].actions))
    return episodes


def cut_episode(episode: EpisodeBuffer, max_steps: int) -> list[EpisodeBuffer]:
    """
    Cut an episode longer than the task's limit into consecutive pieces of at most ``max_steps``, each
    ending in a truncation (its last piece keeps the episode's own ending): every transition is kept.
    """
    n_steps = len(episode.actions)
    observations = episode.observations
    ends = np.unique(np.append(np.arange(max_steps - 1, n_steps, max_steps), n_steps - 1))
    return split_episodes(
        take_rows(observations, slice(None, -1)),
        take_rows(observations, slice(1, None)),
        episode.actions,
        episode.rewards,
        np.asarray(episode.terminations, dtype=bool),
        ends,
    )
