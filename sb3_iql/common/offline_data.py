"""Read Minari datasets into flat transition arrays, with the checks an offline run needs."""

import os
from dataclasses import dataclass
from typing import Union

import minari
import numpy as np
from gymnasium import spaces

ArrayOrDict = Union[np.ndarray, dict[str, np.ndarray]]
DatasetLike = Union[str, os.PathLike, minari.MinariDataset]


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
    observations = [episode.observations for episode in episodes]
    terminations = np.concatenate([episode.terminations for episode in episodes]).astype(bool)
    episode_ends = np.zeros_like(terminations)
    episode_ends[np.cumsum([len(episode) for episode in episodes]) - 1] = True
    transitions = Transitions(
        observations=_concatenate([_slice(obs, slice(None, -1)) for obs in observations]),
        next_observations=_concatenate([_slice(obs, slice(1, None)) for obs in observations]),
        actions=np.concatenate([episode.actions for episode in episodes]).astype(np.float32),
        rewards=np.concatenate([episode.rewards for episode in episodes]).astype(np.float32),
        dones=episode_ends | terminations,
        timeouts=episode_ends & ~terminations,
        episode_returns=np.array([np.sum(episode.rewards, dtype=np.float64) for episode in episodes]),
    )
    _check_finite(transitions, dataset.spec.dataset_id)
    return transitions


def check_spaces(dataset: minari.MinariDataset, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """
    Raise a ``ValueError`` naming the difference if the dataset's spaces do not match the model's.

    :param dataset: The Minari dataset
    :param observation_space: The model's observation space
    :param action_space: The model's action space
    """
    dataset_id = dataset.spec.dataset_id
    mismatch = _space_mismatch(dataset.observation_space, observation_space)
    if mismatch:
        raise ValueError(
            f"Observation space of dataset '{dataset_id}' does not match the model's: {mismatch}. "
            "Use an env of the task the dataset was collected on (dataset.recover_environment())."
        )
    if not isinstance(action_space, spaces.Box) or not isinstance(dataset.action_space, spaces.Box):
        raise ValueError(
            f"IQL needs Box actions; dataset '{dataset_id}' has {dataset.action_space}, the model {action_space}."
        )
    mismatch = _space_mismatch(dataset.action_space, action_space, compare_bounds=True)
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


def _slice(observations: ArrayOrDict, index: slice) -> ArrayOrDict:
    if isinstance(observations, dict):
        return {key: value[index] for key, value in observations.items()}
    return observations[index]


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
