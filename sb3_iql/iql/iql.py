"""Implicit Q-Learning (Kostrikov, Nair, Levine, ICLR 2022) as a Stable-Baselines3 algorithm."""

import math
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, Optional, TypeVar, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, PyTorchObs, ReplayBufferSamples, Schedule

from sb3_iql.common.buffers import TensorReplayBuffer
from sb3_iql.common.compile import CompiledStep
from sb3_iql.common.offline_algorithm import OfflineOffPolicyAlgorithm
from sb3_iql.common.optimizers import minimize, set_learning_rate
from sb3_iql.data.readers import DatasetLike, OfflineData
from sb3_iql.data.spaces import flatten_dict_observation
from sb3_iql.iql.hyperparameters import paper_hyperparameters
from sb3_iql.iql.policies import (
    CategoricalActor,
    CnnPolicy,
    EnsembleCritic,
    GaussianActor,
    IQLPolicy,
    MlpPolicy,
    MultiInputPolicy,
    ValueNetwork,
)
from sb3_iql.iql.seeds import train_together

SelfIQL = TypeVar("SelfIQL", bound="IQL")


class UpdateStats(NamedTuple):
    """What one gradient step reports (scalar tensors), logged as ``train/<name>``."""

    value_loss: th.Tensor
    actor_loss: th.Tensor
    critic_loss: th.Tensor
    mean_v: th.Tensor
    mean_q: th.Tensor
    mean_advantage: th.Tensor
    mean_weight: th.Tensor


def expectile_loss(diff: th.Tensor, expectile: float) -> th.Tensor:
    """
    Asymmetric squared loss ``|tau - 1(u < 0)| u^2`` of ``u = diff`` (paper eq. 5).

    :param diff: ``Q(s, a) - V(s)``
    :param expectile: ``tau`` in (0, 1); 0.5 gives the mean squared error (up to a factor)
    :return: The elementwise loss
    """
    weight = th.where(diff > 0, expectile, 1.0 - expectile)
    return weight * diff.pow(2)


class IQL(OfflineOffPolicyAlgorithm):
    """
    Implicit Q-Learning: offline RL from in-sample actions only, then online finetuning.

    Paper: https://arxiv.org/abs/2110.06169. Official code: https://github.com/ikostrikov/implicit_q_learning.
    ``learn_offline()`` trains from a Minari dataset; ``learn()`` is SB3's online training, which
    keeps the dataset in the replay buffer and acts with the offline policy from the first step.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy, ...). ``Box`` actions get a
        Gaussian actor and critics ``Q(s, a)``; ``Discrete`` actions a categorical actor and critics with one output
        per action, read at the dataset action (the same update, the same order)
    :param env: The environment to learn from (if registered in Gym, can be str). May be None
        for offline training only: the dataset then gives the spaces.
    :param learning_rate: Adam learning rate of the actor, critics and value network
    :param buffer_size: Max number of transitions in the replay buffer (dataset and online data)
    :param batch_size: Minibatch size of each gradient step
    :param tau: Polyak rate of the target critics
    :param gamma: The discount factor
    :param train_freq: Update the model every ``train_freq`` steps online (int or tuple)
    :param gradient_steps: Gradient steps per online rollout (-1: as many as env steps)
    :param expectile: Expectile ``tau`` of the value regression (0.5: SARSA-like mean; toward 1: max over in-dataset actions)
    :param beta: Inverse temperature of the advantage-weighted actor loss
    :param max_weight: Cap of the exponentiated advantage ``exp(beta * A)``
    :param actor_lr_schedule: ``"cosine"`` decays the actor lr to 0 over each ``learn_offline`` call
        (paper offline runs); ``"constant"`` keeps it (finetuning config). Online it is always constant.
    :param reward_scale: Rewards are used as ``r * reward_scale + reward_shift`` at sample time.
        ``"return_range"`` sets the scale to ``1000 / (max - min episode return)`` of the dataset (paper, locomotion).
    :param reward_shift: See ``reward_scale`` (paper: -1 on AntMaze)
    :param compile_update: Compile the gradient step with ``torch.compile`` into one graph: 1.3-1.5x faster on 2 CPU
        cores, after a compilation of 20-30 s (~5 s once inductor's on-disk cache holds it); worth it for long runs.
        Falls back to eager execution, with a warning, where compiling fails.
    :param critic_reduction: How the target critics' values are combined: ``"min"`` (clipped double Q, the paper's)
        or ``"mean"`` (for the paper's Figure 3 ablation; one critic: ``policy_kwargs={"n_critics": 1}``)
    :param goal_semantics: For goal-reaching Minari datasets (AntMaze), the paper's task instead of the data as
        recorded: reaching the goal is terminal and the steps after it are dropped (``sb3_iql.data.goals``);
        ``"evaluation"`` relabels every episode against the fixed evaluation goal (D4RL's single-goal task),
        ``"episode"`` keeps each episode's own goal; ``eval_env="dataset"`` then evaluates in the paper's
        terminating maze and scores 100 x the success rate. None (default): the data as recorded.
    :param replay_buffer_class: Replay buffer class (default: ``TensorReplayBuffer``)
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation
    :param stats_window_size: Window size for the rollout logging
    :param tensorboard_log: The log location for tensorboard (if None, no logging)
    :param policy_kwargs: Additional arguments for the policy on creation (``net_arch``, ``actor_dropout``, ...)
    :param verbose: 0 no output, 1 info messages, 2 debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: IQLPolicy
    actor: GaussianActor | CategoricalActor
    critic: EnsembleCritic
    critic_target: EnsembleCritic
    value: ValueNetwork
    replay_buffer: TensorReplayBuffer

    def __init__(
        self,
        policy: Union[str, type[IQLPolicy]],
        env: Union[GymEnv, str, None],
        learning_rate: Union[float, Schedule] = 3e-4,
        buffer_size: int = 1_000_000,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: Union[int, tuple[int, str]] = 1,
        gradient_steps: int = 1,
        expectile: float = 0.7,
        beta: float = 3.0,
        max_weight: float = 100.0,
        actor_lr_schedule: str = "cosine",
        reward_scale: Union[float, str] = 1.0,
        reward_shift: float = 0.0,
        compile_update: bool = False,
        critic_reduction: str = "min",
        goal_semantics: str | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: Union[th.device, str] = "auto",
        _init_setup_model: bool = True,
    ):
        super().__init__(
            policy,
            env,  # type: ignore[arg-type]
            learning_rate,
            buffer_size,
            learning_starts=0,  # act with the offline policy from the first online step
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class or TensorReplayBuffer,  # type: ignore[arg-type]
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete),
            support_multi_env=True,
        )
        if not 0.0 < expectile < 1.0:
            raise ValueError(f"expectile must be in (0, 1), got {expectile}.")
        if actor_lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"actor_lr_schedule must be 'cosine' or 'constant', got '{actor_lr_schedule}'.")
        if critic_reduction not in ("min", "mean"):
            raise ValueError(f"critic_reduction must be 'min' or 'mean', got '{critic_reduction}'.")
        if goal_semantics not in (None, "episode", "evaluation"):
            raise ValueError(f"goal_semantics must be None, 'episode' or 'evaluation', got '{goal_semantics}'.")
        if isinstance(reward_scale, str) and reward_scale != "return_range":
            raise ValueError(f"reward_scale must be a number or 'return_range', got '{reward_scale}'.")
        self.expectile = expectile
        self.beta = beta
        self.max_weight = max_weight
        self.actor_lr_schedule = actor_lr_schedule
        self.reward_scale = reward_scale
        self.reward_shift = reward_shift
        self.compile_update = compile_update
        self.goal_semantics = goal_semantics
        self.critic_reduction = critic_reduction
        self._compiled_update: Optional[CompiledStep] = None
        # The numeric scale; "return_range" resolves it from the first dataset loaded.
        self.reward_scale_factor = 1.0 if isinstance(reward_scale, str) else float(reward_scale)
        self.offline_datasets: list[str] = []
        self._offline_schedule_start: int | None = None
        if env is None:
            # learn_offline() takes the spaces from the dataset.
            self.observation_space, self.action_space, self.n_envs = None, None, 1  # type: ignore[assignment]
        if _init_setup_model and self.observation_space is not None:
            self._setup_model()

    paper_hyperparameters = staticmethod(paper_hyperparameters)

    def _setup_model(self) -> None:
        super()._setup_model()
        self._create_aliases()

    def _create_aliases(self) -> None:
        self.actor = self.policy.actor
        self.critic = self.policy.critic
        self.critic_target = self.policy.critic_target
        self.value = self.policy.value
        self._critic_params = list(self.critic.parameters())
        self._critic_target_params = list(self.critic_target.parameters())

    # -- the IQL update (Algorithm 1) -------------------------------------------------------
    def _update(self, batch: ReplayBufferSamples) -> UpdateStats:
        """
        One gradient step on V, then the actor, then Q, then the target critics; returns the step's statistics.

        Losses are means over the batch (the last dimension). Trained together (``learn_offline_seeds``), seeds add a
        leading dimension to batches, outputs, losses and statistics, and their losses are summed: each seed's
        parameters get their own gradient.
        """
        obs, actions = batch.observations, batch.actions
        rewards = batch.rewards.squeeze(-1) * self.reward_scale_factor + self.reward_shift
        not_done = 1.0 - batch.dones.squeeze(-1)

        with th.no_grad():
            target_qs = self.critic_target(obs, actions)  # (critics, batch)
            target_q = target_qs.min(dim=-2).values if self.critic_reduction == "min" else target_qs.mean(dim=-2)

        # V: expectile regression toward the target critics' minimum.
        v = self.value(obs)
        value_loss = expectile_loss(target_q - v, self.expectile).mean(dim=-1)
        minimize((self.value.optimizer,), value_loss.sum())

        # Actor: advantage-weighted regression on dataset actions, weighed with the V just updated.
        with th.no_grad():
            new_v, next_v = self.value(_concat_obs(obs, batch.next_observations, self._batch_dim)).chunk(2, dim=-1)
            advantage = target_q - new_v
            weight = th.exp(self.beta * advantage).clamp(max=self.max_weight)
        actor_loss = -(weight * self.actor.log_prob(obs, actions)).mean(dim=-1)

        # Q: both critics regress to r + gamma * (1 - done) * V(s'); timeouts keep bootstrapping.
        td_target = rewards + self.gamma * not_done * next_v
        q = self.critic(obs, actions)
        critic_loss = (q - td_target.unsqueeze(-2)).pow(2).sum(dim=-2).mean(dim=-1)

        # Actor and critics share no parameters and both use the updated V: one backward serves both.
        minimize((self.actor.optimizer, self.critic.optimizer), (actor_loss + critic_loss).sum())

        with th.no_grad():  # Polyak averaging of the target critics
            for target, source in zip(self._critic_target_params, self._critic_params):
                target.lerp_(source, self.tau)
        return UpdateStats(
            value_loss=value_loss.detach(),
            actor_loss=actor_loss.detach(),
            critic_loss=critic_loss.detach(),
            mean_v=v.detach().mean(dim=-1),
            mean_q=q.detach().mean(dim=(-2, -1)),
            mean_advantage=advantage.mean(dim=-1),
            mean_weight=weight.mean(dim=-1),
        )

    def _gradient_step(self, batch: ReplayBufferSamples) -> UpdateStats:
        """Run ``_update``, compiled when ``compile_update`` is set and compiling works here."""
        if not self.compile_update:
            return self._update(batch)
        if self._compiled_update is None:
            self._compiled_update = CompiledStep(self._update, self._optimizers, self.device)
        stats = self._compiled_update(batch)
        if self._compiled_update.failed:
            self.compile_update, self._compiled_update = False, None
        return stats

    @property
    def _optimizers(self) -> list[th.optim.Optimizer]:
        return [self.actor.optimizer, self.critic.optimizer, self.value.optimizer]

    stat_names = UpdateStats._fields
    #: Where the batch dimension of sampled observations is: 0, or 1 behind the seed dimension (``learn_offline_seeds``).
    _batch_dim = 0

    def _record_stats(self, means: list[float]) -> None:
        # Averaged until the logger's next dump: online, train() runs once an env step and SB3 dumps every few episodes.
        for name, value in zip(self.stat_names, means):
            self.logger.record_mean(f"train/{name}", value)
        self.logger.record("train/actor_lr", float(self.actor.optimizer.param_groups[0]["lr"]))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def _set_learning_rates(self, learning_rate: float, actor_learning_rate: float | None = None) -> None:
        """The one place the lrs are set: V's and the critics', and the actor's (the offline cosine decay's, if given)."""
        set_learning_rate(self.value.optimizer, learning_rate)
        set_learning_rate(self.critic.optimizer, learning_rate)
        set_learning_rate(self.actor.optimizer, learning_rate if actor_learning_rate is None else actor_learning_rate)

    # -- online training (SB3's learn) ------------------------------------------------------
    def _update_learning_rate(self, optimizers: Union[list[th.optim.Optimizer], th.optim.Optimizer]) -> None:
        learning_rate = self.lr_schedule(self._current_progress_remaining)
        self.logger.record("train/learning_rate", learning_rate)
        self._set_learning_rates(learning_rate)

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self._optimizers)
        stats_sum = th.zeros(len(UpdateStats._fields), device=self.device)
        n_finite = th.zeros((), device=self.device)
        for _ in range(gradient_steps):
            stats = th.stack(self._gradient_step(self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)))  # type: ignore[arg-type]
            stats_sum += stats
            n_finite += th.isfinite(stats).all()
        self._n_updates += gradient_steps
        self._log_interval_stats(stats_sum, gradient_steps, n_finite, self._n_updates - gradient_steps)

    def learn(
        self: SelfIQL,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "IQL",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfIQL:
        """
        Online training (finetuning) in ``env``, with SB3's usual arguments. The replay buffer keeps
        the offline data; new transitions are added to it as they are collected.
        """
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    # -- offline training (OfflineOffPolicyAlgorithm's learn_offline) ------------------------
    def _offline_gradient_step(self, batch: ReplayBufferSamples, step: int, total_steps: int) -> th.Tensor:
        learning_rate = self.lr_schedule(1.0)
        actor_learning_rate = learning_rate
        if self.actor_lr_schedule == "cosine":
            actor_learning_rate *= 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
        self._set_learning_rates(learning_rate, actor_learning_rate)
        return th.stack(self._gradient_step(batch))

    def _on_new_data(self, data: OfflineData) -> None:
        if self.reward_scale == "return_range" and not self.offline_datasets:
            return_range = float(np.ptp(data.transitions.episode_returns))
            if return_range <= 0:
                raise ValueError(
                    f"reward_scale='return_range' needs episodes of different returns; '{data.name}' has one return."
                )
            self.reward_scale_factor = 1000.0 / return_range

    @classmethod
    def learn_offline_seeds(
        cls,
        seeds: Sequence[int],
        policy: Union[str, type[IQLPolicy]],
        env: Union[GymEnv, str, None],
        dataset: DatasetLike,
        total_timesteps: int,
        callbacks: Optional[Sequence[MaybeCallback]] = None,
        eval_env: Union[GymEnv, str, None] = None,
        eval_freq: int = 5000,
        n_eval_episodes: int = 10,
        log_interval: int = 1000,
        tb_log_name: str = "IQL_offline",
        download: bool = False,
        **iql_kwargs: Any,
    ) -> list["IQL"]:
        """
        Train one configuration on one dataset for every seed at once, as one batched network per role: each seed
        has its own initialization (``IQL(..., seed=seed)``), batches, dropout, Adam state and lr schedule, and
        all seeds sample from one copy of the data on the device. Returns ordinary models: each saves, loads,
        predicts and finetunes online with ``learn()`` like a model trained alone with ``learn_offline``.

        :param seeds: One seed per model
        :param policy: The policy, as for ``IQL``
        :param env: The env, as for ``IQL`` (each model gets its own when given an id)
        :param dataset: The data, as for ``learn_offline``
        :param total_timesteps: Gradient steps of each seed
        :param callbacks: One callback (or list, or None) per seed, called after each of its gradient steps
        :param eval_env: Evaluation env of every seed, as for ``learn_offline`` (``"dataset"``: the dataset's)
        :param eval_freq: Evaluate every this many gradient steps
        :param n_eval_episodes: Episodes per evaluation
        :param log_interval: Log every this many gradient steps (each seed in its own tensorboard run)
        :param tb_log_name: The name of the runs for tensorboard (``_seed<seed>`` appended)
        :param download: Download a Minari id that is not found locally
        :param iql_kwargs: Anything else ``IQL`` takes, the same for every seed
        :return: The trained models, in the order of ``seeds``
        """
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"learn_offline_seeds needs distinct seeds, got {list(seeds)}.")
        if "seed" in iql_kwargs:
            raise ValueError("Give the seeds as `seeds`, not `seed`.")
        models = [cls(policy, env, seed=seed, **iql_kwargs) for seed in seeds]
        return cls.learn_offline_together(
            models, dataset, total_timesteps, callbacks, eval_env, eval_freq, n_eval_episodes, log_interval, tb_log_name,
            download=download,
        )  # fmt: skip

    @staticmethod
    def learn_offline_together(
        models: Sequence["IQL"],
        dataset: DatasetLike,
        total_timesteps: int,
        callbacks: Optional[Sequence[MaybeCallback]] = None,
        eval_env: Union[GymEnv, str, None] = None,
        eval_freq: int = 5000,
        n_eval_episodes: int = 10,
        log_interval: int = 1000,
        tb_log_name: str = "IQL_offline",
        reset_num_timesteps: bool = True,
        download: bool = False,
    ) -> list["IQL"]:
        """
        ``learn_offline`` for several models of one configuration at once (``learn_offline_seeds`` makes them):
        also models loaded from checkpoints, which go on with ``reset_num_timesteps=False``.

        :param models: The models (one per seed), of one configuration, at the same step
        :param reset_num_timesteps: Whether to reset the step counters; False resumes the runs
        :return: The models, trained
        """
        models = list(models)
        if total_timesteps <= 0:
            raise ValueError(f"learn_offline_together needs total_timesteps > 0 gradient steps, got {total_timesteps}.")
        callbacks = list(callbacks) if callbacks is not None else [None] * len(models)
        if len(callbacks) != len(models):
            raise ValueError(f"Give one callback (or None) per model: {len(callbacks)} callbacks for {len(models)} models.")
        _check_trainable_together(models, reset_num_timesteps)
        data = models[0].load_dataset(dataset, download=download)
        for model in models[1:]:
            model.load_dataset(data)  # read once; each model's buffer holds it for its own online finetuning
        callback_lists = [
            model._setup_offline_learn(
                total_timesteps, callback, data, eval_env, eval_freq, n_eval_episodes, f"{tb_log_name}_seed{model.seed}",
                reset_num_timesteps, False,
            )
            for model, callback in zip(models, callbacks)
        ]  # fmt: skip
        try:
            for callback in callback_lists:
                callback.on_training_start(locals(), globals())
            train_together(models, callback_lists, log_interval)
            for callback in callback_lists:
                callback.on_training_end()
        finally:
            for model in models:
                model._offline_data, model._offline_env = None, None
        return models

    # -- saving -----------------------------------------------------------------------------
    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "actor",
            "critic",
            "critic_target",
            "value",
            "_critic_params",
            "_critic_target_params",
            "_compiled_update",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "actor.optimizer", "critic.optimizer", "value.optimizer"], []

    def predict_value(self, observation: Union[np.ndarray, dict[str, np.ndarray]]) -> np.ndarray:
        """
        :param observation: A batch of observations (or one)
        :return: ``V(s)`` for each observation
        """
        self.policy.set_training_mode(False)
        obs_tensor, _ = self.policy.obs_to_tensor(flatten_dict_observation(observation))
        with th.no_grad():
            return self.value(obs_tensor).cpu().numpy()


def _check_trainable_together(models: Sequence[IQL], reset_num_timesteps: bool) -> None:
    """Models train together when one update serves them all: one class, device and configuration, one step count."""
    if not models:
        raise ValueError("learn_offline_together needs at least one model.")
    settings = ("batch_size", "gamma", "tau", "expectile", "beta", "max_weight", "actor_lr_schedule", "reward_scale",
                "reward_shift", "critic_reduction", "compile_update", "goal_semantics", "device", "policy_class")  # fmt: skip
    for name in settings:
        values = {repr(getattr(model, name)) for model in models}
        if len(values) > 1:
            raise ValueError(f"Models train together only with one {name}; got {sorted(values)}.")
    if len({type(model) for model in models}) > 1 or len({id(model) for model in models}) < len(models):
        raise ValueError("Models train together only as distinct models of one class.")
    rates = [model.learning_rate for model in models]
    if len({rate(1.0) if callable(rate) else float(rate) for rate in rates}) > 1:
        raise ValueError("Models train together only with one learning rate.")
    if not reset_num_timesteps and len({model.num_timesteps for model in models}) > 1:
        raise ValueError(
            f"Resumed models train together only from one step; they are at {sorted({m.num_timesteps for m in models})}."
        )


def _concat_obs(first: PyTorchObs, second: PyTorchObs, dim: int = 0) -> PyTorchObs:
    """Join two observation batches along the batch dimension ``dim`` so one forward pass serves both."""
    if isinstance(first, dict):
        return {key: th.cat([first[key], second[key]], dim=dim) for key in first}  # type: ignore[index]
    return th.cat([first, second], dim=dim)  # type: ignore[list-item]
