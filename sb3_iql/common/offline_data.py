"""
Offline data into flat transition arrays, with the checks an offline run needs.

Three kinds of data come in: Minari datasets (an id, a folder or a ``MinariDataset``), D4RL-style
dicts of arrays, and SB3 replay buffers. Each becomes an ``OfflineData``: its name, its spaces and
its ``Transitions``, validated the same way.
"""

import hashlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import minari
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from sb3_iql.common.episodes import split_episodes, take_rows
from sb3_iql.common.wrappers import flatten_dict_observation, flatten_dict_space

ArrayOrDict = Union[np.ndarray, dict[str, np.ndarray]]
DatasetLike = Union[str, os.PathLike, minari.MinariDataset, Mapping[str, Any], ReplayBuffer]
D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


@dataclass
class Transitions:
    """
    Every ``(s, a, r, s')`` of a dataset, episodes concatenated in order.

    ``dones`` marks the last step of each episode (termination, truncation, or the end of a
    recorded episode); ``timeouts`` marks the ends that are not terminations, through which
    the TD target still bootstraps.
    """

    observations: ArrayOrDict
    next_observations: ArrayOrDict
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    timeouts: np.ndarray
    episode_returns: np.ndarray

    def __len__(self) -> int:
        return len(self.rewards)

    def fingerprint(self) -> str:
        """:return: A digest of the content: the same data gives the same fingerprint, whatever its name."""
        digest = hashlib.sha1()
        for array in (self.actions, self.rewards, self.dones, self.timeouts, *_arrays(self.observations)):
            digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()


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


def load_offline_data(
    data: DatasetLike,
    download: bool = False,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
    goal_semantics: str | None = None,
) -> OfflineData:
    """
    Read any supported offline data, checked for emptiness and NaN/inf.

    :param data: A Minari dataset id, folder or ``MinariDataset``; a D4RL-style dict of arrays
        (``observations``, ``actions``, ``rewards``, ``terminals``, ``timeouts``, optional
        ``next_observations``; observations an array or a dict of arrays); or an SB3 ``ReplayBuffer``
        / ``DictReplayBuffer``
    :param download: Download a Minari id that is not found locally
    :param observation_space: The space of a dict of arrays (default: unbounded Box(es) of its shapes)
    :param action_space: The action space of a dict of arrays (default: [-1, 1], D4RL's convention)
    :param goal_semantics: For goal-reaching Minari datasets (AntMaze): ``"episode"`` or ``"evaluation"`` gives
        the paper's task (terminal at the goal, the steps after it dropped; see ``sb3_iql.common.goal_reaching``)
    :return: The data
    """
    if isinstance(data, ReplayBuffer):
        return _from_replay_buffer(data)
    if isinstance(data, Mapping):
        return _from_arrays(data, observation_space, action_space)
    dataset = load_minari_dataset(data, download=download)
    if goal_semantics is not None:
        from sb3_iql.common.goal_reaching import goal_reaching_transitions

        transitions = goal_reaching_transitions(dataset, goal_semantics)
    else:
        transitions = dataset_transitions(dataset)
    return OfflineData(
        dataset.spec.dataset_id,
        flatten_dict_space(dataset.observation_space),
        dataset.action_space,
        transitions,
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
        local = ", ".join(sorted(minari.list_local_datasets())) or "none"
        raise FileNotFoundError(
            f"Minari dataset '{path}' was not found locally under {minari.storage.get_dataset_path()} "
            f"(local datasets: {local}). Pass download=True to fetch it from Minari's remote, build it "
            "with `python -m sb3_iql.datasets`, or set MINARI_DATASETS_PATH to where it lives."
        ) from None
    except ValueError as error:
        raise ValueError(f"'{path}' is neither a folder nor a valid Minari dataset id: {error}") from None


def dataset_transitions(dataset: minari.MinariDataset) -> Transitions:
    """
    Flatten a dataset's episodes into transitions, checking that it is not empty nor holds NaN/inf.

    :param dataset: The Minari dataset
    :return: The dataset's transitions
    """
    episodes = list(dataset.iterate_episodes())
    if not episodes or sum(len(episode) for episode in episodes) == 0:
        raise ValueError(f"Minari dataset '{dataset.spec.dataset_id}' holds no transitions: rebuild it with data.")
    observations = [flatten_dict_observation(episode.observations) for episode in episodes]
    terminations = np.concatenate([episode.terminations for episode in episodes]).astype(bool)
    episode_ends = np.zeros_like(terminations)
    episode_ends[np.cumsum([len(episode) for episode in episodes]) - 1] = True
    transitions = Transitions(
        observations=_concatenate([take_rows(obs, slice(None, -1)) for obs in observations]),
        next_observations=_concatenate([take_rows(obs, slice(1, None)) for obs in observations]),
        actions=np.concatenate([episode.actions for episode in episodes]).astype(np.float32),
        rewards=np.concatenate([episode.rewards for episode in episodes]).astype(np.float32),
        dones=episode_ends | terminations,
        timeouts=episode_ends & ~terminations,
        episode_returns=np.array([np.sum(episode.rewards, dtype=np.float64) for episode in episodes]),
    )
    _check_finite(transitions, dataset.spec.dataset_id)
    return transitions


def check_spaces(data: OfflineData, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """
    Raise a ``ValueError`` naming the difference if the data's spaces do not match the model's.

    :param data: The offline data
    :param observation_space: The model's observation space
    :param action_space: The model's action space
    """
    dataset_id = data.name
    mismatch = _space_mismatch(data.observation_space, flatten_dict_space(observation_space))
    if mismatch:
        raise ValueError(
            f"Observation space of dataset '{dataset_id}' does not match the model's: {mismatch}. "
            "Use an env of the task the dataset was collected on (dataset.recover_environment())."
        )
    if not isinstance(action_space, spaces.Box) or not isinstance(data.action_space, spaces.Box):
        raise ValueError(f"IQL needs Box actions; dataset '{dataset_id}' has {data.action_space}, the model {action_space}.")
    mismatch = _space_mismatch(data.action_space, action_space, compare_bounds=True)
    if mismatch:
        raise ValueError(f"Action space of dataset '{dataset_id}' does not match the model's: {mismatch}.")


def normalized_score(dataset: minari.MinariDataset, returns: np.ndarray) -> np.ndarray | None:
    """
    :return: D4RL-style normalized scores, ``100 * (R - ref_min) / (ref_max - ref_min)``,
        or None when the dataset has no reference scores
    """
    metadata = dataset.storage.metadata
    if metadata.get("ref_min_score") is None or metadata.get("ref_max_score") is None:
        return None
    return 100.0 * minari.get_normalized_score(dataset, np.asarray(returns, dtype=np.float64))


def _space_mismatch(expected: spaces.Space, actual: spaces.Space, compare_bounds: bool = False) -> str | None:
    if isinstance(expected, spaces.Dict) or isinstance(actual, spaces.Dict):
        if not (isinstance(expected, spaces.Dict) and isinstance(actual, spaces.Dict)):
            return f"dataset has {type(expected).__name__}, model has {type(actual).__name__}"
        if set(expected.spaces) != set(actual.spaces):
            return f"dataset keys {sorted(expected.spaces)} != model keys {sorted(actual.spaces)}"
        for key in expected.spaces:
            mismatch = _space_mismatch(expected[key], actual[key], compare_bounds)
            if mismatch:
                return f"key '{key}': {mismatch}"
        return None
    if expected.shape != actual.shape:
        return f"dataset shape {expected.shape} != model shape {actual.shape}"
    if compare_bounds and not (np.allclose(expected.low, actual.low) and np.allclose(expected.high, actual.high)):
        return f"dataset bounds [{expected.low}, {expected.high}] != model bounds [{actual.low}, {actual.high}]"
    return None


def _concatenate(parts: list) -> ArrayOrDict:
    if isinstance(parts[0], dict):
        return {key: np.concatenate([part[key] for part in parts]).astype(np.float32) for key in parts[0]}
    return np.concatenate(parts).astype(np.float32)


def _check_finite(transitions: Transitions, dataset_id: str) -> None:
    fields = {
        "observations": transitions.observations,
        "actions": transitions.actions,
        "rewards": transitions.rewards,
        "next_observations": transitions.next_observations,
    }
    for name, values in fields.items():
        for key, array in values.items() if isinstance(values, dict) else [("", values)]:
            bad = ~np.isfinite(array)
            if bad.any():
                where = f"{name}[{key!r}]" if key else name
                raise ValueError(
                    f"Dataset '{dataset_id}' has {int(bad.sum())} NaN/inf values in {where} "
                    f"(first at transition {int(np.argwhere(bad)[0][0])}): clean or rebuild the dataset."
                )


def _arrays(values: ArrayOrDict) -> list[np.ndarray]:
    return list(values.values()) if isinstance(values, dict) else [values]


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
    episode_returns = _episode_returns(rewards, ends)
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
        _as_float32(take_rows(observations, keep)),
        _as_float32(take_rows(next_observations, keep)),
        actions[keep],
        rewards[keep],
        (terminals | cut)[keep],
        (cut & ~terminals)[keep],
        episode_returns,
    )
    _check_finite(transitions, "dict of arrays")
    # The arrays' own shapes decide; a given space only adds its bounds where it fits them (else check_spaces
    # reports the mismatch against the model).
    inferred = _unbounded_space(observations)
    if observation_space is None or _space_mismatch(inferred, flatten_dict_space(observation_space)):
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
    episode_returns = _episode_returns(rewards, ends)
    transitions = Transitions(
        observations,
        next_observations,
        flat(buffer.actions).astype(np.float32).reshape(len(rewards), -1),
        rewards,
        dones,
        timeouts & dones,
        episode_returns,
    )
    _check_finite(transitions, type(buffer).__name__)
    return OfflineData(
        f"{type(buffer).__name__} of {len(transitions)} transitions",
        flatten_dict_space(buffer.observation_space),
        buffer.action_space,
        transitions,
        actions_scaled=True,
    )


def _episode_returns(rewards: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """:return: The return of each episode of a flat reward stream; ``ends`` marks each episode's last step (the last one too)."""
    return np.array([part.sum(dtype=np.float64) for part in np.split(rewards, np.flatnonzero(ends)[:-1] + 1)])


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


def _as_float32(values: ArrayOrDict) -> ArrayOrDict:
    if isinstance(values, dict):
        return {key: np.asarray(value, dtype=np.float32) for key, value in values.items()}
    return np.asarray(values, dtype=np.float32)


def _unbounded_space(observations: ArrayOrDict) -> spaces.Space:
    if isinstance(observations, dict):
        return spaces.Dict(
            {key: spaces.Box(-np.inf, np.inf, value.shape[1:], np.float32) for key, value in observations.items()}
        )
    return spaces.Box(-np.inf, np.inf, observations.shape[1:], np.float32)


def scale_actions(data: OfflineData, action_space: spaces.Box, clip: float) -> np.ndarray:
    """
    :return: The data's actions in the policy's [-1, 1] scale, clipped to ``+-clip``; warns with the share
        of actions that lay outside the action space's bounds
    """
    actions = data.transitions.actions
    if not data.actions_scaled:
        low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
        actions = 2.0 * (actions - low) / (high - low) - 1.0
    outside = np.abs(actions) > 1.0 + 1e-6
    if outside.any():
        warnings.warn(
            f"{outside.any(axis=1).mean():.2%} of the actions of '{data.name}' ({outside.mean():.2%} of their entries) lie "
            f"outside the action space [{action_space.low.min()}, {action_space.high.max()}]; they are clipped to its bounds.",
            stacklevel=3,
        )
    return np.clip(actions, -clip, clip).astype(np.float32)


def write_minari_dataset(
    dataset_id: str,
    data: Union[Mapping[str, Any], ReplayBuffer],
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
    **metadata: Any,
) -> minari.MinariDataset:
    """
    Write a D4RL-style dict of arrays or an SB3 replay buffer as a local Minari dataset (under
    ``MINARI_DATASETS_PATH``), so Minari tools and ``learn_offline(dataset_id)`` can use it.

    :param dataset_id: The Minari id, ``namespace/name-vN``
    :param data: The arrays or the buffer (checked as ``load_offline_data`` checks them)
    :param observation_space: Observation space of a dict of arrays (default: unbounded Box(es))
    :param action_space: Action space of a dict of arrays (default: [-1, 1])
    :param metadata: Further ``minari.create_dataset_from_buffers`` arguments (``env``, ``ref_min_score``, ...)
    :return: The dataset
    """
    offline = load_offline_data(data, observation_space=observation_space, action_space=action_space)
    transitions = offline.transitions
    actions = transitions.actions
    if offline.actions_scaled:  # SB3 buffers hold actions in [-1, 1]; a dataset holds them in the env's units
        low, high = offline.action_space.low, offline.action_space.high
        actions = (low + (actions + 1.0) * 0.5 * (high - low)).astype(np.float32)
    ends = np.flatnonzero(transitions.dones)
    if len(ends) == 0 or ends[-1] != len(transitions) - 1:
        ends = np.append(ends, len(transitions) - 1)
    episodes = split_episodes(
        transitions.observations,
        transitions.next_observations,
        actions,
        transitions.rewards,
        transitions.dones & ~transitions.timeouts,
        ends,
    )
    if metadata.get("env") is None:
        metadata.setdefault("observation_space", offline.observation_space)
        metadata.setdefault("action_space", offline.action_space)
    return minari.create_dataset_from_buffers(dataset_id, episodes, **metadata)
