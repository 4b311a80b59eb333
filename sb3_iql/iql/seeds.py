"""
Many seeds in one process: K copies of a network stacked on a leading seed dimension and run with ``torch.func.vmap``.

Each seed keeps its own parameters, Adam state (Adam is elementwise, so one Adam on the stack is K Adams), dropout
masks and batches. The seeds' own networks hold views of the stack while it trains, so their callbacks and
evaluations see the current weights without a copy, and ``release`` gives each its own storage and optimizer state.
"""

import copy
from collections.abc import Sequence
from typing import Any

import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from sb3_iql.common.buffers import TensorReplayBuffer


class _Method(nn.Module):
    """Calls one method of a module as ``forward``, so that ``functional_call`` can run it (it only calls ``forward``)."""

    def __init__(self, module: nn.Module, method: str):
        super().__init__()
        self.module, self.method = module, method

    def forward(self, *args: Any) -> Any:
        return getattr(self.module, self.method)(*args)


class SeedStack(nn.Module):
    """
    One network per seed, run as one: parameters stacked on a leading seed dimension, inputs and outputs likewise.

    :param networks: The seeds' networks, of one architecture (the first serves as the template of the call)
    :param with_optimizer: Give the stack an optimizer of the class and settings of the networks' own (``.optimizer``)
    """

    def __init__(self, networks: Sequence[nn.Module], with_optimizer: bool = True):
        super().__init__()
        params, buffers = stack_module_state(list(networks))  # type: ignore[arg-type]
        if buffers:
            raise ValueError(f"{type(networks[0]).__name__} holds buffers ({sorted(buffers)}): seeds can not be stacked.")
        self.names = list(params)
        self.stacked = nn.ParameterList([nn.Parameter(params[name].detach()) for name in self.names])
        # Plain containers: registered as submodules, the seeds' networks would add their parameters to the stack's.
        # The callers of each method are made once: a module made inside a compiled step breaks its graph.
        self.networks = list(networks)
        self._callers = {"forward": networks[0], "log_prob": _Method(networks[0], "log_prob")}
        # Each seed's own parameters, in the order of the stack's.
        self._own = [[dict(network.named_parameters())[name] for name in self.names] for network in networks]
        for k, own in enumerate(self._own):  # the seeds' own parameters become views of the stack
            for stacked, param in zip(self.stacked, own):
                param.data = stacked.data[k]
        self.optimizer: th.optim.Optimizer | None = None
        if with_optimizer:
            first = networks[0].optimizer  # type: ignore[union-attr]
            self.optimizer = type(first)(self.stacked.parameters(), **first.defaults)
            self.optimizer.param_groups[0]["lr"] = float(first.param_groups[0]["lr"])
            self._stack_optimizer_state()

    def _stack_optimizer_state(self) -> None:
        """Take up the seeds' own optimizer state (models that trained before): moments stacked, step counts shared."""
        assert self.optimizer is not None
        for index, stacked in enumerate(self.stacked):
            states = [network.optimizer.state.get(own[index]) for network, own in zip(self.networks, self._own)]
            if any(state is None for state in states):
                continue
            self.optimizer.state[stacked] = {
                key: th.stack([state[key] for state in states]) if value.dim() > 0 else value.clone()
                for key, value in states[0].items()
            }

    def _call(self, method: str, *args: Any) -> Any:
        module, prefix = self._callers[method], "" if method == "forward" else "module."

        def run(params: tuple[th.Tensor, ...], *inputs: Any) -> Any:
            return functional_call(module, {prefix + name: p for name, p in zip(self.names, params)}, inputs)

        return vmap(run, randomness="different")(tuple(self.stacked), *args)

    def parameters(self, recurse: bool = True):  # type: ignore[no-untyped-def]
        return self.stacked.parameters(recurse)

    def forward(self, *args: Any) -> Any:
        return self._call("forward", *args)

    def log_prob(self, *args: Any) -> Any:
        return self._call("log_prob", *args)

    def release(self) -> None:
        """Give each seed's network its own copy of its parameters and of its optimizer state, as if trained alone."""
        for k, (network, own) in enumerate(zip(self.networks, self._own)):
            for stacked, param in zip(self.stacked, own):
                param.data = param.data.clone()
                if self.optimizer is not None and stacked in self.optimizer.state:
                    network.optimizer.state[param] = {  # moments sliced, step counts shared (as stacked)
                        key: value[k].clone() if value.dim() > 0 else value.clone()
                        for key, value in self.optimizer.state[stacked].items()
                    }
            if self.optimizer is not None:
                for group in network.optimizer.param_groups:
                    group["lr"] = float(self.optimizer.param_groups[0]["lr"])


def sample_per_seed(buffer: TensorReplayBuffer, n_seeds: int, batch_size: int) -> ReplayBufferSamples:
    """
    Each seed's own batch from one shared buffer, indices drawn on its device: fields shaped (seeds, batch, ...).

    :param buffer: The buffer holding the offline data
    :param n_seeds: How many seeds
    :param batch_size: The batch size of each seed
    """
    flat = buffer._get_samples(buffer.sample_indices(n_seeds * batch_size))

    def split(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: split(item) for key, item in value.items()}
        if value is None:  # a field this buffer does not fill (SB3's n-step discounts)
            return None
        return value.reshape(n_seeds, batch_size, *value.shape[1:])

    return type(flat)(*(split(field) for field in flat))  # type: ignore[arg-type]


def stack_seeds(models: Sequence[Any]) -> Any:
    """
    :param models: IQL models of one configuration (one per seed), set up on the same data
    :return: A shallow copy of the first whose networks are the seeds' networks stacked: its ``_update`` and
        ``_offline_gradient_step`` (IQL's own) train every seed at once
    """
    together = copy.copy(models[0])
    together.actor = SeedStack([model.actor for model in models])
    together.critic = SeedStack([model.critic for model in models])
    together.value = SeedStack([model.value for model in models])
    together.critic_target = SeedStack([model.critic_target for model in models], with_optimizer=False)
    together._critic_params = list(together.critic.parameters())
    together._critic_target_params = list(together.critic_target.parameters())
    together._batch_dim, together._compiled_update = 1, None
    return together


def release_seeds(together: Any) -> None:
    """End ``stack_seeds``: every seed's model owns its weights and optimizer state again."""
    for stack in (together.actor, together.critic, together.value, together.critic_target):
        stack.release()


def train_together(models: Sequence[Any], callbacks: Sequence[BaseCallback], log_interval: int) -> None:
    """
    The offline loop of ``learn_offline`` for many seeds at once: one stacked gradient step, then every seed's
    counters and callbacks; statistics stay on the device until a log reads them, one log per seed.

    :param models: The seeds' models, each set up by ``_setup_offline_learn``
    :param callbacks: Each model's callbacks
    :param log_interval: Log every this many gradient steps
    """
    lead, together = models[0], stack_seeds(models)
    schedule_start, total_steps = lead._offline_schedule_start, lead._total_timesteps
    stats_sum, log_steps, n_finite, first_step = None, 0, 0, lead.num_timesteps
    try:
        while lead.num_timesteps < total_steps:
            for model in models:  # evaluations leave eval mode on
                model.policy.set_training_mode(True)
            batch = sample_per_seed(lead.replay_buffer, len(models), lead.batch_size)
            step = lead.num_timesteps - schedule_start
            stats = together._offline_gradient_step(batch, step, total_steps - schedule_start)  # (statistics, seeds)
            stats_sum = stats if stats_sum is None else stats_sum + stats
            n_finite = th.isfinite(stats).all(dim=0).to(stats.dtype) + n_finite
            log_steps += 1
            go_on = True
            for model, callback in zip(models, callbacks):
                model.num_timesteps += 1
                model._n_updates += 1
                go_on = callback.on_step() and go_on
            if not go_on:
                break
            if log_interval > 0 and lead.num_timesteps % log_interval == 0:
                for k, model in enumerate(models):
                    model._dump_offline_logs(stats_sum[:, k], log_steps, n_finite[k], first_step)
                stats_sum, log_steps, n_finite, first_step = None, 0, 0, lead.num_timesteps
        if log_steps:
            for k, model in enumerate(models):
                model._dump_offline_logs(stats_sum[:, k], log_steps, n_finite[k], first_step)
    finally:
        release_seeds(together)
