"""Any data in (Minari datasets, D4RL-style dicts of arrays, SB3 replay buffers), the same checks for all, and which data the buffer holds."""

import gymnasium as gym
import minari
import numpy as np
import pytest
import torch as th
from conftest import SMALL, NestedGoalEnv, rollout_episodes, small_iql, two_step_episodes
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from sb3_iql import load_offline_data, write_minari_dataset
from sb3_iql.data.readers import dataset_transitions


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


def test_a_dataset_evicted_by_online_data_is_loaded_again(pendulum_dataset):
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    model = small_iql(env, buffer_size=450)
    model.load_dataset(pendulum_dataset)
    model.learn(100)  # 500 transitions through 450 rows: the first 50 dataset rows are gone
    assert not model.replay_buffer.holds(next(iter(model.replay_buffer.dataset_record.starts)))
    written = model.replay_buffer.total_written
    model.load_dataset(pendulum_dataset)
    assert model.replay_buffer.total_written == written + 400


def test_the_same_id_with_other_content_is_loaded(pendulum_dataset):
    model = small_iql(None)
    model.load_dataset(pendulum_dataset)
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    minari.delete_dataset(pendulum_dataset.spec.dataset_id)
    other = minari.create_dataset_from_buffers(
        pendulum_dataset.spec.dataset_id,
        rollout_episodes(env, 2, seed=7),
        env=env,
        ref_min_score=-1200.0,
        ref_max_score=-150.0,
    )
    model.load_dataset(other)
    assert model.replay_buffer.size() == 400 + 100


def test_a_failed_first_load_leaves_the_model_as_new(pendulum_dataset, pointmaze_dataset):
    model = small_iql(None, reward_scale="return_range")
    env = gym.make("Pendulum-v1", max_episode_steps=10)
    flat = minari.create_dataset_from_buffers("tests/flat-v0", [rollout_episodes(env, 1)[0]] * 2, env=env)
    with pytest.raises(ValueError, match="different returns"):
        model.load_dataset(flat)
    with pytest.raises(ValueError, match="MultiInputPolicy"):
        model.load_dataset(pointmaze_dataset)
    assert model.observation_space is None and model.replay_buffer is None
    with pytest.raises(RuntimeError, match="load_dataset"):
        model.predict(np.zeros(3, np.float32))
    model.learn_offline(pendulum_dataset, 2)
    assert model.replay_buffer.size() == 400 and model.predict(np.zeros(3, np.float32))[0].shape == (1,)


def test_nested_dict_observations_train_offline_and_online(nested_dataset):
    model = small_iql(NestedGoalEnv(), policy="MultiInputPolicy")
    model.learn_offline(nested_dataset, 5)
    keys = {"observation", "achieved_goal/kettle", "achieved_goal/microwave", "desired_goal/kettle", "desired_goal/microwave"}
    assert set(model.replay_buffer.observations) == keys
    episode = nested_dataset[0]
    np.testing.assert_allclose(
        model.replay_buffer.observations["desired_goal/kettle"][:10].numpy(),
        episode.observations["desired_goal"]["kettle"][:-1],
    )
    model.learn(20)
    obs, _ = NestedGoalEnv().reset(seed=1)
    assert model.predict(obs, deterministic=True)[0].shape == (1,)
    assert np.isfinite(model.predict_value(obs)).all()
    env_less = small_iql(None, policy="MultiInputPolicy")
    env_less.learn_offline(nested_dataset, 2)
    assert set(env_less.observation_space.spaces) == keys


def test_out_of_bounds_dataset_actions_warn_with_their_share():
    env = gym.make("Pendulum-v1", max_episode_steps=10)
    episodes = rollout_episodes(env, 2)
    episodes[0].actions[:5] = 3.0  # Pendulum's bound is 2: 5 of 20 actions outside
    dataset = minari.create_dataset_from_buffers("tests/oob-v0", episodes, env=env)
    model = small_iql(None)
    with pytest.warns(UserWarning, match=r"25\.00% of the actions"):
        model.load_dataset(dataset)
    assert model.replay_buffer.actions[:5].max().item() == pytest.approx(1 - 1e-5)


def test_box_dataset_fills_buffer_with_scaled_actions(pendulum_dataset):
    model = small_iql(gym.make("Pendulum-v1"))
    model.learn_offline("tests/pendulum/random-v0", total_timesteps=5)
    buffer = model.replay_buffer
    episodes = list(pendulum_dataset.iterate_episodes())
    assert buffer.size() == pendulum_dataset.total_steps == 400
    first = episodes[0]
    # Pendulum acts in [-2, 2]: the buffer holds the policy's [-1, 1] scale.
    np.testing.assert_allclose(buffer.actions[:50].numpy(), np.clip(first.actions / 2.0, -1 + 1e-5, 1 - 1e-5), atol=1e-6)
    np.testing.assert_allclose(buffer.observations[:50].numpy(), first.observations[:-1], rtol=1e-6)
    np.testing.assert_allclose(buffer.next_observations[:50].numpy(), first.observations[1:], rtol=1e-6)
    np.testing.assert_allclose(buffer.rewards[:50].numpy(), first.rewards, rtol=1e-6)
    # Every episode ends in a time-limit truncation: done, but the TD target bootstraps.
    assert buffer.dones.sum().item() == 8 and buffer.timeouts.sum().item() == 8
    assert buffer.dones[49].item() == 1.0 and buffer.timeouts[49].item() == 1.0
    # Predictions come back in the env's action bounds.
    action, _ = model.predict(first.observations[0], deterministic=True)
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0


def test_dict_observations_with_multi_input_policy(pointmaze_dataset):
    env = gym.make("PointMaze_UMaze-v3", max_episode_steps=40)
    model = small_iql(env, policy="MultiInputPolicy")
    model.learn_offline(pointmaze_dataset, total_timesteps=20)
    buffer = model.replay_buffer
    assert set(buffer.observations) == {"achieved_goal", "desired_goal", "observation"}
    assert buffer.size() == 160 and buffer.observations["observation"].shape[1:] == (4,)
    episode = pointmaze_dataset[0]
    np.testing.assert_allclose(
        buffer.observations["achieved_goal"][:40].numpy(), episode.observations["achieved_goal"][:-1], rtol=1e-6
    )
    obs, _ = env.reset(seed=3)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (2,)
    assert np.isfinite(model.predict_value(obs)).all()


def test_env_less_model_takes_spaces_from_dataset(pendulum_dataset):
    model = small_iql(None)
    assert model.observation_space is None
    model.learn_offline(pendulum_dataset, total_timesteps=10, progress_bar=True)
    assert model.observation_space.shape == (3,) and model.action_space.high[0] == 2.0
    assert model.num_timesteps == 10 and model._n_updates == 10
    action, _ = model.predict(np.zeros(3, np.float32), deterministic=True)
    assert -2.0 <= action[0] <= 2.0


def test_env_less_dict_dataset_needs_multi_input_policy(pointmaze_dataset):
    with pytest.raises(ValueError, match="MultiInputPolicy"):
        small_iql(None).learn_offline(pointmaze_dataset, total_timesteps=1)


def test_missing_dataset_id_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match=r"not found locally.*download=True"):
        small_iql(None).learn_offline("tests/does-not-exist-v0", total_timesteps=1)


def test_folder_that_is_not_a_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a Minari dataset"):
        small_iql(None).learn_offline(tmp_path, total_timesteps=1)


def test_dataset_path_is_accepted(pendulum_dataset, minari_root):
    model = small_iql(None)
    model.learn_offline(minari_root / "tests" / "pendulum" / "random-v0", total_timesteps=1)
    assert model.replay_buffer.size() == 400


def test_space_mismatch_is_a_clear_error(pendulum_dataset):
    with pytest.raises(ValueError, match=r"Observation space.*shape"):
        small_iql(gym.make("MountainCarContinuous-v0")).learn_offline(pendulum_dataset, total_timesteps=1)
    rescaled = gym.wrappers.RescaleAction(gym.make("Pendulum-v1"), -1.0, 1.0)
    with pytest.raises(ValueError, match=r"Action space.*bounds"):
        small_iql(rescaled).learn_offline(pendulum_dataset, total_timesteps=1)


def test_nan_rewards_are_a_clear_error_and_leave_the_buffer_untouched():
    env = gym.make("Pendulum-v1", max_episode_steps=10)
    episodes = rollout_episodes(env, 2)
    episodes[1].rewards[3] = np.nan
    dataset = minari.create_dataset_from_buffers("tests/nan-v0", episodes, env=env)
    model = small_iql(None)
    with pytest.raises(ValueError, match=r"NaN/inf values in rewards.*transition 13"):
        model.learn_offline(dataset, total_timesteps=1)
    assert model.observation_space is None and model.replay_buffer is None


def test_empty_dataset_is_a_clear_error():
    dataset = minari.create_dataset_from_buffers("tests/empty-v0", [], env="Pendulum-v1")
    with pytest.raises(ValueError, match="holds no transitions"):
        small_iql(None).learn_offline(dataset, total_timesteps=1)


def test_two_step_helper_is_a_valid_dataset():
    episodes = two_step_episodes(10)
    assert all(len(episode.rewards) == 2 for episode in episodes)


def test_sb3_replay_buffer_class_is_refused_for_offline_loading(pendulum_dataset):
    from stable_baselines3.common.buffers import ReplayBuffer

    model = small_iql(gym.make("Pendulum-v1"), replay_buffer_class=ReplayBuffer)
    with pytest.raises(TypeError, match="TensorReplayBuffer"):
        model.learn_offline(pendulum_dataset, total_timesteps=1)
    assert model.replay_buffer.size() == 0
