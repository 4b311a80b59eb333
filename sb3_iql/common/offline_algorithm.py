"""An SB3 off-policy algorithm that also trains from offline data: ``learn_offline`` beside SB3's ``learn``."""

import json
import math
import os
import pathlib
import pickle
import re
import time
import warnings
import zipfile
from typing import TypeVar, Union

import cloudpickle
import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from gymnasium.utils import EzPickle
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, ReplayBufferSamples
from stable_baselines3.common.utils import configure_logger, should_collect_more_steps
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_iql.common.buffers import TensorReplayBuffer
from sb3_iql.common.callbacks import IQLEvalCallback, OfflineProgressBarCallback
from sb3_iql.common.save_util import final_path, save_atomically
from sb3_iql.common.wrappers import FlattenNestedDict, RecordSuccess
from sb3_iql.data.goals import evaluation_env
from sb3_iql.data.preparation import ACTION_CLIP, buffer_fields, check_fits
from sb3_iql.data.readers import DatasetLike, OfflineData, load_offline_data
from sb3_iql.data.spaces import flatten_dict_observation, flatten_dict_space, has_nested_dict, space_mismatch

SelfOfflineAlgorithm = TypeVar("SelfOfflineAlgorithm", bound="OfflineOffPolicyAlgorithm")


class OfflineOffPolicyAlgorithm(OffPolicyAlgorithm):
    """
    ``OffPolicyAlgorithm`` plus offline training: ``load_dataset`` puts offline data into the replay
    buffer, ``learn_offline`` runs gradient steps on it, and SB3's ``learn`` then finetunes online
    with the data kept in the buffer. Subclasses implement ``_offline_gradient_step``.

    A model made without an env (``env=None``) takes its spaces from the first dataset it loads.
    Nested Dict observations are flattened to ``"outer/inner"`` keys in data, env and ``predict``.
    """

    replay_buffer: TensorReplayBuffer
    offline_datasets: list[str]
    #: The paper's task semantics for goal-reaching data (``load_offline_data``); None: the data as recorded.
    goal_semantics: str | None = None
    # The data of the offline run in progress, and the env made from it on request (``get_env``).
    _offline_data: OfflineData | None = None
    _offline_env: VecEnv | None = None
    # The random state at the last save (saved with the model), and whether a loaded model still has to take it up.
    _saved_rng_state: dict | None = None
    _resume_rng: bool = False
    # Online: the callbacks of the run in progress, how far its transitions are stored, and the step a save
    # interrupted (a callback saves after the env step, before SB3 stores it and trains), finished on resume.
    _online_callback: BaseCallback | None = None
    _stored_timesteps: int = 0
    _pending_step: dict | None = None

    def _offline_gradient_step(self, batch: ReplayBufferSamples, step: int, total_steps: int) -> th.Tensor:
        """
        One offline gradient step.

        :param batch: A batch sampled from the replay buffer
        :param step: Gradient steps done so far in this offline run (a resumed run counts from its start)
        :param total_steps: Gradient steps the offline run makes in all
        :return: The step's statistics (summed over a logging interval, then averaged)
        """
        raise NotImplementedError

    def _record_stats(self, means: list[float]) -> None:
        """Log the statistics of a logging interval: the mean of each over its gradient steps (``stat_names``' order)."""
        raise NotImplementedError

    #: Names of the statistics ``_offline_gradient_step`` returns, in order.
    stat_names: tuple[str, ...] = ()

    def _log_interval_stats(self, stats_sum: th.Tensor, n_steps: int, n_finite: th.Tensor | int, first_step: int) -> None:
        """
        Read a logging interval's statistics from the device (the one sync of the interval), stop the run if a
        loss went non-finite in it, and log their means.

        :param stats_sum: The statistics summed over the interval's steps
        :param n_steps: Gradient steps in the interval
        :param n_finite: How many of them had only finite statistics (a NaN weight stays NaN, so they came first)
        :param first_step: The number of the interval's first gradient step
        """
        values = th.cat([stats_sum.detach().flatten(), th.as_tensor(n_finite, device=stats_sum.device).reshape(1)]).tolist()
        sums, finite_steps = values[:-1], int(values[-1])
        if finite_steps < n_steps:
            bad = [name for name, value in zip(self.stat_names, sums) if not math.isfinite(value)] or list(self.stat_names)
            raise FloatingPointError(
                f"Training diverged: {', '.join(bad)} became NaN or inf at gradient step {first_step + finite_steps + 1} "
                "and the networks now hold non-finite weights, so the run stops here. Likely causes: rewards far off "
                "the scale the hyperparameters expect (set reward_scale, or reward_scale='return_range'), a learning rate "
                "too high, or data rows that are valid numbers but absurd (huge observations or rewards). Saves of a "
                "diverged model are refused, so the last checkpoint written before that step is intact."
            )
        self._record_stats([value / max(n_steps, 1) for value in sums])

    # -- envs and observations --------------------------------------------------------------
    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        # Report gymnasium-robotics' info["success"] as SB3's info["is_success"]; flatten nested Dict observations.
        if isinstance(env, gym.Env):
            if has_nested_dict(env.observation_space):
                env = FlattenNestedDict(env)
            if not is_wrapped(env, RecordSuccess):
                env = RecordSuccess(env)
        elif isinstance(env, VecEnv) and has_nested_dict(env.observation_space):
            raise ValueError(
                "This VecEnv has nested Dict observations: wrap each env in sb3_iql.FlattenNestedDict before vectorising it."
            )
        return OffPolicyAlgorithm._wrap_env(env, verbose, monitor_wrapper)

    def predict(
        self,
        observation: Union[np.ndarray, dict[str, np.ndarray]],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``; nested Dict observations are flattened as the model's space is."""
        if self.observation_space is None:
            raise RuntimeError(
                "This model has no policy yet: give it an env, or call load_dataset() or learn_offline() first."
            )
        return super().predict(flatten_dict_observation(observation), state, episode_start, deterministic)

    def get_env(self) -> VecEnv | None:
        """
        The model's env; during ``learn_offline`` on a model without one, the dataset's own env (Minari datasets
        record it), made when first asked for, so SB3 callbacks that read ``training_env`` (``EvalCallback``) work.
        """
        env = super().get_env()
        data = self._offline_data
        if env is not None or data is None:
            return env
        if self._offline_env is None:
            if data.minari_dataset is None or data.minari_dataset.spec.env_spec is None:
                raise ValueError(
                    f"A callback asked for the training env, but this model has none and '{data.name}' records none: "
                    "give the model an env (IQL(policy, env)), or use sb3_iql.IQLEvalCallback, which needs no training env."
                )
            recovered = data.minari_dataset.recover_environment()
            self._offline_env = DummyVecEnv([lambda: recovered])
        return self._offline_env

    def _check_no_vec_normalize(self) -> None:
        vec_normalize = self._vec_normalize_env
        if vec_normalize is not None and (vec_normalize.norm_obs or vec_normalize.norm_reward):
            raise ValueError(
                "Offline data is stored and trained on raw, but VecNormalize would normalise the same rows online with "
                "statistics never computed from it, so the offline policy would meet another input scale. Normalise "
                "in the data instead, or wrap the env in VecNormalize(..., norm_obs=False, norm_reward=False)."
            )

    # -- offline data -----------------------------------------------------------------------
    def load_dataset(self, dataset: DatasetLike, download: bool = False) -> OfflineData:
        """
        Put offline data into the replay buffer, as ``learn_offline`` does first; a model without an
        env takes its spaces from it. Data already in the buffer (the same content, not just the same
        name) is not added again. Everything is checked before the model or buffer change.

        The data path, one way: read (``sb3_iql.data.readers``) -> check against the model
        (``sb3_iql.data.preparation``) -> into the buffer in the policy's action scale.

        :param dataset: A Minari dataset id, folder or ``MinariDataset``; a D4RL-style dict of arrays;
            or an SB3 ``ReplayBuffer`` / ``DictReplayBuffer`` (see ``load_offline_data``)
        :param download: Download a Minari id that is not found locally
        :return: The data that was read
        """
        data = load_offline_data(dataset, download, self.observation_space, self.action_space, self.goal_semantics)
        observation_space = self.observation_space if self.observation_space is not None else data.observation_space
        action_space = self.action_space if self.action_space is not None else data.action_space
        self._check_new_data(data, observation_space, action_space)
        fingerprint = data.transitions.fingerprint()
        is_new = self.replay_buffer is None or not self.replay_buffer.holds(fingerprint)
        if is_new:
            self._on_new_data(data)
        if self.observation_space is None:
            self.observation_space, self.action_space = observation_space, action_space
            self._setup_model()
        if is_new:
            self.replay_buffer.add_dataset(fingerprint, buffer_fields(data, self.action_space))  # type: ignore[arg-type]
            self.offline_datasets.append(data.name)
            if self.verbose >= 1:
                n_episodes = len(data.transitions.episode_returns)
                print(f"Loaded {len(data.transitions)} transitions ({n_episodes} episodes) of '{data.name}'")
        return data

    def _check_new_data(self, data: OfflineData, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        if (
            self.observation_space is None
            and isinstance(observation_space, spaces.Dict)
            and self.policy_class is self.policy_aliases.get("MlpPolicy")
        ):
            raise ValueError(f"'{data.name}' has Dict observations: use 'MultiInputPolicy'.")
        replay_buffer_class = self.replay_buffer_class
        if not issubclass(replay_buffer_class, TensorReplayBuffer):
            raise TypeError(
                f"learn_offline fills a TensorReplayBuffer in bulk; got {replay_buffer_class.__name__}: "
                "leave replay_buffer_class unset or pass a TensorReplayBuffer subclass."
            )
        capacity = self.buffer_size if self.replay_buffer is None else self.replay_buffer.capacity
        check_fits(data, observation_space, action_space, capacity)
        self._check_no_vec_normalize()

    def _on_new_data(self, data: OfflineData) -> None:
        """Called for checked data before it enters the buffer, and before any state changes: may still refuse it."""

    # -- offline training -------------------------------------------------------------------
    def learn_offline(
        self: SelfOfflineAlgorithm,
        dataset: DatasetLike,
        total_timesteps: int | None = None,
        callback: MaybeCallback = None,
        eval_env: Union[GymEnv, str, None] = None,
        eval_freq: int = 5000,
        n_eval_episodes: int = 10,
        log_interval: int = 1000,
        tb_log_name: str = "IQL_offline",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
        download: bool = False,
        n_steps: int | None = None,
    ) -> SelfOfflineAlgorithm:
        """
        Train from offline data for ``total_timesteps`` gradient steps.

        The data goes into the replay buffer once (again only if its content is not there), so a
        later ``learn()`` finetunes on offline and online data together. While this runs,
        ``num_timesteps`` and callback calls count gradient steps, so SB3 callbacks work unchanged.

        :param dataset: A Minari dataset id, folder or ``MinariDataset``, a D4RL-style dict of arrays, or an SB3 replay buffer
        :param total_timesteps: Number of gradient steps
        :param callback: Callback(s) called after every gradient step
        :param eval_env: Env to evaluate in every ``eval_freq`` steps; ``"dataset"`` recovers the Minari
            dataset's evaluation env (``dataset.recover_environment(eval_env=True)``)
        :param eval_freq: Evaluate every this many gradient steps
        :param n_eval_episodes: Episodes per evaluation
        :param log_interval: Log training statistics every this many gradient steps
        :param tb_log_name: The name of the run for tensorboard
        :param reset_num_timesteps: Whether to reset the step counter (and start a new tensorboard run); False
            resumes a run: ``total_timesteps`` more steps, the actor lr decay spanning the run from its first step
        :param progress_bar: Display a progress bar over gradient steps (tqdm and rich)
        :param download: Download a Minari id that is not found locally
        :param n_steps: Deprecated name of ``total_timesteps``
        :return: The trained model
        """
        if n_steps is not None:
            warnings.warn("learn_offline(n_steps=...) is now total_timesteps=...", FutureWarning, stacklevel=2)
            total_timesteps = n_steps if total_timesteps is None else total_timesteps
        if total_timesteps is None or total_timesteps <= 0:
            raise ValueError(f"learn_offline needs total_timesteps > 0 gradient steps, got {total_timesteps}.")
        data = self.load_dataset(dataset, download=download)
        callback = self._setup_offline_learn(
            total_timesteps,
            callback,
            data,
            eval_env,
            eval_freq,
            n_eval_episodes,
            tb_log_name,
            reset_num_timesteps,
            progress_bar,
        )
        try:
            callback.on_training_start(locals(), globals())
            self._run_offline_steps(callback, log_interval)
            callback.on_training_end()
        finally:
            self._offline_data, self._offline_env = None, None
        return self

    def _run_offline_steps(self, callback: BaseCallback, log_interval: int) -> None:
        schedule_start, total_steps = self._offline_schedule_start, self._total_timesteps
        stats_sum, log_steps, n_finite, first_step = None, 0, 0, self.num_timesteps
        while self.num_timesteps < total_steps:
            # Evaluations (ours, SB3's EvalCallback, user callbacks) call predict(), which leaves eval mode on.
            self.policy.set_training_mode(True)
            batch = self.replay_buffer.sample(self.batch_size)
            stats = self._offline_gradient_step(batch, self.num_timesteps - schedule_start, total_steps - schedule_start)
            stats_sum = stats if stats_sum is None else stats_sum + stats
            n_finite = th.isfinite(stats).all().to(stats.dtype) + n_finite  # stays on the device until the next log
            self.num_timesteps += 1
            self._n_updates += 1
            log_steps += 1
            if not callback.on_step():
                break
            if log_interval > 0 and self.num_timesteps % log_interval == 0:
                self._dump_offline_logs(stats_sum, log_steps, n_finite, first_step)
                stats_sum, log_steps, n_finite, first_step = None, 0, 0, self.num_timesteps
        if log_steps:
            self._dump_offline_logs(stats_sum, log_steps, n_finite, first_step)

    def _setup_offline_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback,
        data: OfflineData,
        eval_env: Union[GymEnv, str, None],
        eval_freq: int,
        n_eval_episodes: int,
        tb_log_name: str,
        reset_num_timesteps: bool,
        progress_bar: bool,
    ) -> BaseCallback:
        """
        SB3's ``_setup_learn`` where the model has an env; without one, the same counters, logger and callbacks
        (SB3's version resets the env to start collecting, and there is none).
        """
        callbacks = self._offline_callbacks(callback, data, eval_env, eval_freq, n_eval_episodes, progress_bar)
        self._offline_data, self._offline_env = data, None
        self._resume_random_state(reset_num_timesteps)
        if reset_num_timesteps or self._offline_schedule_start is None:
            # The actor's lr schedule spans the whole run, also when a saved run resumes (reset_num_timesteps=False).
            self._offline_schedule_start = 0 if reset_num_timesteps else self.num_timesteps
        if self.env is not None:
            self._pending_step = None  # an online step interrupted by a save belongs to an online run
            _, callback_list = self._setup_learn(total_timesteps, callbacks, reset_num_timesteps, tb_log_name, False)
            self._online_callback = None
            return callback_list  # _setup_learn checked the callbacks' envs
        self.start_time = time.time_ns()
        if reset_num_timesteps:
            self.num_timesteps = 0
        self._total_timesteps = self.num_timesteps + total_timesteps
        self._num_timesteps_at_start = self.num_timesteps
        if not self._custom_logger:
            self._logger = configure_logger(self.verbose, self.tensorboard_log, tb_log_name, reset_num_timesteps)
        callback_list = self._init_callback(callbacks, progress_bar=False)
        self._check_callback_envs(callback_list)
        return callback_list

    def _offline_callbacks(
        self,
        callback: MaybeCallback,
        data: OfflineData,
        eval_env: Union[GymEnv, str, None],
        eval_freq: int,
        n_eval_episodes: int,
        progress_bar: bool,
    ) -> CallbackList:
        callbacks: list = []
        if callback is not None:
            callbacks += callback if isinstance(callback, list) else [callback]
        if eval_env is not None:
            score_success = False
            if isinstance(eval_env, str) and eval_env == "dataset":
                if data.minari_dataset is None:
                    raise ValueError(f"eval_env='dataset' needs a Minari dataset; '{data.name}' is not one: pass an env.")
                eval_env, score_success = evaluation_env(data.minari_dataset)
            elif isinstance(eval_env, str):
                eval_env = gym.make(eval_env)
            callbacks.append(
                IQLEvalCallback(
                    eval_env,
                    data.minari_dataset,
                    eval_freq,
                    n_eval_episodes,
                    verbose=self.verbose,
                    score_success=score_success,
                )
            )
        if progress_bar:
            callbacks.append(OfflineProgressBarCallback())
        return CallbackList(callbacks)

    def _dump_offline_logs(self, stats_sum: th.Tensor, n_steps: int, n_finite: th.Tensor | int, first_step: int) -> None:
        elapsed = max((time.time_ns() - self.start_time) / 1e9, 1e-9)
        self._log_interval_stats(stats_sum, n_steps, n_finite, first_step)
        self.logger.record("time/gradient_steps", self.num_timesteps)
        self.logger.record("time/steps_per_second", int((self.num_timesteps - self._num_timesteps_at_start) / elapsed))
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)

    # -- online training --------------------------------------------------------------------
    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if self.replay_buffer is not None and self.replay_buffer.holds_any_dataset():
            self._check_no_vec_normalize()
        self._resume_random_state(reset_num_timesteps)
        env_was_reset = self._last_obs is None or reset_num_timesteps
        total_timesteps, callback = super()._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        self._check_callback_envs(callback)
        self._online_callback, self._stored_timesteps = callback, self.num_timesteps
        if self._pending_step is not None and not reset_num_timesteps:
            self._finish_pending_step(self._pending_step, env_was_reset)
        self._pending_step = None
        return total_timesteps, callback

    def _store_transition(self, replay_buffer, buffer_action, new_obs, reward, dones, infos) -> None:  # type: ignore[no-untyped-def]
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
        self._stored_timesteps = self.num_timesteps

    # -- resuming an online run -------------------------------------------------------------
    def _interrupted_step(self) -> dict | None:
        """The online step in progress when a callback saves (SB3 stores a step and trains after its callbacks)."""
        if self._online_callback is None or self._stored_timesteps >= self.num_timesteps:
            return None
        local = self._online_callback.locals
        keys = ("buffer_actions", "new_obs", "rewards", "dones", "infos", "num_collected_steps", "num_collected_episodes")
        return {key: local[key] for key in keys}

    def _finish_pending_step(self, step: dict, env_was_reset: bool) -> None:
        """
        Do what the saved run did after its save: store the step's transition and, where that step ended a
        rollout, train, so that a resumed run goes on exactly as the saved one did.
        """
        assert self.env is not None
        last_obs, last_original_obs = self._last_obs, self._last_original_obs
        self._update_info_buffer(step["infos"], step["dones"])
        self._store_transition(
            self.replay_buffer, step["buffer_actions"], step["new_obs"], step["rewards"], step["dones"], step["infos"]
        )
        if env_was_reset:  # a new env (IQL.load(path, env=...)) starts a new episode: keep its first observation
            self._last_obs, self._last_original_obs = last_obs, last_original_obs
            self._last_episode_starts = np.ones((self.env.num_envs,), dtype=bool)
        self._update_current_progress_remaining(self.num_timesteps, self._total_timesteps)
        self._on_step()
        for index, done in enumerate(step["dones"]):
            if done:
                self._episode_num += 1
                if self.action_noise is not None:
                    self.action_noise.reset(**({"indices": [index]} if self.env.num_envs > 1 else {}))
        episodes = step["num_collected_episodes"] + int(np.sum(step["dones"]))
        if should_collect_more_steps(self.train_freq, step["num_collected_steps"], episodes):  # type: ignore[arg-type]
            warnings.warn(
                f"The model was saved in the middle of a rollout (train_freq={self.train_freq}): the run goes on, but "
                "not exactly as the saved run did. Save at rollout ends (train_freq=1 does) for an exact resume.",
                stacklevel=3,
            )
            return
        if self.num_timesteps > self.learning_starts:
            collected = step["num_collected_steps"] * self.env.num_envs
            gradient_steps = self.gradient_steps if self.gradient_steps >= 0 else collected
            if gradient_steps > 0:
                self.train(batch_size=self.batch_size, gradient_steps=gradient_steps)

    def _env_pickles_its_state(self) -> bool:
        """
        Whether the env can travel in the model file as it is now: a ``DummyVecEnv`` whose envs pickle their state.
        Envs pickled by constructor arguments (Gymnasium's ``EzPickle``: the MuJoCo envs) would come back freshly made.
        """
        if not isinstance(self.env, DummyVecEnv):
            return False
        for env in self.env.envs:
            while True:
                if isinstance(env, EzPickle):
                    return False
                if not isinstance(env, gym.Wrapper):
                    break
                env = env.env
        try:
            cloudpickle.dumps(self.env)
        except Exception:  # an open file (Monitor with a log file), a simulator handle, ...
            return False
        return True

    def _check_callback_envs(self, callback: BaseCallback) -> None:
        """
        Refuse, before the first step, any env a callback will evaluate in (its ``eval_env``: SB3's ``EvalCallback``,
        ``IQLEvalCallback``) whose spaces do not fit the model: found at the first evaluation, the mismatch would
        cost every step before it.
        """
        for each in _callbacks_in(callback):
            env = getattr(each, "eval_env", None)
            if env is None:
                continue
            mismatch = space_mismatch(
                flatten_dict_space(env.observation_space), flatten_dict_space(self.observation_space), what="eval env"
            ) or space_mismatch(env.action_space, self.action_space, compare_bounds=True, what="eval env")
            if mismatch:
                raise ValueError(
                    f"The evaluation env of {type(each).__name__} does not fit the model: {mismatch}. Evaluate in an env "
                    "of the task the model is trained on (for a Minari dataset: eval_env='dataset')."
                )

    # -- saving -----------------------------------------------------------------------------
    def save(self, path, exclude=None, include=None) -> None:  # type: ignore[no-untyped-def]
        """
        SB3's ``save``, written to a temporary file and renamed over ``path``: an interrupted save keeps the old file.
        A model whose weights are no longer finite (a diverged run) is refused, so it never replaces a good checkpoint.

        Saved with the model, so that ``IQL.load`` + ``load_replay_buffer`` + ``learn(..., reset_num_timesteps=False)``
        (or ``learn_offline``) goes on exactly as the saved run would have: the random state, the online step a
        callback's save interrupts, and the env where it pickles with its state (load without ``env`` to continue in
        it; a new env, or one of the MuJoCo envs, which pickle without their state, starts a new episode).
        Model files are pickles, as in SB3: load only files you trust.
        """
        if self.policy is not None and not all(bool(th.isfinite(param).all()) for param in self.policy.parameters()):
            raise FloatingPointError(
                f"Not saving to {path}: the model's weights hold NaN or inf (the run diverged); the file there is kept."
            )
        # What the run continues with travels in the file, so that a resumed run goes on as this one will: the random
        # state, the online step a callback's save interrupts and, where it pickles with its state, the env.
        if not self._resume_rng:
            # A loaded model that has not resumed its run yet still carries that run's random state: saving it again
            # (a copy, a checkpoint before the next learn) keeps it, not this process's unrelated one.
            self._saved_rng_state = random_state()
        self._pending_step = self._interrupted_step()
        if "env" not in (exclude or []) and self._env_pickles_its_state():
            include = [*(include or []), "env"]
        try:
            save_atomically(path, "zip", lambda target: super(OfflineOffPolicyAlgorithm, self).save(target, exclude, include))
        finally:
            self._pending_step = None  # the step is this run's to finish; only the saved copy carries it

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_offline_data", "_offline_env", "_resume_rng", "_online_callback"]

    def _resume_random_state(self, reset_num_timesteps: bool) -> None:
        """A loaded model that resumes its run (``reset_num_timesteps=False``) takes up the random state saved with it."""
        if self._resume_rng and not reset_num_timesteps and self._saved_rng_state is not None:
            set_random_state(self._saved_rng_state)
        self._resume_rng = False

    @classmethod
    def load(cls, path, env=None, device="auto", custom_objects=None, print_system_info=False, force_reset=True, **kwargs):  # type: ignore[no-untyped-def]
        """SB3's ``load``; a truncated or corrupt file is a clear error. Model files are pickles: load only files you trust."""
        if isinstance(path, (str, os.PathLike)):
            _check_model_file(final_path(path, "zip"), cls.__name__)
        model = super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)
        model._resume_rng = True
        return model

    def load_replay_buffer(self, path, truncate_last_traj: bool = True) -> None:  # type: ignore[no-untyped-def]
        """
        SB3's ``load_replay_buffer``. A truncated or corrupt file, a file that holds no replay buffer, another algorithm's
        buffer (SB3's ``ReplayBuffer``: pass it to ``learn_offline`` as data instead) or a buffer of other spaces than the
        model's is a clear error, and leaves the model's buffer as it was.
        """
        previous = self.replay_buffer
        try:
            super().load_replay_buffer(path, truncate_last_traj)
        except (EOFError, pickle.UnpicklingError) as error:
            self.replay_buffer = previous
            raise ValueError(
                f"{path} is not a complete replay buffer file ({error!r}): it is truncated or corrupt; the model's buffer "
                "is unchanged. Load an earlier checkpoint's buffer."
            ) from error
        except AssertionError as error:  # SB3 asserts the unpickled object is a ReplayBuffer
            self.replay_buffer = previous
            raise ValueError(f"{path} holds no replay buffer; the model's buffer is unchanged. {_WHAT_TO_LOAD}") from error
        problem = self._foreign_buffer_problem(self.replay_buffer)
        if problem is not None:
            self.replay_buffer = previous
            raise ValueError(f"{path} holds {problem}; the model's buffer is unchanged.")

    def _foreign_buffer_problem(self, buffer: ReplayBuffer) -> str | None:
        """:return: What makes a loaded buffer unusable as this model's own (its class, its spaces), or None."""
        name = type(buffer).__name__
        if not isinstance(buffer, TensorReplayBuffer):
            return (
                f"an SB3 {name} (another algorithm's, such as SAC's), not {type(self).__name__}'s own buffer: to train on "
                "what it holds, pass it as data (model.learn_offline(buffer) or model.load_dataset(buffer), the buffer "
                "loaded with its own algorithm's load_replay_buffer)"
            )
        for what, model_space, buffer_space in (
            ("observation", self.observation_space, buffer.observation_space),
            ("action", self.action_space, buffer.action_space),
        ):
            if model_space is not None and (mismatch := space_mismatch(buffer_space, model_space, what="buffer")):
                return (
                    f"a replay buffer of other {what}s than the model's ({mismatch}): it was saved by a model of another "
                    "env; load it into a model made for that env"
                )
        return None

    def save_replay_buffer(self, path) -> None:  # type: ignore[no-untyped-def]
        """SB3's ``save_replay_buffer``, written to a temporary file and renamed over ``path``."""
        save_atomically(path, "pkl", lambda target: super(OfflineOffPolicyAlgorithm, self).save_replay_buffer(target))


def random_state() -> dict:
    """:return: The random state a run draws from: torch's (CPU and every CUDA device; batches, dropout, exploration) and numpy's."""
    state = {"torch": th.get_rng_state(), "numpy": np.random.get_state()}
    if th.cuda.is_available() and th.cuda.is_initialized():
        state["cuda"] = th.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    """Restore a ``random_state()``."""
    th.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and th.cuda.is_available():
        th.cuda.set_rng_state_all(state["cuda"])


_WHAT_TO_LOAD = (
    "A model loads from the .zip that model.save() wrote, a replay buffer from the .pkl of model.save_replay_buffer() "
    "(model.load_replay_buffer); Minari datasets, arrays and other algorithms' buffers go to model.learn_offline."
)
#: The package folders of SB3's and sb3-contrib's algorithms that are not named as their class is.
_ALGORITHM_CLASSES = {
    "ppo_recurrent": "RecurrentPPO",
    "recurrent": "RecurrentPPO",
    "ppo_mask": "MaskablePPO",
    "maskable": "MaskablePPO",
    "crossq": "CrossQ",
}


def _check_model_file(path: pathlib.Path, algorithm: str) -> None:
    """
    Raise a clear error, before SB3 opens the file, if it is not a complete model of this library: not a zip at all, a
    zip that is not SB3's, a truncated or corrupt one (every member's CRC is read), or another algorithm's model.
    """
    try:
        with open(path, "rb") as file:
            header = file.read(64)
        if header and header[:4] != b"PK\x03\x04":
            raise ValueError(
                f"{path} is not a model file: SB3 saves models as zip archives, and this is not one. {_WHAT_TO_LOAD}"
            )
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
            # A cut file can still end in the directory of the torch archive stored inside it: look for SB3's members.
            missing = {"data", "policy.pth"} - set(members)
            # SB3 writes its "data" member first: the first local header's name tells SB3's files, whole or cut.
            first_member = header[30 : 30 + int.from_bytes(header[26:28], "little")]
            if missing and first_member != b"data":
                raise ValueError(
                    f"{path} is a zip archive but not a Stable-Baselines3 model: it holds {', '.join(members[:8]) or 'nothing'}"
                    f"{' ...' if len(members) > 8 else ''}, and no 'data' or 'policy.pth'. Pass the .zip that model.save() wrote."
                )
            damaged = f"no {', '.join(sorted(missing))} in it" if missing else archive.testzip()
            if damaged is None:
                _check_algorithm(path, archive.read("data"), algorithm)
    except FileNotFoundError:
        return  # SB3 says so itself
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        damaged = repr(error)
    if damaged is not None:
        raise ValueError(
            f"{path} is not a complete model file ({damaged}): it is truncated or corrupt (an interrupted copy?). "
            "Load an earlier checkpoint; sb3-iql's own saves are atomic and never leave such a file."
        )


def _check_algorithm(path: pathlib.Path, data: bytes, algorithm: str) -> None:
    """Raise a ``ValueError`` that says what the file holds when SB3's ``data`` names another library's policy class."""
    try:
        saved = json.loads(data)
        policy_class = saved.get("policy_class", {})
    except (ValueError, UnicodeDecodeError, AttributeError):
        return  # SB3's own loader reports a data member it cannot read
    module = policy_class.get("__module__", "") if isinstance(policy_class, dict) else ""
    if not module or module.split(".")[0] == "sb3_iql":
        return
    match = re.search(r"<function (\w+)\.__init__", str(policy_class.get("__init__", "")))
    policy = f"{module}.{match.group(1)}" if match else module
    package, name = _saved_algorithm(module, saved)
    library = {"stable_baselines3": "Stable-Baselines3", "sb3_contrib": "sb3-contrib"}.get(package, package)
    loader = f"{package}.{name}.load(path)" if package in ("stable_baselines3", "sb3_contrib") else "its own library's load"
    raise ValueError(
        f"{path} holds a {name} model ({library}; policy {policy}), not an {algorithm} model. Load it with {loader}. To "
        f"start {algorithm} from what that run collected, save its replay buffer (model.save_replay_buffer) and pass the "
        "buffer, or the file's data, to learn_offline."
    )


def _saved_algorithm(module: str, saved: dict) -> tuple[str, str]:
    """:return: The package and class of the algorithm whose policy lives in ``module`` (SB3's saved ``data`` as read)."""
    package, _, rest = module.partition(".")
    if module == "stable_baselines3.common.policies":  # the on-policy algorithms' shared ActorCriticPolicy
        if "cg_max_steps" in saved:
            return "sb3_contrib", "TRPO"
        return package, "PPO" if "clip_range" in saved else "A2C"
    folder = rest.split(".")[1] if rest.startswith("common.") else rest.split(".")[0]
    if folder == "td3" and saved.get("policy_delay") == 1 and saved.get("target_noise_clip") == 0.0:
        return package, "DDPG"  # DDPG is TD3 with these settings, and its policy
    return package, _ALGORITHM_CLASSES.get(folder, folder.upper())


def _callbacks_in(callback: BaseCallback) -> list[BaseCallback]:
    """:return: The callback and every callback inside it (``CallbackList``, ``EventCallback`` children), depth first."""
    found = [callback]
    children = list(getattr(callback, "callbacks", []))
    if getattr(callback, "callback", None) is not None:
        children.append(callback.callback)
    for child in children:
        found += _callbacks_in(child)
    return found


__all__ = ["ACTION_CLIP", "OfflineOffPolicyAlgorithm"]
