import pickle

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from sb3_iql import TensorReplayBuffer

BOX = spaces.Box(-5.0, 5.0, (3,), np.float32)
DICT = spaces.Dict({"observation": spaces.Box(-5, 5, (4,)), "desired_goal": spaces.Box(-5, 5, (2,))})
ACTIONS = spaces.Box(-1.0, 1.0, (2,), np.float32)


def random_transitions(observation_space: spaces.Space, n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)

    def observations():
        if isinstance(observation_space, spaces.Dict):
            return {key: rng.normal(size=(n, *sub.shape)).astype(np.float32) for key, sub in observation_space.spaces.items()}
        return rng.normal(size=(n, *observation_space.shape)).astype(np.float32)

    dones = rng.random(n) < 0.2
    return {
        "observations": observations(),
        "next_observations": observations(),
        "actions": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "dones": dones,
        "timeouts": dones & (rng.random(n) < 0.5),
    }


def row(values, index: slice):
    if isinstance(values, dict):
        return {key: value[index] for key, value in values.items()}
    return values[index]


def fill_by_add(buffer, data: dict, n_envs: int) -> None:
    """The SB3 way: one ``add`` per env step, ``n_envs`` transitions at a time."""
    for start in range(0, len(data["rewards"]), n_envs):
        rows = slice(start, start + n_envs)
        infos = [{"TimeLimit.truncated": bool(t)} for t in data["timeouts"][rows]]
        buffer.add(
            row(data["observations"], rows),
            row(data["next_observations"], rows),
            data["actions"][rows],
            data["rewards"][rows],
            data["dones"][rows],
            infos,
        )


def flat(values):
    """SB3 stores (buffer_size, n_envs, ...); flatten to transitions in row-major order."""
    if isinstance(values, dict):
        return {key: flat(value) for key, value in values.items()}
    return values.reshape(-1, *values.shape[2:])


def assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
        return
    a = a.cpu().numpy() if isinstance(a, th.Tensor) else a
    b = b.cpu().numpy() if isinstance(b, th.Tensor) else b
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("observation_space", [BOX, DICT], ids=["box", "dict"])
@pytest.mark.parametrize("n_envs", [1, 2])
def test_bulk_extend_matches_sb3_add_loop(observation_space, n_envs):
    n = 40
    data = random_transitions(observation_space, n)
    sb3_class = DictReplayBuffer if isinstance(observation_space, spaces.Dict) else ReplayBuffer
    sb3_buffer = sb3_class(n, observation_space, ACTIONS, device="cpu", n_envs=n_envs)
    fill_by_add(sb3_buffer, data, n_envs)
    bulk = TensorReplayBuffer(n, observation_space, ACTIONS, device="cpu", n_envs=n_envs)
    bulk.add_transitions(**data)
    looped = TensorReplayBuffer(n, observation_space, ACTIONS, device="cpu", n_envs=n_envs)
    fill_by_add(looped, data, n_envs)

    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        expected = flat(getattr(sb3_buffer, name))
        assert_same(getattr(bulk, name), expected)
        assert_same(getattr(looped, name), expected)
    assert bulk.size() == looped.size() == sb3_buffer.size() == n // n_envs
    assert bulk.full and sb3_buffer.full


def test_sampled_done_mask_bootstraps_through_timeouts():
    data = random_transitions(BOX, 30)
    buffer = TensorReplayBuffer(30, BOX, ACTIONS, device="cpu")
    buffer.add_transitions(**data)
    batch = buffer._get_samples(th.arange(30))
    expected = data["dones"] & ~data["timeouts"]
    np.testing.assert_array_equal(batch.dones.squeeze(-1).numpy(), expected.astype(np.float32))
    assert batch.observations.dtype == th.float32 and batch.rewards.shape == (30, 1)


def test_wraps_around_like_a_fifo_and_grows_lazily():
    buffer = TensorReplayBuffer(10, BOX, ACTIONS, device="cpu")
    assert buffer.allocated == 0 and buffer.nbytes() == 0
    first, second = random_transitions(BOX, 8, seed=1), random_transitions(BOX, 5, seed=2)
    buffer.add_transitions(**first)
    buffer.add_transitions(**second)
    assert buffer.size() == 10 and buffer.full and buffer.pos == 3
    # Rows 0-2 were overwritten by the last three of the second batch; rows 3-7 keep the first batch.
    np.testing.assert_array_equal(buffer.rewards[:3].numpy(), second["rewards"][2:])
    np.testing.assert_array_equal(buffer.rewards[3:8].numpy(), first["rewards"][3:])
    np.testing.assert_array_equal(buffer.rewards[8:].numpy(), second["rewards"][:2])


def test_storage_is_float32_and_sized_to_the_data():
    data = random_transitions(BOX, 5000)
    buffer = TensorReplayBuffer(1_000_000, BOX, ACTIONS, device="cpu")
    buffer.add_transitions(**data)
    raw = sum(np.asarray(value, dtype=np.float32).nbytes for value in data.values())
    assert buffer.allocated == 5000
    assert buffer.nbytes() == raw


def test_too_many_transitions_is_a_clear_error():
    buffer = TensorReplayBuffer(4, BOX, ACTIONS, device="cpu")
    with pytest.raises(ValueError, match="raise buffer_size"):
        buffer.add_transitions(**random_transitions(BOX, 5))


def test_empty_buffer_sample_is_a_clear_error():
    with pytest.raises(RuntimeError, match="learn_offline"):
        TensorReplayBuffer(4, BOX, ACTIONS, device="cpu").sample(2)


def test_pickle_keeps_only_stored_rows():
    buffer = TensorReplayBuffer(1000, DICT, ACTIONS, device="cpu")
    data = random_transitions(DICT, 7)
    buffer.add_transitions(**data)
    restored = pickle.loads(pickle.dumps(buffer))
    assert restored.allocated == 7 and restored.size() == 7
    assert_same(restored.observations, data["observations"])
    restored.add_transitions(**random_transitions(DICT, 3, seed=4))
    assert restored.size() == 10
    assert_same(row(restored.observations, slice(0, 7)), data["observations"])
