"""
Readers: any supported offline data into an ``OfflineData`` (its name, spaces and ``Transitions``).

Three kinds of data come in: Minari datasets (an id, a folder or a ``MinariDataset``), D4RL-style
dicts of arrays, and SB3 replay buffers. Each is checked for emptiness and NaN/inf the same way.
"""

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import minari
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from sb3_iql.data.goals import paper_task_episodes
from sb3_iql.data.spaces import flatten_dict_observation, flatten_dict_space, space_mismatch, unbounded_space
from sb3_iql.data.transitions import ArrayOrDict, Transitions, as_float32, concatenate, episode_returns, take_rows

D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


@dataclass
class OfflineData:
    """
    Offline data ready for a replay buffer.

    :param name: The Minari id, or a description of the arrays or buffer it came from
    :param observation_space: Its observation space (nested Dicts flattened)
    :param action_space: Its action space
    :param transitions: Its transitions
    :param actions_scaled: Whether actions are already in the policy's [-1, 1] scale (SB3 replay buffers)
    :param minari_dataset: The Minari dataset, when it is one (reference scores, evaluation env)
    """

    name: str
    observation_space: spaces.Space
    action_space: spaces.Space
    transitions: Transitions
    actions_scaled: bool = False
    minari_dataset: minari.MinariDataset | None = None


DatasetLike = Union[str, os.PathLike, minari.MinariDataset, Mapping[str, Any], ReplayBuffer, OfflineData]


def load_offline_data(
    data: DatasetLike,
    download: bool = False,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
    goal_semantics: str | None = None,
) -> OfflineData:
    """
    Read any supported offline data, checked for emptiness and NaN/inf.

    :param data: Data already read (returned as it is), a Minari dataset id, folder or ``MinariDataset``; a D4RL-style dict of arrays
        (``observations``, ``actions``, ``rewards``, ``terminals``, ``timeouts``, optional
        ``next_observations``; observations an array or a dict of arrays); or an SB3 ``ReplayBuffer``
        / ``DictReplayBuffer``
    :param download: Download a Minari id that is not found locally
    :param observation_space: The space of a dict of arrays (default: unbounded Box(es) of its shapes)
    :param action_space: The action space of a dict of arrays (default: [-1, 1], D4RL's convention)
    :param goal_semantics: For goal-reaching Minari datasets (AntMaze): ``"episode"`` or ``"evaluation"`` gives
        the paper's task (terminal at the goal, the steps after it dropped; see ``sb3_iql.data.goals``)
    :return: The data
    """
    if isinstance(data, OfflineData):
        return data
    if isinstance(data, ReplayBuffer):
        return _from_replay_buffer(data)
    if isinstance(data, Mapping):
        return _from_arrays(data, observation_space, action_space)
    dataset = load_minari_dataset(data, download=download)
    return OfflineData(
        dataset.spec.dataset_id,
        flatten_dict_space(dataset.observation_space),
        dataset.action_space,
        dataset_transitions(dataset, goal_semantics),
        minari_dataset=dataset,
    )


def load_minari_dataset(dataset: DatasetLike, download: bool = False) -> minari.MinariDataset:
    """
    Resolve a dataset argument to a ``MinariDataset``.

    :param dataset: A Minari dataset id (looked up under ``MINARI_DATASETS_PATH``), a path to a
        dataset folder (the one holding ``data/``, or ``data/`` itself), or a ``MinariDataset``
    :param download: Download a missing dataset id from Minari's remote
    :return: The dataset
    """
    if isinstance(dataset, minari.MinariDataset):
        return dataset
    path = os.fspath(dataset)
    if os.path.isdir(path):
        data_path = os.path.join(path, "data") if os.path.isdir(os.path.join(path, "data")) else path
        if not os.path.exists(os.path.join(data_path, "metadata.json")):
            raise FileNotFoundError(
                f"{path} is a folder but not a Minari dataset: it has no metadata.json (nor data/metadata.json)."
            )
        return minari.MinariDataset(data_path)
    try:
        return minari.load_dataset(path, download=download)
    except FileNotFoundError:
        local_ids = sorted(minari.list_local_datasets())
        close = difflib.get_close_matches(path, local_ids, n=3, cutoff=0.6)
        hint = f"Did you mean {' or '.join(repr(name) for name in close)}? " if close else ""
        raise FileNotFoundError(
            f"Minari dataset '{path}' was not found locally under {minari.storage.get_dataset_path()}. {hint}"
            f"(local datasets: {', '.join(local_ids) or 'none'}). Pass download=True to fetch it from Minari's remote, "
            "build it with `python -m sb3_iql.datasets`, or set MINARI_DATASETS_PATH to where it lives."
        ) from None
    except ValueError as error:
        raise ValueError(f"'{path}' is neither a folder nor a valid Minari dataset id: {error}") from None


def dataset_transitions(dataset: minari.MinariDataset, goal_semantics: str | None = None) -> Transitions:
    """
    Flatten a dataset's episodes into transitions, checking that it is not empty nor holds NaN/inf.

    :param dataset: The Minari dataset
    :param goal_semantics: ``"episode"`` or ``"evaluation"``: the paper's goal-reaching task
        (``sb3_iql.data.goals.paper_task_episodes``) instead of the episodes as recorded
    :return: The dataset's transitions
    """
    episodes = read_episodes(dataset)
    observation_space = flatten_dict_space(dataset.observation_space)
    for index, episode in enumerate(episodes):
        _check_episode(episode, index, dataset.spec.dataset_id, observation_space)
    if goal_semantics is not None:
        episodes = paper_task_episodes(dataset, episodes, goal_semantics)
    return episode_transitions(episodes, dataset.spec.dataset_id)


def read_episodes(dataset: minari.MinariDataset) -> list:
    """:return: Every episode of the dataset, read from its file (a truncated or corrupt file is a clear error)."""
    try:
        return list(dataset.iterate_episodes())
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise ValueError(
            f"Dataset '{dataset.spec.dataset_id}' could not be read from {dataset.storage.data_path}: {error!r}. Its data "
            "file is truncated or corrupt (an interrupted copy or download?): rebuild it or download it again."
        ) from error


def episode_transitions(episodes: Sequence, name: str) -> Transitions:
    """
    :param episodes: Minari episodes (``EpisodeData`` or ``EpisodeBuffer``: observations one longer than actions)
    :param name: The data's name, for errors
    :return: The episodes' transitions, checked for emptiness and NaN/inf
    """
    lengths = [len(episode.rewards) for episode in episodes]
    if sum(lengths) == 0:
        raise ValueError(f"Minari dataset '{name}' holds no transitions: rebuild it with data.")
    observations = [flatten_dict_observation(episode.observations) for episode in episodes]
    terminations = np.concatenate([episode.terminations for episode in episodes]).astype(bool)
    episode_ends = np.zeros_like(terminations)
    episode_ends[np.cumsum(lengths) - 1] = True
    rewards = np.concatenate([np.asarray(episode.rewards, dtype=np.float64) for episode in episodes])
    transitions = Transitions(
        observations=concatenate([take_rows(obs, slice(None, -1)) for obs in observations]),
        next_observations=concatenate([take_rows(obs, slice(1, None)) for obs in observations]),
        actions=np.concatenate([episode.actions for episode in episodes]).astype(np.float32),
        rewards=rewards.astype(np.float32),
        dones=episode_ends | terminations,
        timeouts=episode_ends & ~terminations,
        episode_returns=episode_returns(rewards, episode_ends),
    )
    transitions.check_finite(name)
    return transitions


def _check_episode(episode: Any, index: int, name: str, observation_space: spaces.Space | None) -> None:
    """Raise a ``ValueError`` naming the episode if its arrays disagree on its length or its keys on the dataset's."""
    n_steps = len(episode.actions)
    observations = flatten_dict_observation(episode.observations)
    if isinstance(observation_space, spaces.Dict):
        keys = set(observations) if isinstance(observations, dict) else set()
        if keys != set(observation_space.spaces):
            raise ValueError(
                f"Dataset '{name}', episode {index}: observation keys {sorted(keys)} differ from the dataset's observation "
                f"space {sorted(observation_space.spaces)}: the dataset is inconsistent; rebuild it."
            )
    lengths = {"actions": n_steps, "rewards": len(episode.rewards), "terminations": len(episode.terminations)}
    lengths.update(
        {
            f"observations{'[' + repr(key) + ']' if key else ''} - 1": len(values) - 1
            for key, values in _named_rows(observations)
        }
    )
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"Dataset '{name}', episode {index}: its arrays disagree on the episode's length ({lengths}); an episode of "
            "n steps has n actions, rewards and terminations and n + 1 observations. The dataset is inconsistent: rebuild it."
        )


def _named_rows(observations: ArrayOrDict) -> list[tuple[str, Any]]:
    return list(observations.items()) if isinstance(observations, dict) else [("", observations)]


def _from_arrays(
    data: Mapping[str, Any], observation_space: spaces.Space | None, action_space: spaces.Space | None
) -> OfflineData:
    missing = [key for key in D4RL_KEYS if key not in data]
    if missing:
        raise ValueError(
            f"A dict of arrays needs the D4RL keys {list(D4RL_KEYS)} (and optionally 'next_observations'); "
            f"missing {missing}, got {sorted(data)}."
        )
    observations = _flat_observations(data["observations"])
    actions = np.asarray(data["actions"], dtype=np.float32)
    n = len(actions)
    rewards = np.asarray(data["rewards"], dtype=np.float32).reshape(-1)
    terminals = np.asarray(data["terminals"], dtype=bool).reshape(-1)
    timeouts = np.asarray(data["timeouts"], dtype=bool).reshape(-1)
    for name, values in {"rewards": rewards, "terminals": terminals, "timeouts": timeouts, **_named(observations)}.items():
        if len(values) != n:
            raise ValueError(f"'{name}' has {len(values)} rows but 'actions' has {n}: every array needs one row per step.")
    if n == 0:
        raise ValueError("The dict of arrays holds no transitions.")
    ends = terminals | timeouts
    ends[-1] = True  # the last row ends an episode, whatever its flags say
    if "next_observations" in data:
        next_observations = _flat_observations(data["next_observations"])
        keep, cut = np.ones(n, dtype=bool), ends & ~terminals
    else:
        # As D4RL's qlearning_dataset: s' is the next row. A row that ends an episode without terminating has
        # no s' of its own and is dropped; the row before it then ends the episode as a truncation.
        next_observations = _select_terminal_next(
            take_rows(observations, np.minimum(np.arange(n) + 1, n - 1)), observations, terminals
        )
        keep = ~(ends & ~terminals)
        previous = np.flatnonzero(~keep) - 1
        cut = np.zeros(n, dtype=bool)
        cut[previous[(previous >= 0) & ~ends[np.maximum(previous, 0)]]] = True
    transitions = Transitions(
        as_float32(take_rows(observations, keep)),
        as_float32(take_rows(next_observations, keep)),
        actions[keep],
        rewards[keep],
        (terminals | cut)[keep],
        (cut & ~terminals)[keep],
        episode_returns(rewards, ends),
    )
    transitions.check_finite("dict of arrays")
    # The arrays' own shapes decide; a given space only adds its bounds where it fits them (else check_spaces
    # reports the mismatch against the model).
    inferred = unbounded_space(observations)
    if observation_space is None or space_mismatch(inferred, flatten_dict_space(observation_space)):
        observation_space = inferred
    if action_space is None or getattr(action_space, "shape", None) != actions.shape[1:]:
        action_space = spaces.Box(-1.0, 1.0, actions.shape[1:], np.float32)
    return OfflineData(
        f"dict of {len(transitions)} transitions", flatten_dict_space(observation_space), action_space, transitions
    )


def _from_replay_buffer(buffer: ReplayBuffer) -> OfflineData:
    if getattr(buffer, "optimize_memory_usage", False):
        raise ValueError(
            "A replay buffer with optimize_memory_usage=True holds no next observations of its own: save it without."
        )
    n_rows = buffer.buffer_size if buffer.full else buffer.pos
    if n_rows == 0:
        raise ValueError(f"The {type(buffer).__name__} holds no transitions.")
    # SB3 lays rows out as (row, env); oldest first where the buffer wrapped around.
    order = np.roll(np.arange(n_rows), -buffer.pos) if buffer.full else np.arange(n_rows)

    def flat(values: np.ndarray) -> np.ndarray:
        values = values[order]
        return values.swapaxes(0, 1).reshape(-1, *values.shape[2:])  # env by env, each in time order

    if isinstance(buffer, DictReplayBuffer):
        observations = {key: flat(value).astype(np.float32) for key, value in buffer.observations.items()}
        next_observations = {key: flat(value).astype(np.float32) for key, value in buffer.next_observations.items()}
    else:
        observations, next_observations = (
            flat(buffer.observations).astype(np.float32),
            flat(buffer.next_observations).astype(np.float32),
        )
    timeouts = (
        flat(buffer.timeouts).astype(bool) if buffer.handle_timeout_termination else np.zeros(n_rows * buffer.n_envs, bool)
    )
    dones = flat(buffer.dones).astype(bool)
    rewards = flat(buffer.rewards).astype(np.float32)
    ends = dones.copy()
    ends[np.arange(1, buffer.n_envs + 1) * n_rows - 1] = True  # each env's stream ends an episode
    transitions = Transitions(
        observations,
        next_observations,
        flat(buffer.actions).astype(np.float32).reshape(len(rewards), -1),
        rewards,
        dones,
        timeouts & dones,
        episode_returns(rewards, ends),
    )
    transitions.check_finite(type(buffer).__name__)
    return OfflineData(
        f"{type(buffer).__name__} of {len(transitions)} transitions",
        flatten_dict_space(buffer.observation_space),
        buffer.action_space,
        transitions,
        actions_scaled=True,
    )


def _flat_observations(observations: Any) -> ArrayOrDict:
    return flatten_dict_observation(dict(observations)) if isinstance(observations, Mapping) else np.asarray(observations)


def _named(observations: ArrayOrDict) -> dict[str, np.ndarray]:
    if isinstance(observations, dict):
        return {f"observations[{key!r}]": value for key, value in observations.items()}
    return {"observations": observations}


def _select_terminal_next(next_observations: ArrayOrDict, observations: ArrayOrDict, terminals: np.ndarray) -> ArrayOrDict:
    """At a termination the next row starts another episode: use the terminal row itself (masked out anyway)."""
    if isinstance(next_observations, dict):
        return {
            key: np.where(_column(terminals, value), np.asarray(observations[key]), value)
            for key, value in next_observations.items()
        }
    return np.where(_column(terminals, next_observations), np.asarray(observations), next_observations)


def _column(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    return mask.reshape(-1, *([1] * (np.ndim(like) - 1)))
