"""Writers: offline data out as a local Minari dataset."""

from collections.abc import Mapping
from typing import Any, Union

import minari
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_iql.data.episodes import split_episodes
from sb3_iql.data.preparation import unscale_actions
from sb3_iql.data.readers import load_offline_data


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
    if isinstance(offline.action_space, spaces.Discrete):
        actions = np.asarray(actions).reshape(len(transitions)).astype(np.int64)
    elif offline.actions_scaled:  # SB3 buffers hold actions in [-1, 1]; a dataset holds them in the env's units
        actions = unscale_actions(actions, offline.action_space)
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
    else:
        metadata.setdefault("eval_env", metadata["env"])  # Minari's default, said so that it does not warn
    return minari.create_dataset_from_buffers(dataset_id, episodes, **metadata)
