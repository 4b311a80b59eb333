"""Spaces of offline data: nested Dicts flattened, and the one check that data fits a model."""

from typing import Any

import numpy as np
from gymnasium import spaces

#: Joins the keys of nested Dict observations: ``{"desired_goal": {"microwave": x}}`` -> ``"desired_goal/microwave"``.
KEY_SEPARATOR = "/"


def has_nested_dict(space: spaces.Space) -> bool:
    """:return: Whether ``space`` is a Dict with a Dict inside (Minari's FrankaKitchen goals, for one)."""
    return isinstance(space, spaces.Dict) and any(isinstance(sub, spaces.Dict) for sub in space.spaces.values())


def flatten_dict_space(space: spaces.Space) -> spaces.Space:
    """:return: ``space`` with nested Dicts merged into one level of ``"outer/inner"`` keys (other spaces unchanged)."""
    if not isinstance(space, spaces.Dict):
        return space
    flat: dict[str, spaces.Space] = {}
    for key, sub in space.spaces.items():
        if isinstance(sub, spaces.Dict):
            for inner_key, inner in flatten_dict_space(sub).spaces.items():
                flat[f"{key}{KEY_SEPARATOR}{inner_key}"] = inner
        else:
            flat[key] = sub
    return spaces.Dict(flat)


def flatten_dict_observation(observation: Any) -> Any:
    """:return: ``observation`` (one or a batch) with nested dicts merged as ``flatten_dict_space`` merges the space."""
    if not isinstance(observation, dict):
        return observation
    flat = {}
    for key, value in observation.items():
        if isinstance(value, dict):
            for inner_key, inner in flatten_dict_observation(value).items():
                flat[f"{key}{KEY_SEPARATOR}{inner_key}"] = inner
        else:
            flat[key] = value
    return flat


def space_mismatch(
    expected: spaces.Space, actual: spaces.Space, compare_bounds: bool = False, what: str = "dataset"
) -> str | None:
    """
    :param what: What ``expected`` belongs to, for the message (``actual`` is the model's)
    :return: What differs between two Box or Dict-of-Box spaces (shapes, keys, and bounds if asked), or None
    """
    if isinstance(expected, spaces.Dict) or isinstance(actual, spaces.Dict):
        if not (isinstance(expected, spaces.Dict) and isinstance(actual, spaces.Dict)):
            return f"{what} has {type(expected).__name__}, model has {type(actual).__name__}"
        if set(expected.spaces) != set(actual.spaces):
            return f"{what} keys {sorted(expected.spaces)} != model keys {sorted(actual.spaces)}"
        for key in expected.spaces:
            mismatch = space_mismatch(expected[key], actual[key], compare_bounds, what)
            if mismatch:
                return f"key '{key}': {mismatch}"
        return None
    if type(expected) is not type(actual):
        return f"{what} has {type(expected).__name__}, model has {type(actual).__name__}"
    if isinstance(expected, spaces.Discrete):
        return (
            None if (expected.n, expected.start) == (actual.n, actual.start) else f"{what} has {expected}, model has {actual}"
        )
    if expected.shape != actual.shape:
        return f"{what} shape {expected.shape} != model shape {actual.shape}"
    if compare_bounds and not (np.allclose(expected.low, actual.low) and np.allclose(expected.high, actual.high)):
        return f"{what} bounds [{expected.low}, {expected.high}] != model bounds [{actual.low}, {actual.high}]"
    return None


def check_spaces(
    name: str,
    data_spaces: tuple[spaces.Space, spaces.Space],
    observation_space: spaces.Space,
    action_space: spaces.Space,
) -> None:
    """
    Raise a ``ValueError`` naming the difference if the data's spaces do not match the model's.

    :param name: The data's name, for the message
    :param data_spaces: The data's observation and action spaces
    :param observation_space: The model's observation space
    :param action_space: The model's action space
    """
    data_observation_space, data_action_space = data_spaces
    mismatch = space_mismatch(data_observation_space, flatten_dict_space(observation_space))
    if mismatch:
        raise ValueError(
            f"Observation space of dataset '{name}' does not match the model's: {mismatch}. "
            "Use an env of the task the dataset was collected on (dataset.recover_environment())."
        )
    for space in (data_action_space, action_space):
        if not isinstance(space, (spaces.Box, spaces.Discrete)):
            raise ValueError(
                f"IQL takes Box or Discrete actions; dataset '{name}' has {data_action_space}, the model {action_space}."
            )
    if type(data_action_space) is not type(action_space):
        raise ValueError(
            f"Dataset '{name}' has {type(data_action_space).__name__} actions ({data_action_space}) but the model "
            f"{type(action_space).__name__} ones ({action_space}): make the model with an env (or spaces) of the dataset's task."
        )
    if isinstance(action_space, spaces.Discrete):
        if (data_action_space.n, data_action_space.start) != (action_space.n, action_space.start):
            raise ValueError(f"Action space of dataset '{name}' is {data_action_space}, the model's {action_space}.")
        return
    mismatch = space_mismatch(data_action_space, action_space, compare_bounds=True)
    if mismatch:
        raise ValueError(f"Action space of dataset '{name}' does not match the model's: {mismatch}.")


def unbounded_space(observations: np.ndarray | dict[str, np.ndarray]) -> spaces.Space:
    """:return: Unbounded float32 Box(es) of the observations' shapes (a Dict for a dict of arrays)."""
    if isinstance(observations, dict):
        return spaces.Dict(
            {key: spaces.Box(-np.inf, np.inf, value.shape[1:], np.float32) for key, value in observations.items()}
        )
    return spaces.Box(-np.inf, np.inf, observations.shape[1:], np.float32)
