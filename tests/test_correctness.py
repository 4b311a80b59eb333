"""No silent wrong results: training modes, which data the buffer holds, VecNormalize, nested Dicts, saves, bad input."""

import pickle

import gymnasium as gym
import minari
import numpy as np
import pytest
import torch as th
from conftest import NestedGoalEnv, rollout_episodes
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_iql import IQL, IQLEvalCallback

SMALL = {"net_arch": [32, 32]}


def small_iql(env, **kwargs) -> IQL:
    kwargs.setdefault("policy_kwargs", dict(SMALL))
    kwargs.setdefault("batch_size", 32)
    return IQL(kwargs.pop("policy", "MlpPolicy"), env, seed=kwargs.pop("seed", 0), device="cpu", **kwargs)


def record_training_modes(model: IQL) -> list[bool]:
    """Wrap the model's update so every gradient step records whether the actor (with its dropout) is in training mode."""
    modes: list[bool] = []
    update = model._update

    def recording_update(batch):
        modes.append(model.actor.training and model.critic.training and model.value.training)
        return update(batch)

    model._update = recording_update
    return modes


# -- 1. evaluations leave training mode on --------------------------------------------------------
@pytest.mark.parametrize("evaluation", ["eval_env", "IQLEvalCallback", "EvalCallback"])
def test_offline_evaluations_leave_the_networks_in_training_mode(pendulum_dataset, evaluation):
    model = small_iql(None, policy_kwargs={**SMALL, "actor_dropout": 0.1})
    eval_env = gym.make("Pendulum-v1", max_episode_steps=5)
    kwargs = {}
    if evaluation == "eval_env":
        kwargs = {"eval_env": eval_env, "eval_freq": 10, "n_eval_episodes": 1}
    elif evaluation == "IQLEvalCallback":
        kwargs = {"callback": IQLEvalCallback(eval_env, pendulum_dataset, eval_freq=10, n_eval_episodes=1)}
    else:
        kwargs = {"callback": EvalCallback(eval_env, eval_freq=10, n_eval_episodes=1, verbose=0)}
    model.load_dataset(pendulum_dataset)
    modes = record_training_modes(model)
    model.learn_offline(pendulum_dataset, 30, **kwargs)
    assert len(modes) == 30 and all(modes), f"eval mode during steps {[i for i, m in enumerate(modes) if not m]}"


def test_online_updates_run_in_training_mode_between_evaluations(pendulum_dataset):
    env = gym.make("Pendulum-v1", max_episode_steps=20)
    model = small_iql(env, policy_kwargs={**SMALL, "actor_dropout": 0.1})
    model.learn_offline(pendulum_dataset, 5)
    modes = record_training_modes(model)
    model.learn(40, callback=EvalCallback(gym.make("Pendulum-v1", max_episode_steps=5), eval_freq=10, n_eval_episodes=1))
    assert len(modes) == 40 and all(modes)


def test_dropout_acts_in_training_and_not_in_prediction(pendulum_dataset):
    model = small_iql(None, policy_kwargs={**SMALL, "actor_dropout": 0.5})
    model.learn_offline(pendulum_dataset, 2)
    obs = th.as_tensor(np.zeros((64, 3), np.float32))
    model.policy.set_training_mode(True)
    assert not th.equal(model.actor.mean_and_log_std(obs)[0], model.actor.mean_and_log_std(obs)[0])
    observation = np.zeros(3, np.float32)
    assert model.predict(observation, deterministic=True)[0] == model.predict(observation, deterministic=True)[0]
    assert not model.actor.training


# -- 2. the buffer, not a name, says which data it holds ------------------------------------------
def test_a_loaded_model_reloads_its_dataset_into_the_new_buffer(pendulum_dataset, tmp_path):
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    model = small_iql(env)
    model.learn_offline(pendulum_dataset, 5)
    model.save(tmp_path / "iql")
    loaded = IQL.load(tmp_path / "iql", env=env, device="cpu")
    loaded.learn(10)  # the new buffer holds 10 online rows, no dataset
    assert loaded.replay_buffer.size() == 10
    loaded.load_dataset(pendulum_dataset.spec.dataset_id)
    assert loaded.replay_buffer.size() == 10 + 400
    loaded.load_dataset(pendulum_dataset)  # now it is there: not twice
    assert loaded.replay_buffer.size() == 410


def test_a_dataset_evicted_by_online_data_is_loaded_again(pendulum_dataset):
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    model = small_iql(env, buffer_size=450)
    model.load_dataset(pendulum_dataset)
    model.learn(100)  # 500 transitions through 450 rows: the first 50 dataset rows are gone
    assert not model.replay_buffer.holds(next(iter(model.replay_buffer.datasets)))
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


# -- 3. VecNormalize -----------------------------------------------------------------------------
def test_vec_normalize_with_offline_data_is_refused_with_what_to_do(pendulum_dataset):
    normalized = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=50)]))
    model = small_iql(normalized)
    with pytest.raises(ValueError, match="norm_obs=False"):
        model.load_dataset(pendulum_dataset)
    assert model.replay_buffer.size() == 0
    # Added after offline training, it is refused when online training starts.
    offline = small_iql(gym.make("Pendulum-v1", max_episode_steps=50))
    offline.learn_offline(pendulum_dataset, 2)
    offline.set_env(normalized)
    with pytest.raises(ValueError, match="VecNormalize"):
        offline.learn(10)
    # Without normalisation it is only a pass-through.
    plain = VecNormalize(
        DummyVecEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=50)]), norm_obs=False, norm_reward=False
    )
    small_iql(plain).learn_offline(pendulum_dataset, 2).learn(10)


# -- 4. a failed load changes nothing ------------------------------------------------------------
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


# -- 5. nested Dict observations -----------------------------------------------------------------
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


# -- 6. SB3's EvalCallback without an env --------------------------------------------------------
def test_sb3_eval_callback_works_offline_on_an_env_less_model(pendulum_dataset, tmp_path):
    callback = EvalCallback(
        gym.make("Pendulum-v1", max_episode_steps=5), eval_freq=10, n_eval_episodes=2, log_path=str(tmp_path), verbose=0
    )
    small_iql(None).learn_offline(pendulum_dataset, 20, callback=callback)
    evaluations = np.load(tmp_path / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [10, 20] and evaluations["results"].shape == (2, 2)


# -- 7. saves are atomic -------------------------------------------------------------------------
def interrupted(*args, **kwargs):
    """Stands for Ctrl-C (or a kill) in the middle of writing a file."""
    raise KeyboardInterrupt


def test_an_interrupted_save_keeps_the_previous_model(pendulum_dataset, tmp_path, monkeypatch):
    model = small_iql(None)
    model.learn_offline(pendulum_dataset, 2)
    model.save(tmp_path / "iql")
    before = (tmp_path / "iql.zip").read_bytes()
    model.learn_offline(pendulum_dataset, 3)

    monkeypatch.setattr("stable_baselines3.common.save_util.th.save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(tmp_path / "iql")
    assert (tmp_path / "iql.zip").read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["iql.zip", "minari"]
    IQL.load(tmp_path / "iql", device="cpu")


def test_an_interrupted_replay_buffer_save_keeps_the_previous_buffer(pendulum_dataset, tmp_path, monkeypatch):
    model = small_iql(None)
    model.load_dataset(pendulum_dataset)
    model.save_replay_buffer(tmp_path / "buffer")
    before = (tmp_path / "buffer.pkl").read_bytes()

    monkeypatch.setattr("stable_baselines3.common.save_util.pickle.dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save_replay_buffer(tmp_path / "buffer")
    assert (tmp_path / "buffer.pkl").read_bytes() == before
    assert pickle.loads(before).size() == 400


# -- 8. bad input --------------------------------------------------------------------------------
def test_out_of_bounds_dataset_actions_warn_with_their_share():
    env = gym.make("Pendulum-v1", max_episode_steps=10)
    episodes = rollout_episodes(env, 2)
    episodes[0].actions[:5] = 3.0  # Pendulum's bound is 2: 5 of 20 actions outside
    dataset = minari.create_dataset_from_buffers("tests/oob-v0", episodes, env=env)
    model = small_iql(None)
    with pytest.warns(UserWarning, match=r"25\.00% of the actions"):
        model.load_dataset(dataset)
    assert model.replay_buffer.actions[:5].max().item() == pytest.approx(1 - 1e-5)


@pytest.mark.parametrize("steps", [0, -3])
def test_non_positive_step_counts_are_refused(pendulum_dataset, steps):
    model = small_iql(None)
    with pytest.raises(ValueError, match="total_timesteps > 0"):
        model.learn_offline(pendulum_dataset, steps)
    assert model.replay_buffer is None


# -- what SB3's suites check for every algorithm -------------------------------------------------
def test_same_seed_same_model(pendulum_dataset):
    def train(seed: int) -> IQL:
        model = small_iql(gym.make("Pendulum-v1", max_episode_steps=20), seed=seed)
        return model.learn_offline(pendulum_dataset, 20).learn(30)

    first, second, other = train(3), train(3), train(4)
    for a, b in zip(first.policy.state_dict().values(), second.policy.state_dict().values()):
        assert th.equal(a, b)
    assert any(not th.equal(a, b) for a, b in zip(first.policy.state_dict().values(), other.policy.state_dict().values()))


def test_policy_alone_saves_and_loads(pendulum_dataset, tmp_path):
    model = small_iql(None)
    model.learn_offline(pendulum_dataset, 10)
    model.policy.save(tmp_path / "policy.pth")
    policy = type(model.policy).load(tmp_path / "policy.pth", device="cpu")
    observations = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], policy.predict(observations, deterministic=True)[0]
    )


def test_the_old_step_count_name_still_works_with_a_warning(pendulum_dataset):
    model = small_iql(None)
    with pytest.warns(FutureWarning, match="total_timesteps"):
        model.learn_offline(pendulum_dataset, n_steps=3)
    assert model.num_timesteps == 3
