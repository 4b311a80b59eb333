"""Preparation: offline data checked against a model and put in the form its replay buffer stores."""

import warnings

import numpy as np
from gymnasium import spaces

from sb3_iql.data.readers import OfflineData
from sb3_iql.data.spaces import check_spaces
from sb3_iql.data.transitions import ArrayOrDict

#: Dataset actions are kept strictly inside the action bounds, as the official IQL implementation does.
ACTION_CLIP = 1.0 - 1e-5


def check_fits(data: OfflineData, observation_space: spaces.Space, action_space: spaces.Space, capacity: int) -> None:
    """
    Raise a clear error if the data does not fit a model: its spaces, or a replay buffer of ``capacity`` transitions.

    :param data: The offline data
    :param observation_space: The model's observation space
    :param action_space: The model's action space
    :param capacity: Transitions the model's replay buffer holds
    """
    check_spaces(data.name, (data.observation_space, data.action_space), observation_space, action_space)
    if isinstance(action_space, spaces.Discrete):
        discrete_actions(data, action_space)
    if len(data.transitions) > capacity:
        raise ValueError(
            f"'{data.name}' has {len(data.transitions)} transitions, more than buffer_size={capacity}: "
            f"make the model with buffer_size >= {len(data.transitions)}."
        )


def scale_actions(actions: np.ndarray, action_space: spaces.Box) -> np.ndarray:
    """:return: Actions in the env's units mapped to the policy's [-1, 1] (SB3's ``scale_action``, for arrays)."""
    low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
    return 2.0 * (actions - low) / (high - low) - 1.0


def unscale_actions(actions: np.ndarray, action_space: spaces.Box) -> np.ndarray:
    """:return: Actions in the policy's [-1, 1] mapped back to the env's units (the inverse of ``scale_actions``)."""
    low, high = action_space.low, action_space.high
    return (low + (actions + 1.0) * 0.5 * (high - low)).astype(np.float32)


def policy_actions(data: OfflineData, action_space: spaces.Box, clip: float = ACTION_CLIP) -> np.ndarray:
    """
    :return: The data's actions in the policy's [-1, 1] scale, clipped to ``+-clip``; warns with the share
        of actions that lay outside the action space's bounds
    """
    actions = data.transitions.actions
    if isinstance(action_space, spaces.Discrete):
        return discrete_actions(data, action_space)
    if not data.actions_scaled:
        actions = scale_actions(actions, action_space)
    outside = np.abs(actions) > 1.0 + 1e-6
    if outside.any():
        warnings.warn(
            f"{outside.any(axis=1).mean():.2%} of the actions of '{data.name}' ({outside.mean():.2%} of their entries) lie "
            f"outside the action space [{action_space.low.min()}, {action_space.high.max()}]; they are clipped to its bounds.",
            stacklevel=4,
        )
    return np.clip(actions, -clip, clip).astype(np.float32)


def discrete_actions(data: OfflineData, action_space: spaces.Discrete) -> np.ndarray:
    """:return: The data's action indices (``0 .. n - 1``, as the buffer's float32 column), checked to be whole and in range."""
    actions = np.asarray(data.transitions.actions, dtype=np.float64).reshape(len(data.transitions), -1)
    indices = actions - action_space.start
    bad = (indices != np.round(indices)) | (indices < 0) | (indices >= action_space.n)
    if actions.shape[1] != 1 or bad.any():
        where = int(np.argwhere(bad)[0][0]) if bad.any() else 0
        raise ValueError(
            f"'{data.name}' has actions that are not indices of {action_space} (first at transition {where}: "
            f"{actions[where].tolist()}): a Discrete model needs one whole action index per transition."
        )
    return indices.astype(np.float32)


def buffer_fields(data: OfflineData, action_space: spaces.Space) -> dict[str, ArrayOrDict]:
    """:return: What a replay buffer stores of the data, by field name, actions in the policy's scale (or as indices)."""
    transitions = data.transitions
    return {
        "observations": transitions.observations,
        "next_observations": transitions.next_observations,
        "actions": policy_actions(data, action_space),
        "rewards": transitions.rewards,
        "dones": transitions.dones,
        "timeouts": transitions.timeouts,
    }
