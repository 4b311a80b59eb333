"""The data model: every ``(s, a, r, s')`` of a dataset as flat arrays, and the functions on them."""

import hashlib
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

ArrayOrDict = Union[np.ndarray, dict[str, np.ndarray]]


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
        for array in (self.actions, self.rewards, self.dones, self.timeouts, *arrays(self.observations)):
            digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()

    def check_finite(self, name: str) -> None:
        """Raise a ``ValueError`` that says where, if any observation, action or reward is NaN or inf."""
        fields = {
            "observations": self.observations,
            "actions": self.actions,
            "rewards": self.rewards,
            "next_observations": self.next_observations,
        }
        for field, values in fields.items():
            for key, array in values.items() if isinstance(values, dict) else [("", values)]:
                bad = ~np.isfinite(array)
                if bad.any():
                    where = f"{field}[{key!r}]" if key else field
                    raise ValueError(
                        f"Dataset '{name}' has {int(bad.sum())} NaN/inf values in {where} "
                        f"(first at transition {int(np.argwhere(bad)[0][0])}): clean or rebuild the dataset."
                    )


def episode_returns(rewards: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """
    :param rewards: A flat reward stream, episodes one after the other
    :param ends: Marks each episode's last step (the stream's last step ends one, whatever it says)
    :return: The undiscounted return of each episode, summed in float64
    """
    cuts = np.flatnonzero(ends[:-1]) + 1
    return np.array([part.sum(dtype=np.float64) for part in np.split(np.asarray(rewards), cuts)])


def take_rows(values: Any, index: np.ndarray | slice) -> Any:
    """:return: The rows ``index`` of an array, or of every array of a dict of arrays."""
    if isinstance(values, dict):
        return {key: np.asarray(value)[index] for key, value in values.items()}
    return np.asarray(values)[index]


def concatenate(parts: list[ArrayOrDict]) -> ArrayOrDict:
    """:return: Arrays (or dicts of arrays, key by key) concatenated along their rows, as float32."""
    if isinstance(parts[0], dict):
        return {key: np.concatenate([part[key] for part in parts]).astype(np.float32) for key in parts[0]}
    return np.concatenate(parts).astype(np.float32)


def as_float32(values: ArrayOrDict) -> ArrayOrDict:
    """:return: An array, or a dict of arrays, as float32."""
    if isinstance(values, dict):
        return {key: np.asarray(value, dtype=np.float32) for key, value in values.items()}
    return np.asarray(values, dtype=np.float32)


def arrays(values: ArrayOrDict) -> list[np.ndarray]:
    """:return: The array, or the arrays of a dict."""
    return list(values.values()) if isinstance(values, dict) else [values]
