"""Implicit Q-Learning (Kostrikov, Nair, Levine, ICLR 2022) as a Stable-Baselines3 algorithm."""

import math
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
from sb3_iql.data.readers import OfflineData
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
        """One gradient step on V, then the actor, then Q, then the target critics; returns the step's statistics."""
        obs, actions = batch.observations, batch.actions
        rewards = batch.rewards.squeeze(-1) * self.reward_scale_factor + self.reward_shift
        not_done = 1.0 - batch.dones.squeeze(-1)

        with th.no_grad():
            target_qs = self.critic_target(obs, actions)
            target_q = target_qs.min(dim=0).values if self.critic_reduction == "min" else target_qs.mean(dim=0)

        # V: expectile regression toward the target critics' minimum.
        v = self.value(obs)
        value_loss = expectile_loss(target_q - v, self.expectile).mean()
        minimize((self.value.optimizer,), value_loss)

        # Actor: advantage-weighted regression on dataset actions, weighed with the V just updated.
        with th.no_grad():
            new_v, next_v = self.value(_concat_obs(obs, batch.next_observations)).chunk(2)
            advantage = target_q - new_v
            weight = th.exp(self.beta * advantage).clamp(max=self.max_weight)
        actor_loss = -(weight * self.actor.log_prob(obs, actions)).mean()

        # Q: both critics regress to r + gamma * (1 - done) * V(s'); timeouts keep bootstrapping.
        td_target = rewards + self.gamma * not_done * next_v
        q = self.critic(obs, actions)
        critic_loss = (q - td_target).pow(2).sum(dim=0).mean()

        # Actor and critics share no parameters and both use the updated V: one backward serves both.
        minimize((self.actor.optimizer, self.critic.optimizer), actor_loss + critic_loss)

        with th.no_grad():  # Polyak averaging of the target critics
            for target, source in zip(self._critic_target_params, self._critic_params):
                target.lerp_(source, self.tau)
        return UpdateStats(
            value_loss=value_loss.detach(),
            actor_loss=actor_loss.detach(),
            critic_loss=critic_loss.detach(),
            mean_v=v.detach().mean(),
            mean_q=q.detach().mean(),
            mean_advantage=advantage.mean(),
            mean_weight=weight.mean(),
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

    def _record_stats(self, means: list[float]) -> None:
        for name, value in zip(self.stat_names, means):
            self.logger.record(f"train/{name}", value)
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


def _concat_obs(first: PyTorchObs, second: PyTorchObs) -> PyTorchObs:
    """Stack two observation batches so one forward pass serves both."""
    if isinstance(first, dict):
        return {key: th.cat([first[key], second[key]]) for key in first}  # type: ignore[index]
    return th.cat([first, second])  # type: ignore[list-item]
