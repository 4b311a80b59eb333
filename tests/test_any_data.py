"""Any data in: D4RL-style dicts of arrays and SB3 replay buffers, with the same checks as Minari data."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from sb3_iql import IQL, load_offline_data, write_minari_dataset
from sb3_iql.common.offline_data import dataset_transitions

SMALL = {"net_arch": [32, 32]}


def small_iql(env, **kwargs) -> IQL:
    return IQL(
        kwargs.pop("policy", "MlpPolicy"), env, seed=0, device="cpu", batch_size=32, policy_kwargs=dict(SMALL), **kwargs
    )


def d4rl_arrays(pendulum_dataset) -> dict[str, np.ndarray]:
    """The Pendulum fixture as D4RL stores data: one row per step, terminals and timeouts, no next observations."""
    episodes = list(pendulum_dataset.iterate_episodes())
    return {
        "observations": np.concatenate([episode.observations[:-1] for episode in episodes]),
        "actions": np.concatenate([episode.actions for episode in episodes]),
        "rewards": np.concatenate([episode.rewards for episode in episodes]),
        "terminals": np.concatenate([episode.terminations for episode in episodes]),
        "timeouts": np.concatenate([episode.truncations for episode in episodes]),
    }


def test_d4rl_arrays_with_next_observations_load_like_the_minari_dataset(pendulum_dataset):
    arrays = d4rl_arrays(pendulum_dataset)
    arrays["next_observations"] = np.concatenate([episode.observations[1:] for episode in pendulum_dataset.iterate_episodes()])
    from_arrays = load_offline_data(arrays).transitions
    from_minari = dataset_transitions(pendulum_dataset)
    for field in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts", "episode_returns"):
        np.testing.assert_allclose(getattr(from_arrays, field), getattr(from_minari, field), rtol=1e-6)


def test_d4rl_arrays_without_next_observations_drop_each_timeouts_row(pendulum_dataset):
    # As D4RL's qlearning_dataset: the last row of a truncated episode has no next observation of its own.
    transitions = load_offline_data(d4rl_arrays(pendulum_dataset)).transitions
    assert len(transitions) == 400 - 8 and transitions.timeouts.sum() == 8 and transitions.dones.sum() == 8
    np.testing.assert_allclose(transitions.next_observations[:48], transitions.observations[1:49])


def test_array_round_trip_through_a_minari_dataset_and_training(pendulum_dataset):
    arrays = d4rl_arrays(pendulum_dataset)
    arrays["next_observations"] = np.concatenate([episode.observations[1:] for episode in pendulum_dataset.iterate_episodes()])
    space = pendulum_dataset.action_space
    written = write_minari_dataset("tests/arrays-v0", arrays, pendulum_dataset.observation_space, space)
    assert written.total_episodes == 8 and written.total_steps == 400
    for original, copy in zip(pendulum_dataset.iterate_episodes(), written.iterate_episodes()):
        np.testing.assert_allclose(copy.observations, original.observations, rtol=1e-6)
        np.testing.assert_allclose(copy.actions, original.actions, rtol=1e-6)
        np.testing.assert_array_equal(copy.truncations, original.truncations)
    model = small_iql(None)
    model.learn_offline(arrays, 5)
    assert model.replay_buffer.size() == 400 and model.action_space.shape == (1,)


def test_sac_replay_buffer_file_round_trip(tmp_path):
    env = gym.make("Pendulum-v1", max_episode_steps=30)
    sac = SAC("MlpPolicy", env, learning_starts=100, buffer_size=1000, seed=0, device="cpu", policy_kwargs=dict(SMALL))
    sac.learn(120)
    sac.save_replay_buffer(tmp_path / "sac_buffer")
    loaded = SAC("MlpPolicy", env, buffer_size=1000, device="cpu", policy_kwargs=dict(SMALL))
    loaded.load_replay_buffer(tmp_path / "sac_buffer")

    model = small_iql(env)
    model.learn_offline(loaded.replay_buffer, 5)
    buffer = model.replay_buffer
    assert buffer.size() == 120
    # SB3 stores scaled actions; they go in unchanged, observations and rewards as they were.
    np.testing.assert_allclose(
        buffer.actions[:120].numpy(), np.clip(sac.replay_buffer.actions[:120, 0], -1 + 1e-5, 1 - 1e-5), rtol=1e-6
    )
    np.testing.assert_allclose(buffer.observations[:120].numpy(), sac.replay_buffer.observations[:120, 0], rtol=1e-6)
    np.testing.assert_allclose(buffer.rewards[:120].numpy(), sac.replay_buffer.rewards[:120, 0], rtol=1e-6)
    assert buffer.timeouts.sum().item() == 4  # 30-step episodes: four truncations
    # And out as a Minari dataset, actions back in the env's units.
    dataset = write_minari_dataset("tests/sac-buffer-v0", loaded.replay_buffer, env=env)
    assert dataset.total_steps == 120 and dataset.total_episodes == 4
    np.testing.assert_allclose(
        np.concatenate([e.actions for e in dataset.iterate_episodes()]), sac.replay_buffer.actions[:120, 0] * 2.0, rtol=1e-5
    )


def test_dict_replay_buffer_and_dict_arrays():
    space = gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,), np.float32), "b": gym.spaces.Box(-1, 1, (3,), np.float32)})
    actions = gym.spaces.Box(-1, 1, (1,), np.float32)
    buffer = DictReplayBuffer(50, space, actions, device="cpu")
    rng = np.random.default_rng(0)
    for step in range(20):
        obs = {key: rng.uniform(-1, 1, (1, *sub.shape)).astype(np.float32) for key, sub in space.spaces.items()}
        nxt = {key: rng.uniform(-1, 1, (1, *sub.shape)).astype(np.float32) for key, sub in space.spaces.items()}
        buffer.add(obs, nxt, rng.uniform(-1, 1, (1, 1)), np.array([0.5]), np.array([step % 10 == 9]), [{}])
    model = small_iql(None, policy="MultiInputPolicy")
    model.learn_offline(buffer, 3)
    np.testing.assert_allclose(model.replay_buffer.observations["b"][:20].numpy(), buffer.observations["b"][:20, 0])
    assert model.replay_buffer.dones.sum().item() == 2
    arrays = {
        "observations": {key: value[:20, 0] for key, value in buffer.observations.items()},
        "next_observations": {key: value[:20, 0] for key, value in buffer.next_observations.items()},
        "actions": buffer.actions[:20, 0],
        "rewards": buffer.rewards[:20, 0],
        "terminals": buffer.dones[:20, 0].astype(bool),
        "timeouts": np.zeros(20, bool),
    }
    assert small_iql(None, policy="MultiInputPolicy").learn_offline(arrays, 2).replay_buffer.size() == 20


def test_bad_arrays_and_buffers_are_clear_errors():
    with pytest.raises(ValueError, match="missing \\['terminals'"):
        load_offline_data(
            {"observations": np.zeros((3, 2)), "actions": np.zeros((3, 1)), "rewards": np.zeros(3), "timeouts": np.zeros(3)}
        )
    with pytest.raises(ValueError, match="'rewards' has 2 rows but 'actions' has 3"):
        load_offline_data(
            {
                "observations": np.zeros((3, 2)),
                "actions": np.zeros((3, 1)),
                "rewards": np.zeros(2),
                "terminals": np.zeros(3),
                "timeouts": np.zeros(3),
            }
        )
    arrays = {
        "observations": np.zeros((3, 2)),
        "actions": np.zeros((3, 1)),
        "rewards": np.array([0, np.nan, 0]),
        "terminals": np.zeros(3),
        "timeouts": np.zeros(3),
    }
    arrays["next_observations"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match="NaN/inf values in rewards"):
        load_offline_data(arrays)
    empty = ReplayBuffer(10, gym.spaces.Box(-1, 1, (2,)), gym.spaces.Box(-1, 1, (1,)), device="cpu")
    with pytest.raises(ValueError, match="holds no transitions"):
        small_iql(None).learn_offline(empty, 1)
    model = small_iql(gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match="does not match"):
        model.learn_offline({**arrays, "rewards": np.zeros(3)}, 1)
    assert model.replay_buffer.size() == 0
    assert th.get_num_threads() >= 1
