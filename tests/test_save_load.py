"""SB3's save/load contract for IQL, as SB3's own test_save_load.py checks it for every algorithm, and files saved by older sb3-iql."""

import pickle
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pytest
import torch as th
from conftest import small_iql
from gymnasium.utils import EzPickle

from sb3_iql import IQL
from sb3_iql.common.wrappers import BinaryReward


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


def test_offline_online_save_load_round_trip(pendulum_dataset, tmp_path):
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    model = small_iql(env, learning_rate=1e-3)
    model.learn_offline(pendulum_dataset, total_timesteps=50)
    model.learn(100)
    # Online rows are appended after the dataset; the dataset stays in the buffer.
    assert model.replay_buffer.size() == 400 + 100
    assert model._n_updates == 150
    path = tmp_path / "iql"
    model.save(path)
    model.save_replay_buffer(tmp_path / "buffer")

    loaded = IQL.load(path, env=env, device="cpu")
    assert loaded.replay_buffer.allocated == 0, "loading for inference must not allocate the buffer"
    observations = np.stack([env.observation_space.sample() for _ in range(16)])
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], loaded.predict(observations, deterministic=True)[0]
    )
    np.testing.assert_array_equal(model.predict_value(observations), loaded.predict_value(observations))
    for name in ("critic", "critic_target", "value", "actor"):
        for a, b in zip(getattr(model, name).state_dict().values(), getattr(loaded, name).state_dict().values()):
            assert th.equal(a, b)
    for name in ("actor", "critic", "value"):
        saved = getattr(model, name).optimizer.state_dict()["state"]
        restored = getattr(loaded, name).optimizer.state_dict()["state"]
        assert th.equal(saved[0]["exp_avg"], restored[0]["exp_avg"])
    assert loaded.reward_scale_factor == model.reward_scale_factor and loaded.expectile == model.expectile

    loaded.load_replay_buffer(tmp_path / "buffer")
    assert loaded.replay_buffer.size() == 500
    np.testing.assert_array_equal(loaded.replay_buffer.rewards.numpy(), model.replay_buffer.rewards[:500].numpy())
    # The loaded model continues both offline (same dataset: not loaded twice) and online.
    loaded.learn_offline(pendulum_dataset, total_timesteps=5)
    assert loaded.replay_buffer.size() == 500
    loaded.learn(20)
    assert loaded.replay_buffer.size() == 520


# -- every policy, eager and compiled, through SB3's save/load contract ------------------------------
LEGACY = Path(__file__).parent / "fixtures" / "legacy"
POLICIES = {
    "MlpPolicy": ("Pendulum-v1", "pendulum_dataset"),
    "MultiInputPolicy": ("PointMaze_UMaze-v3", "pointmaze_dataset"),
}


@pytest.fixture(
    params=[(policy, compiled) for policy in POLICIES for compiled in (False, True)],
    ids=lambda p: f"{p[0]}-{'compiled' if p[1] else 'eager'}",
)
def trained(request, tmp_path):
    """A small model of each policy, eager or compiled, trained offline on its fixture dataset for a few steps."""
    policy, compiled = request.param
    env_id, dataset_fixture = POLICIES[policy]
    env = gym.make(env_id, max_episode_steps=40)
    model = small_iql(env, policy=policy, compile_update=compiled)
    model.learn_offline(request.getfixturevalue(dataset_fixture), 5)
    observations = [env.observation_space.sample() for _ in range(4)]
    batch = (
        {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}
        if policy == "MultiInputPolicy"
        else np.stack(observations)
    )
    return model, env, batch


def assert_same_predictions(first: IQL, second: IQL, observations) -> None:
    np.testing.assert_array_equal(
        first.predict(observations, deterministic=True)[0], second.predict(observations, deterministic=True)[0]
    )
    np.testing.assert_array_equal(first.predict_value(observations), second.predict_value(observations))


def test_save_load_gives_the_same_model(trained, tmp_path):
    model, env, observations = trained
    model.save(tmp_path / "iql")
    loaded = IQL.load(tmp_path / "iql", env=env, device="cpu")
    assert_same_predictions(model, loaded, observations)
    for name, tensor in model.get_parameters()["policy"].items():
        th.testing.assert_close(loaded.get_parameters()["policy"][name], tensor, rtol=0, atol=0)
    assert loaded.compile_update == model.compile_update and loaded.expectile == model.expectile
    loaded.learn(5)  # and it trains on


def test_set_env_takes_a_matching_env_and_refuses_another(trained, tmp_path):
    model, env, _ = trained
    model.save(tmp_path / "iql", exclude=["env"])
    loaded = IQL.load(tmp_path / "iql", device="cpu")
    assert loaded.get_env() is None
    model.save(tmp_path / "iql")  # an env that pickles with its state travels with the model; MuJoCo's do not
    pickles_its_state = not isinstance(env.unwrapped, EzPickle)
    assert (IQL.load(tmp_path / "iql", device="cpu").get_env() is not None) == pickles_its_state
    loaded.set_env(env)
    loaded.learn(5)
    with pytest.raises(ValueError, match="Observation spaces do not match"):
        loaded.set_env(gym.make("MountainCarContinuous-v0"))


def test_exclude_and_include_of_saved_parameters(trained, tmp_path):
    model, _, _ = trained
    model.verbose = 2
    model.save(tmp_path / "iql", exclude=["verbose"])
    assert IQL.load(tmp_path / "iql", device="cpu").verbose == 0  # not saved: the constructor's default
    model.save(tmp_path / "iql", exclude=["verbose"], include=["verbose"])
    assert IQL.load(tmp_path / "iql", device="cpu").verbose == 2


def test_the_policy_alone_saves_and_loads(trained, tmp_path):
    model, _, observations = trained
    model.policy.save(tmp_path / "policy.pth")
    policy = type(model.policy).load(tmp_path / "policy.pth", device="cpu")
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], policy.predict(observations, deterministic=True)[0]
    )


def test_set_parameters_copies_one_model_into_another(trained):
    model, env, observations = trained
    other = small_iql(env, policy=type(model.policy), seed=1)
    assert not np.array_equal(
        other.predict(observations, deterministic=True)[0], model.predict(observations, deterministic=True)[0]
    )
    other.set_parameters(model.get_parameters())
    assert_same_predictions(model, other, observations)
    with pytest.raises(ValueError, match="not_a_module is an invalid object name"):
        other.set_parameters({"not_a_module": {}})


# -- files saved by sb3-iql before the data/ layer (tests/fixtures/legacy/make_legacy.py) -------------
def test_a_model_and_buffer_saved_by_the_old_layout_load_and_act_identically():
    expected = np.load(LEGACY / "iql_pendulum_expected.npz")
    env = gym.make("Pendulum-v1")
    model = IQL.load(LEGACY / "iql_pendulum.zip", env=env, device="cpu")
    # Equal up to float32 rounding: another CPU's kernels may round the last bit differently (CI saw 3e-8).
    np.testing.assert_allclose(model.predict(expected["observations"], deterministic=True)[0], expected["actions"], atol=1e-6)
    np.testing.assert_allclose(model.predict_value(expected["observations"]), expected["values"], atol=1e-6)
    model.load_replay_buffer(LEGACY / "iql_pendulum_buffer.pkl")
    assert model.replay_buffer.size() == 4 * 30 + 10  # the arrays' rows (with next observations: all kept) and 10 online
    assert model.replay_buffer.holds_any_dataset()
    model.learn(5)


def test_a_dataset_built_by_the_old_layout_recovers_its_env():
    dataset = minari.MinariDataset(LEGACY / "minari" / "legacy" / "pen" / "binary-v1" / "data")
    env = dataset.recover_environment()
    assert isinstance(env, BinaryReward) or any(isinstance(wrapper, BinaryReward) for wrapper in _wrappers(env))
    env.reset(seed=0)
    assert env.step(env.action_space.sample())[1] in (0.0, -1.0)


def _wrappers(env: gym.Env) -> list[gym.Env]:
    chain = [env]
    while hasattr(chain[-1], "env"):
        chain.append(chain[-1].env)
    return chain
