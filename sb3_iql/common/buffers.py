"""A replay buffer that keeps its transitions as torch tensors on the training device."""

from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.preprocessing import get_action_dim, get_obs_shape
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_iql.data.transitions import ArrayOrDict

TensorOrDict = Union[th.Tensor, dict[str, th.Tensor]]

# Room for online rows is added in steps of at least this many transitions.
MIN_GROWTH = 4096


@dataclass
class DatasetRecord:
    """
    Which offline datasets a FIFO buffer of ``capacity`` transitions holds: where each began in the count of
    transitions the buffer has written. A dataset is held whole while fewer than ``capacity`` transitions
    have been written since its first one, and in part until its last one is overwritten.

    :param capacity: Transitions the buffer holds
    :param starts: Per dataset fingerprint, its first transition's place in the count and its size
    """

    capacity: int
    starts: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, fingerprint: str, start: int, size: int) -> None:
        self.starts[fingerprint] = (start, size)

    def holds(self, fingerprint: str, total_written: int) -> bool:
        """:return: Whether every transition of that dataset is still in the buffer."""
        return fingerprint in self.starts and total_written - self.starts[fingerprint][0] <= self.capacity

    def holds_any(self, total_written: int) -> bool:
        """:return: Whether some dataset's rows are still in the buffer (all or in part)."""
        return any(total_written - start < self.capacity + size for start, size in self.starts.values())


class TensorReplayBuffer(ReplayBuffer):
    """
    FIFO replay buffer for Box and Dict observations, stored as float32 tensors on ``device``.

    It follows the layout of SB3's ``ReplayBuffer``: row ``i`` of env ``j`` is transition
    ``i * n_envs + j``, with ``observations``, ``next_observations``, ``actions``, ``rewards``,
    ``dones`` and ``timeouts``. Sampling draws indices on the device, so a batch never goes
    through numpy. Storage is allocated on first write and grows with the data, up to
    ``buffer_size`` transitions, so a model loaded for inference holds no buffer memory and an
    offline dataset takes exactly its own size.

    :param buffer_size: Max number of transitions (as in SB3, split in rows of ``n_envs``)
    :param observation_space: Observation space (``Box`` or ``Dict`` of ``Box``)
    :param action_space: Action space
    :param device: PyTorch device where the transitions live
    :param n_envs: Number of parallel environments
    :param optimize_memory_usage: Not supported, kept for SB3's constructor signature
    :param handle_timeout_termination: Bootstrap through time-limit truncations, as SB3 does
    """

    observations: TensorOrDict
    next_observations: TensorOrDict
    actions: th.Tensor
    rewards: th.Tensor
    dones: th.Tensor
    timeouts: th.Tensor

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: Union[th.device, str] = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ):
        if optimize_memory_usage:
            raise ValueError("TensorReplayBuffer stores next observations explicitly; use optimize_memory_usage=False.")
        # ReplayBuffer.__init__ would allocate numpy arrays of the full size: set up as its base does.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs=n_envs)
        # As SB3's ReplayBuffer: buffer_size counts transitions, split in rows of n_envs.
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.handle_timeout_termination = handle_timeout_termination
        self.capacity = self.buffer_size * n_envs
        self.allocated = 0
        self.n_stored = 0
        self.write_index = 0
        # Every transition ever written; the offline datasets' places in that count.
        self.total_written = 0
        self.dataset_record = DatasetRecord(self.capacity)

    # -- storage -----------------------------------------------------------------------------
    def _field_shapes(self) -> dict[str, Any]:
        obs_shape = get_obs_shape(self.observation_space)
        return {
            "observations": obs_shape,
            "next_observations": obs_shape,
            "actions": (get_action_dim(self.action_space),),
            "rewards": (),
            "dones": (),
            "timeouts": (),
        }

    def _ensure_room(self, n_new: int) -> None:
        """Grow the storage (doubling, capped at ``capacity``) so ``n_new`` transitions fit at ``write_index``."""
        needed = min(self.capacity, self.write_index + n_new)
        if needed <= self.allocated:
            return
        new_size = min(self.capacity, max(needed, 2 * self.allocated, MIN_GROWTH))
        for name, shape in self._field_shapes().items():
            if isinstance(shape, dict):
                old = getattr(self, name, None) if self.allocated else None
                grown = {key: self._grow(old[key] if old else None, new_size, sub) for key, sub in shape.items()}
                setattr(self, name, grown)
            else:
                setattr(self, name, self._grow(getattr(self, name) if self.allocated else None, new_size, shape))
        self.allocated = new_size

    def _grow(self, old: Union[th.Tensor, None], size: int, shape: tuple[int, ...]) -> th.Tensor:
        tensor = th.zeros((size, *shape), dtype=th.float32, device=self.device)
        if old is not None:
            tensor[: len(old)] = old
        return tensor

    # -- writing -----------------------------------------------------------------------------
    def add(
        self,
        obs: ArrayOrDict,
        next_obs: ArrayOrDict,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Add one row (one transition per env), with SB3's ``ReplayBuffer.add`` signature."""
        timeouts = np.array([info.get("TimeLimit.truncated", False) for info in infos])
        action = np.asarray(action).reshape(self.n_envs, -1)
        self.add_transitions(obs, next_obs, action, np.asarray(reward), np.asarray(done), timeouts)

    # SB3's ``extend(obs, next_obs, actions, rewards, dones, infos)`` (one ``add`` per row) is inherited as it is.

    def add_transitions(
        self,
        observations: ArrayOrDict,
        next_observations: ArrayOrDict,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        timeouts: np.ndarray,
    ) -> None:
        """
        Append ``N`` transitions at once by array assignment (wrapping around when full). SB3's ``extend``
        takes ``infos``; this takes the ``timeouts`` read from them.

        :param observations: ``(N, *obs_shape)`` array, or a dict of them
        :param next_observations: Same layout as ``observations``
        :param actions: ``(N, action_dim)`` actions, already scaled to [-1, 1]
        :param rewards: ``(N,)`` rewards
        :param dones: ``(N,)`` episode ends (termination or truncation)
        :param timeouts: ``(N,)`` truncations that are not terminations
        """
        fields = {
            "observations": observations,
            "next_observations": next_observations,
            "actions": actions,
            "rewards": rewards,
            "dones": dones,
            "timeouts": timeouts,
        }
        n_new = len(rewards)
        if n_new > self.capacity:
            raise ValueError(
                f"{n_new} transitions do not fit in a buffer of {self.capacity}: raise buffer_size to at least {n_new}."
            )
        while n_new > 0:
            chunk = min(n_new, self.capacity - self.write_index)
            self._ensure_room(chunk)
            start = len(rewards) - n_new
            rows = slice(self.write_index, self.write_index + chunk)
            for name, values in fields.items():
                self._write(getattr(self, name), rows, values, slice(start, start + chunk))
            self.write_index = (self.write_index + chunk) % self.capacity
            self.n_stored = min(self.capacity, self.n_stored + chunk)
            self.total_written += chunk
            n_new -= chunk
        self.pos = self.write_index // self.n_envs
        self.full = self.n_stored == self.capacity

    def add_dataset(self, fingerprint: str, transitions: dict[str, ArrayOrDict]) -> None:
        """
        Append a whole offline dataset (``add_transitions``' arguments by name) and record where it lies.

        :param fingerprint: What identifies the dataset's content (``holds`` answers for it)
        :param transitions: ``observations``, ``next_observations``, ``actions``, ``rewards``, ``dones``, ``timeouts``
        """
        start = self.total_written
        self.add_transitions(**transitions)  # type: ignore[arg-type]
        self.dataset_record.add(fingerprint, start, len(transitions["rewards"]))

    def holds(self, fingerprint: str) -> bool:
        """:return: Whether every transition of the dataset with this fingerprint is still in the buffer."""
        return self.dataset_record.holds(fingerprint, self.total_written)

    def holds_any_dataset(self) -> bool:
        """:return: Whether some offline dataset's rows are in the buffer (all or in part)."""
        return self.dataset_record.holds_any(self.total_written)

    def _write(self, storage: TensorOrDict, rows: slice, values: ArrayOrDict, source: slice) -> None:
        if isinstance(storage, dict):
            for key in storage:
                self._write(storage[key], rows, values[key], source)
            return
        # Slice before converting: a write that wraps around converts each part once.
        array = np.asarray(values)[source].astype(np.float32, copy=False)
        storage[rows] = th.as_tensor(array.reshape(storage[rows].shape)).to(self.device, non_blocking=True)

    # -- reading -----------------------------------------------------------------------------
    def size(self) -> int:
        """:return: The number of rows stored (SB3 convention: transitions / n_envs)."""
        return self.n_stored // self.n_envs

    def reset(self) -> None:
        """Forget every stored transition (the storage stays allocated)."""
        BaseBuffer.reset(self)
        self.n_stored = 0
        self.write_index = 0
        self.total_written = 0
        self.dataset_record = DatasetRecord(self.capacity)

    def sample_indices(self, batch_size: int) -> th.Tensor:
        """:return: ``batch_size`` uniform indices of stored transitions, on the buffer's device."""
        if self.n_stored == 0:
            raise RuntimeError(
                "The replay buffer is empty: call learn_offline() with a dataset, or collect data with learn()."
            )
        return th.randint(0, self.n_stored, (batch_size,), device=self.device)

    def sample(
        self, batch_size: int, env: Union[VecNormalize, None] = None
    ) -> Union[ReplayBufferSamples, DictReplayBufferSamples]:
        """Uniformly sample ``batch_size`` transitions, already on the device."""
        return self._get_samples(self.sample_indices(batch_size), env)

    def _get_samples(
        self, indices: th.Tensor, env: Union[VecNormalize, None] = None
    ) -> Union[ReplayBufferSamples, DictReplayBufferSamples]:
        # index_select is about twice as fast as advanced indexing for a batch of rows.
        dones = self.dones.index_select(0, indices)
        if self.handle_timeout_termination:
            dones = dones * (1.0 - self.timeouts.index_select(0, indices))
        rewards = self.rewards.index_select(0, indices)
        observations = self._gather(self.observations, indices)
        next_observations = self._gather(self.next_observations, indices)
        if env is not None:
            # VecNormalize works on numpy; this path copies, the default one never does.
            observations = self._normalize(observations, env)
            next_observations = self._normalize(next_observations, env)
            rewards = self.to_torch(env.normalize_reward(rewards.cpu().numpy()).astype(np.float32))
        samples_class = DictReplayBufferSamples if isinstance(observations, dict) else ReplayBufferSamples
        return samples_class(
            observations, self.actions.index_select(0, indices), next_observations, dones[:, None], rewards[:, None]
        )  # type: ignore[arg-type]

    @staticmethod
    def _gather(storage: TensorOrDict, indices: th.Tensor) -> TensorOrDict:
        if isinstance(storage, dict):
            return {key: value.index_select(0, indices) for key, value in storage.items()}
        return storage.index_select(0, indices)

    def _normalize(self, observations: TensorOrDict, env: VecNormalize) -> TensorOrDict:
        if isinstance(observations, dict):
            numpy_obs = {key: value.cpu().numpy() for key, value in observations.items()}
            return {key: self.to_torch(value) for key, value in env.normalize_obs(numpy_obs).items()}  # type: ignore[union-attr]
        return self.to_torch(env.normalize_obs(observations.cpu().numpy()))  # type: ignore[arg-type]

    # -- device and pickling -----------------------------------------------------------------
    def to(self, device: Union[th.device, str]) -> "TensorReplayBuffer":
        """Move the stored transitions to ``device``."""
        self.device = device
        return self

    def __getstate__(self) -> dict[str, Any]:
        # Pickle only the stored rows, on the CPU, so a GPU buffer loads anywhere.
        state = self.__dict__.copy()
        if self.allocated:
            kept = self.n_stored if self.n_stored < self.capacity else self.capacity
            for name in self._field_shapes():
                state[name] = _map_tensors(state[name], lambda t: t[:kept].cpu())
            state["allocated"] = kept
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Buffers pickled before datasets were tracked hold none that can be vouched for; those pickled before the
        # record was a class of its own kept it as a dict.
        state.setdefault("total_written", state.get("n_stored", 0))
        if "dataset_record" not in state:
            state["dataset_record"] = DatasetRecord(state["capacity"], dict(state.pop("datasets", {})))
        self.__dict__.update(state)

    def __setattr__(self, name: str, value: Any) -> None:
        # SB3's load_replay_buffer assigns ``device`` after unpickling: the tensors follow it.
        if name == "device":
            value = th.device(value)
            if self.__dict__.get("allocated"):
                for field in self._field_shapes():
                    self.__dict__[field] = _map_tensors(self.__dict__[field], lambda t: t.to(value))
        super().__setattr__(name, value)

    def nbytes(self) -> int:
        """:return: Bytes held by the stored tensors."""
        if not self.allocated:
            return 0
        total = 0
        for name in self._field_shapes():
            values = getattr(self, name)
            for tensor in values.values() if isinstance(values, dict) else [values]:
                total += tensor.numel() * tensor.element_size()
        return total


def _map_tensors(value: TensorOrDict, function) -> TensorOrDict:
    if isinstance(value, dict):
        return {key: function(tensor) for key, tensor in value.items()}
    return function(value)
