"""Hour-long runs fail before their first step, never train on NaN, and odd or damaged files are clear errors."""

import importlib
import pickle
import zipfile

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest
import torch as th
from conftest import rollout_episodes, small_iql
from minari.data_collector.episode_buffer import EpisodeBuffer
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback

from sb3_iql import IQL
from sb3_iql.datasets.dapg import DapgPolicy


def snapshot(model: IQL) -> dict[str, th.Tensor]:
    return {name: tensor.clone() for name, tensor in model.policy.state_dict().items()}


def assert_unchanged(model: IQL, before: dict[str, th.Tensor]) -> None:
    assert model.num_timesteps == 0
    for name, tensor in model.policy.state_dict().items():
        assert th.equal(tensor, before[name]), name


# -- every env a run touches is checked before the first gradient step -------------------------------
@pytest.mark.parametrize("how", ["eval_env", "EvalCallback"])
def test_an_eval_env_of_other_spaces_is_refused_before_the_first_offline_step(pendulum_dataset, how):
    model = small_iql(gym.make("Pendulum-v1"))
    before = snapshot(model)
    other = gym.make("MountainCarContinuous-v0")
    kwargs = {"eval_env": other, "eval_freq": 20} if how == "eval_env" else {"callback": [EvalCallback(other, eval_freq=20)]}
    with pytest.raises(ValueError, match=r"evaluation env of .* does not fit the model: eval env shape \(2,\)"):
        model.learn_offline(pendulum_dataset, 30, **kwargs)
    assert_unchanged(model, before)


def test_an_env_less_model_checks_its_eval_env_too(pendulum_dataset):
    model = small_iql(None)
    with pytest.raises(ValueError, match="does not fit the model"):
        model.learn_offline(pendulum_dataset, 30, eval_env=gym.make("MountainCarContinuous-v0"), eval_freq=20)
    assert model.num_timesteps == 0


def test_an_eval_callback_of_other_spaces_is_refused_before_the_first_online_step(pendulum_dataset):
    model = small_iql(gym.make("Pendulum-v1", max_episode_steps=50))
    model.learn_offline(pendulum_dataset, 5)
    before = snapshot(model)
    model.num_timesteps = 0
    with pytest.raises(ValueError, match="does not fit the model"):
        model.learn(100, callback=EvalCallback(gym.make("MountainCarContinuous-v0"), eval_freq=50))
    assert_unchanged(model, before)


# -- a diverging run stops at its first non-finite loss, and its saves are refused --------------------
def huge_reward_arrays(n: int = 200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "observations": rng.normal(size=(n, 3)).astype(np.float32),
        "actions": rng.uniform(-1, 1, (n, 1)).astype(np.float32),
        "rewards": np.full(n, 3e38, dtype=np.float32),  # finite, but its square overflows float32
        "terminals": np.zeros(n, bool),
        "timeouts": np.arange(n) % 50 == 49,
    }


def test_a_diverging_run_stops_at_the_first_non_finite_loss_and_keeps_the_last_good_checkpoint(tmp_path):
    model = small_iql(None)
    model.load_dataset(huge_reward_arrays())
    model.save(tmp_path / "good")
    good = (tmp_path / "good.zip").read_bytes()
    with pytest.raises(FloatingPointError, match=r"critic_loss.*gradient step 1 .*reward_scale"):
        model.learn_offline(huge_reward_arrays(), 50, log_interval=10)
    with pytest.raises(FloatingPointError, match="the file there is kept"):
        model.save(tmp_path / "good")
    assert (tmp_path / "good.zip").read_bytes() == good


def test_finite_runs_are_not_stopped(pendulum_dataset):
    model = small_iql(None)
    model.learn_offline(pendulum_dataset, 25, log_interval=10)
    assert model.num_timesteps == 25


# -- damaged and odd files ----------------------------------------------------------------------------
def test_a_truncated_model_zip_is_a_clear_error(pendulum_dataset, tmp_path):
    model = small_iql(None)
    model.learn_offline(pendulum_dataset, 2)
    model.save(tmp_path / "iql")
    data = (tmp_path / "iql.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        IQL.load(tmp_path / "cut.zip")


def test_a_truncated_replay_buffer_is_a_clear_error_and_changes_nothing(pendulum_dataset, tmp_path):
    model = small_iql(None)
    model.load_dataset(pendulum_dataset)
    model.save_replay_buffer(tmp_path / "buffer")
    data = (tmp_path / "buffer.pkl").read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 2])
    buffer = model.replay_buffer
    with pytest.raises(ValueError, match="buffer is unchanged"):
        model.load_replay_buffer(tmp_path / "cut.pkl")
    assert model.replay_buffer is buffer and buffer.size() == 400


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_a_damaged_minari_file_is_a_clear_error(pendulum_dataset, damage):
    path = pendulum_dataset.storage.data_path / "main_data.hdf5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if damage == "truncate" else data[:2048] + bytes(len(data) - 2048))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        small_iql(None).learn_offline(pendulum_dataset.spec.dataset_id, 2)


def test_episodes_of_inconsistent_lengths_are_a_clear_error(pendulum_dataset):
    path = pendulum_dataset.storage.data_path / "main_data.hdf5"
    with h5py.File(path, "a") as file:
        rewards = file["episode_1"]["rewards"][...]
        del file["episode_1"]["rewards"]
        file["episode_1"].create_dataset("rewards", data=rewards[:-3])
    with pytest.raises(ValueError, match="episode 1: its arrays disagree on the episode's length"):
        small_iql(None).learn_offline(minari.load_dataset(pendulum_dataset.spec.dataset_id), 2)


def test_a_dict_dataset_whose_episodes_lack_a_key_is_a_clear_error(pointmaze_dataset):
    path = pointmaze_dataset.storage.data_path / "main_data.hdf5"
    with h5py.File(path, "a") as file:
        del file["episode_2"]["observations"]["desired_goal"]
    model = small_iql(None, policy="MultiInputPolicy")
    with pytest.raises(ValueError, match=r"episode 2: observation keys \['achieved_goal', 'observation'\] differ"):
        model.learn_offline(minari.load_dataset(pointmaze_dataset.spec.dataset_id), 2)
    assert model.observation_space is None


def test_a_dict_dataset_with_an_extra_key_for_the_model_is_a_clear_error(pointmaze_dataset):
    model = small_iql(gym.make("PointMaze_UMaze-v3"), policy="MultiInputPolicy")
    arrays = {
        "observations": {
            key: np.zeros((10, *space.shape), np.float32) for key, space in model.observation_space.spaces.items()
        },
        "actions": np.zeros((10, 2), np.float32),
        "rewards": np.zeros(10, np.float32),
        "terminals": np.zeros(10, bool),
        "timeouts": np.zeros(10, bool),
    }
    arrays["observations"]["extra"] = np.zeros((10, 1), np.float32)
    with pytest.raises(ValueError, match=r"dataset keys .*'extra'.* != model keys"):
        model.learn_offline(arrays, 2)


@pytest.mark.parametrize("dtype", [np.float16, np.int32])
def test_float16_and_integer_observations_train_as_float32(dtype):
    env = gym.make("Pendulum-v1", max_episode_steps=20)
    episodes = rollout_episodes(env, 3)
    space = gym.spaces.Box(-100, 100, (3,), dtype)
    odd = [
        EpisodeBuffer(
            observations=np.round(episode.observations * 10).astype(dtype),
            actions=episode.actions,
            rewards=episode.rewards,
            terminations=episode.terminations,
            truncations=episode.truncations,
        )
        for episode in episodes
    ]
    dataset = minari.create_dataset_from_buffers("tests/odd-v0", odd, observation_space=space, action_space=env.action_space)
    model = small_iql(None)
    model.learn_offline(dataset, 5)
    assert model.replay_buffer.observations.dtype == th.float32
    np.testing.assert_array_equal(model.replay_buffer.observations[:20].numpy(), odd[0].observations[:-1].astype(np.float32))


def test_a_multi_discrete_action_dataset_is_a_clear_error():
    observations = np.zeros((6, 4), np.float32)
    episode = EpisodeBuffer(
        observations=observations, actions=np.array([[0, 1], [1, 0], [0, 0], [1, 1], [1, 0]]), rewards=np.ones(5),
        terminations=np.eye(5)[4] > 0, truncations=np.zeros(5, bool),
    )  # fmt: skip
    dataset = minari.create_dataset_from_buffers(
        "tests/multi-discrete-v0",
        [episode],
        observation_space=gym.spaces.Box(-1, 1, (4,), np.float32),
        action_space=gym.spaces.MultiDiscrete([2, 2]),
    )
    model = small_iql(None)
    with pytest.raises(ValueError, match="IQL takes Box or Discrete actions"):
        model.learn_offline(dataset, 2)
    assert model.observation_space is None


def test_a_dataset_id_with_a_typo_suggests_the_closest_local_ids(pendulum_dataset):
    with pytest.raises(FileNotFoundError, match=r"Did you mean 'tests/pendulum/random-v0'\?"):
        small_iql(None).learn_offline("tests/pendulm/random-v0", 2)


# -- pickles ------------------------------------------------------------------------------------------
class RunsCode:
    """What a malicious pickle does: make ``pickle.load`` call a function of its choice."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def test_the_dapg_reader_refuses_a_crafted_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "ran.txt"
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps(RunsCode(str(marker))))
    with pytest.raises(ValueError, match=r"refusing to load global 'builtins.exec'"):
        DapgPolicy(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the same bytes do run code through an unrestricted unpickler
    assert marker.exists()


# -- a run killed mid-way resumes bit for bit from the files SB3 users keep ----------------------------
RESUMABLE_RUN = """
import sys, time
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from sb3_iql import IQL

th.set_num_threads(1)
arrays = dict(np.load(sys.argv[1]))
phase, checkpoint_at, total = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])


class Stall(BaseCallback):
    def _on_step(self):
        if self.num_timesteps == checkpoint_at:
            print("checkpointed", flush=True)
            time.sleep(600)  # killed here
        return True


model = IQL("MlpPolicy", ENV, seed=0, batch_size=32, device="cpu", policy_kwargs=POLICY_KWARGS)
if phase == "offline":
    save = CheckpointCallback(save_freq=checkpoint_at, save_path=sys.argv[2], save_replay_buffer=True)
    model.learn_offline(arrays, total, callback=[save, Stall()])
else:
    model.learn_offline(arrays, OFFLINE_STEPS)
    save = CheckpointCallback(save_freq=checkpoint_at - OFFLINE_STEPS, save_path=sys.argv[2], save_replay_buffer=True)
    model.learn(total - OFFLINE_STEPS, callback=[save, Stall()], reset_num_timesteps=False)
"""
POLICY_KWARGS = {"net_arch": [32, 32], "actor_dropout": 0.1}  # dropout: the run draws random numbers besides batches
OFFLINE_STEPS = 20  # before the online phase


def _run_killed_at(arrays, tmp_path, phase, env_id, checkpoint_at, total) -> None:
    """Run in a subprocess that checkpoints at ``checkpoint_at`` steps (SB3's ``CheckpointCallback``), then kill it."""
    import os
    import signal
    import subprocess
    import sys

    np.savez(tmp_path / "data.npz", **arrays)
    script = tmp_path / "run.py"
    code = RESUMABLE_RUN.replace("POLICY_KWARGS", repr(POLICY_KWARGS)).replace("ENV", repr(env_id))
    script.write_text(code.replace("OFFLINE_STEPS", str(OFFLINE_STEPS)))
    command = [sys.executable, str(script), str(tmp_path / "data.npz"), str(tmp_path / "ckpt"), phase]
    child = subprocess.Popen(
        [*command, str(checkpoint_at), str(total)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert child.stdout.readline().strip() == "checkpointed"
    child.send_signal(signal.SIGKILL)  # a real kill: no exception handler, no atexit runs in the child
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL


def _resume(tmp_path, checkpoint_at) -> IQL:
    """Load the killed run's checkpoint as SB3 users do, in a process whose random state has moved on."""
    resumed = IQL.load(tmp_path / "ckpt" / f"rl_model_{checkpoint_at}_steps.zip", device="cpu")
    resumed.load_replay_buffer(tmp_path / "ckpt" / f"rl_model_replay_buffer_{checkpoint_at}_steps.pkl")
    th.manual_seed(12345)  # whatever this process drew before, the run goes on with the state saved in the file
    np.random.seed(54321)
    return resumed


def _assert_same_training_state(resumed: IQL, uninterrupted: IQL) -> None:
    assert resumed.num_timesteps == uninterrupted.num_timesteps
    for name, tensor in uninterrupted.policy.state_dict().items():
        assert th.equal(resumed.policy.state_dict()[name], tensor), name
    for optimizer in ("actor", "critic", "value"):
        expected = getattr(uninterrupted, optimizer).optimizer.state_dict()["state"]
        actual = getattr(resumed, optimizer).optimizer.state_dict()["state"]
        for index, state in expected.items():
            for key, value in state.items():
                assert th.equal(actual[index][key], value), (optimizer, index, key)


def _pendulum_arrays(pendulum_dataset) -> dict[str, np.ndarray]:
    from sb3_iql.data.readers import dataset_transitions

    transitions = dataset_transitions(pendulum_dataset)
    return {
        "observations": transitions.observations,
        "next_observations": transitions.next_observations,
        "actions": transitions.actions,
        "rewards": transitions.rewards,
        "terminals": transitions.dones & ~transitions.timeouts,
        "timeouts": transitions.timeouts,
    }


def test_an_offline_run_killed_mid_way_resumes_bit_for_bit(pendulum_dataset, tmp_path):
    arrays = _pendulum_arrays(pendulum_dataset)
    checkpoint_at, total = 30, 60
    _run_killed_at(arrays, tmp_path, "offline", None, checkpoint_at, total)
    resumed = _resume(tmp_path, checkpoint_at)
    resumed.learn_offline(arrays, total - checkpoint_at, reset_num_timesteps=False)

    uninterrupted = IQL("MlpPolicy", None, seed=0, batch_size=32, device="cpu", policy_kwargs=POLICY_KWARGS)
    uninterrupted.learn_offline(arrays, total)
    assert resumed.num_timesteps == total
    _assert_same_training_state(resumed, uninterrupted)


def test_an_online_run_killed_mid_episode_resumes_bit_for_bit(pendulum_dataset, tmp_path):
    """The env (Pendulum pickles with its state) and the step the checkpoint interrupted travel in the model file."""
    arrays = _pendulum_arrays(pendulum_dataset)
    checkpoint_at, total = OFFLINE_STEPS + 50, OFFLINE_STEPS + 90  # Pendulum's episodes last 200 steps: mid-episode
    _run_killed_at(arrays, tmp_path, "online", "Pendulum-v1", checkpoint_at, total)
    resumed = _resume(tmp_path, checkpoint_at)
    assert resumed.get_env() is not None  # the saved env, in the state the run left it
    resumed.learn(total - checkpoint_at, reset_num_timesteps=False)

    uninterrupted = IQL("MlpPolicy", "Pendulum-v1", seed=0, batch_size=32, device="cpu", policy_kwargs=POLICY_KWARGS)
    uninterrupted.learn_offline(arrays, OFFLINE_STEPS)
    uninterrupted.learn(total - OFFLINE_STEPS, reset_num_timesteps=False)
    assert resumed.num_timesteps == total
    assert resumed.replay_buffer.size() == uninterrupted.replay_buffer.size()
    np.testing.assert_array_equal(resumed._last_obs, uninterrupted._last_obs)
    _assert_same_training_state(resumed, uninterrupted)


def test_a_resumed_online_run_in_a_new_env_starts_a_new_episode(pendulum_dataset, tmp_path):
    """SB3's ``IQL.load(path, env=...)`` resets the env it is given; the interrupted step is still stored and trained on."""
    arrays = _pendulum_arrays(pendulum_dataset)
    model = IQL("MlpPolicy", "Pendulum-v1", seed=0, batch_size=32, device="cpu", policy_kwargs=POLICY_KWARGS)
    model.learn_offline(arrays, OFFLINE_STEPS)
    save = CheckpointCallback(save_freq=10, save_path=str(tmp_path), save_replay_buffer=True)
    model.learn(10, callback=save, reset_num_timesteps=False)
    assert model._pending_step is None  # only the saved copy carries the interrupted step
    checkpoint = tmp_path / f"rl_model_{OFFLINE_STEPS + 10}_steps.zip"
    resumed = IQL.load(checkpoint, env=gym.make("Pendulum-v1"), device="cpu")
    resumed.load_replay_buffer(tmp_path / f"rl_model_replay_buffer_{OFFLINE_STEPS + 10}_steps.pkl")
    saved_size = resumed.replay_buffer.size()
    resumed.learn(1, reset_num_timesteps=False)
    assert resumed.replay_buffer.size() == saved_size + 2  # the interrupted step, then the new one
    assert resumed._n_updates == model._n_updates + 1  # the saved model trained on neither yet


def test_a_resumed_model_saved_again_before_it_learns_still_resumes_bit_for_bit(pendulum_dataset, tmp_path):
    """A copy saved between load and learn (a kept checkpoint, a second copy) carries the run's random state, not the process's."""
    arrays = _pendulum_arrays(pendulum_dataset)
    checkpoint_at, total = 30, 60
    _run_killed_at(arrays, tmp_path, "offline", None, checkpoint_at, total)
    loaded = _resume(tmp_path, checkpoint_at)
    th.manual_seed(12345)  # this process's own random state differs from the run's
    loaded.save(tmp_path / "copy.zip")
    resumed = IQL.load(tmp_path / "copy.zip", device="cpu")
    resumed.learn_offline(arrays, total - checkpoint_at, reset_num_timesteps=False)

    uninterrupted = IQL("MlpPolicy", None, seed=0, batch_size=32, device="cpu", policy_kwargs=POLICY_KWARGS)
    uninterrupted.learn_offline(arrays, total)
    _assert_same_training_state(resumed, uninterrupted)


# -- foreign and mismatched files: what the file holds, and what to call instead -------------------
FOREIGN = {
    "SAC": ("stable_baselines3", "Pendulum-v1"),
    "TD3": ("stable_baselines3", "Pendulum-v1"),
    "DDPG": ("stable_baselines3", "Pendulum-v1"),
    "PPO": ("stable_baselines3", "CartPole-v1"),
    "A2C": ("stable_baselines3", "CartPole-v1"),
    "DQN": ("stable_baselines3", "CartPole-v1"),
    "TQC": ("sb3_contrib", "Pendulum-v1"),
    "TRPO": ("sb3_contrib", "CartPole-v1"),
    "QRDQN": ("sb3_contrib", "CartPole-v1"),
}


@pytest.mark.parametrize("algorithm", sorted(FOREIGN))
def test_another_algorithms_model_is_a_clear_error_naming_it(algorithm, tmp_path):
    package, env_id = FOREIGN[algorithm]
    algorithm_class = getattr(importlib.import_module(package), algorithm)
    algorithm_class("MlpPolicy", env_id, policy_kwargs=dict(net_arch=[8]), device="cpu").save(tmp_path / "foreign")
    with pytest.raises(ValueError, match=rf"holds a {algorithm} model .* Load it with {package}\.{algorithm}\.load\(path\)"):
        IQL.load(tmp_path / "foreign")


def test_a_file_that_is_no_sb3_model_is_a_clear_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("results.csv", "step,score\n")
    with pytest.raises(ValueError, match=r"zip archive but not a Stable-Baselines3 model: it holds results\.csv"):
        IQL.load(tmp_path / "other.zip")
    (tmp_path / "notes.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="not a model file: SB3 saves models as zip archives"):
        IQL.load(tmp_path / "notes.zip")


def test_a_foreign_replay_buffer_is_a_clear_error_and_changes_nothing(pendulum_dataset, tmp_path):
    model = small_iql(None)
    model.load_dataset(pendulum_dataset)
    buffer = model.replay_buffer
    # Another algorithm's buffer (SB3's ReplayBuffer, from SAC on the same env): to be passed as data.
    sac = SAC("MlpPolicy", gym.make("Pendulum-v1"), learning_starts=10, buffer_size=100, device="cpu")
    sac.learn(20)
    sac.save_replay_buffer(tmp_path / "sac_buffer")
    with pytest.raises(ValueError, match=r"an SB3 ReplayBuffer .* pass it as data .*buffer is unchanged"):
        model.load_replay_buffer(tmp_path / "sac_buffer")
    assert model.replay_buffer is buffer and buffer.size() == 400
    # IQL's own buffer of another env's spaces.
    other = small_iql(gym.make("MountainCarContinuous-v0"))
    other.learn(5)
    other.save_replay_buffer(tmp_path / "other_buffer")
    with pytest.raises(ValueError, match=r"other observations than the model's \(buffer shape \(2,\) != model shape \(3,\)\)"):
        model.load_replay_buffer(tmp_path / "other_buffer")
    assert model.replay_buffer is buffer
    # A pickle that is no buffer at all.
    (tmp_path / "numbers.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="holds no replay buffer"):
        model.load_replay_buffer(tmp_path / "numbers.pkl")
    assert model.replay_buffer is buffer
    # Its own buffer still loads.
    model.save_replay_buffer(tmp_path / "own")
    model.load_replay_buffer(tmp_path / "own")
    assert model.replay_buffer.size() == 400
