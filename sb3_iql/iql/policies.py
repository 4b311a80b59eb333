"""IQL networks: a Gaussian actor with a tanh mean, twin Q critics as one ensemble, and a state value V."""

import itertools
import math
from typing import Any, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

# Official IQL clips the state-independent log-std to this range.
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> None:
    """Orthogonal weights and zero biases, the initialisation of the official implementation."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight, gain=gain)
        nn.init.zeros_(module.bias)
    elif isinstance(module, EnsembleLinear):
        for weight in module.weight:
            nn.init.orthogonal_(weight, gain=gain)
        nn.init.zeros_(module.bias)


def mlp(input_dim: int, net_arch: list[int], activation_fn: type[nn.Module], dropout: float | None = None) -> nn.Sequential:
    """Hidden layers ``Linear -> activation [-> Dropout]``, without an output layer."""
    layers: list[nn.Module] = []
    for size in net_arch:
        layers += [nn.Linear(input_dim, size), activation_fn()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        input_dim = size
    return nn.Sequential(*layers)


class EnsembleLinear(nn.Module):
    """
    ``n`` independent linear layers applied as one batched matrix product.

    :param n_members: Number of members
    :param in_features: Input size
    :param out_features: Output size
    """

    def __init__(self, n_members: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(th.empty(n_members, in_features, out_features))
        self.bias = nn.Parameter(th.zeros(n_members, 1, out_features))
        orthogonal_init(self)

    def forward(self, inputs: th.Tensor) -> th.Tensor:
        # (batch, in) is shared by every member (a broadcast view, no copy); (n, batch, in) gives each its own input.
        if inputs.dim() == 2:
            inputs = inputs.expand(len(self.weight), *inputs.shape)
        return th.baddbmm(self.bias, inputs, self.weight)


class MlpActor(BasePolicy):
    """
    What IQL's actors share: features, then an MLP (``latent_pi``) with optional dropout; subclasses add the head.

    :param observation_space: Observation space
    :param action_space: Action space
    :param net_arch: Hidden layer sizes
    :param features_extractor: Network that turns observations into features
    :param features_dim: Number of features
    :param activation_fn: Activation function
    :param dropout: Dropout rate after each hidden layer (None for none)
    :param normalize_images: Whether to divide images by 255
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        dropout: float | None = None,
        normalize_images: bool = True,
    ):
        super().__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
            squash_output=isinstance(action_space, spaces.Box),
        )
        self.net_arch = net_arch
        self.features_dim = features_dim
        self.activation_fn = activation_fn
        self.dropout = dropout
        self.latent_pi = mlp(features_dim, net_arch, activation_fn, dropout)
        self.latent_dim = net_arch[-1] if net_arch else features_dim

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            features_dim=self.features_dim,
            activation_fn=self.activation_fn,
            dropout=self.dropout,
            features_extractor=self.features_extractor,
        )
        return data

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


class GaussianActor(MlpActor):
    """
    Gaussian policy ``N(tanh(mu(s)), exp(log_std))`` with a state-independent log-std.

    The tanh bounds the mean, not the sample: log-probabilities of dataset actions at +-1
    stay finite, unlike a tanh-squashed Gaussian. Sampled actions are clipped to [-1, 1].
    Parameters: see ``MlpActor``.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, *args: Any, **kwargs: Any):
        super().__init__(observation_space, action_space, *args, **kwargs)
        action_dim = int(np.prod(action_space.shape))
        self.mu = nn.Linear(self.latent_dim, action_dim)
        self.log_std = nn.Parameter(th.zeros(action_dim))
        self.apply(orthogonal_init)

    def mean_and_log_std(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """:return: The action mean (in [-1, 1]) and the clipped log-std, from features."""
        mean = th.tanh(self.mu(self.latent_pi(features)))
        return mean, self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def log_prob_from_features(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """:return: ``log pi(a|s)`` summed over action dimensions, shape ``(batch,)``."""
        mean, log_std = self.mean_and_log_std(features)
        z = (actions - mean) * th.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - LOG_SQRT_2PI).sum(dim=-1)

    def log_prob(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """:return: ``log pi(a|s)`` of actions already scaled to [-1, 1], shape ``(batch,)``."""
        return self.log_prob_from_features(self.extract_features(obs, self.features_extractor), actions)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        mean, log_std = self.mean_and_log_std(self.extract_features(obs, self.features_extractor))
        if deterministic:
            return mean
        return th.clamp(mean + th.randn_like(mean) * log_std.exp(), -1.0, 1.0)


class CategoricalActor(MlpActor):
    """
    Categorical policy ``softmax(logits(s))`` over a ``Discrete`` action space: IQL's actor for discrete actions.
    Deterministic actions are the most likely ones. Parameters: see ``MlpActor``.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete, *args: Any, **kwargs: Any):
        super().__init__(observation_space, action_space, *args, **kwargs)
        self.logits = nn.Linear(self.latent_dim, int(action_space.n))
        self.apply(orthogonal_init)

    def log_probs(self, obs: PyTorchObs) -> th.Tensor:
        """:return: ``log pi(.|s)`` of every action, shape ``(batch, n_actions)``."""
        return th.log_softmax(self.logits(self.latent_pi(self.extract_features(obs, self.features_extractor))), dim=-1)

    def log_prob(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """:return: ``log pi(a|s)`` of action indices (stored as floats, shape ``(batch, 1)``), shape ``(batch,)``."""
        return self.log_probs(obs).gather(-1, actions.long().reshape(-1, 1)).squeeze(-1)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        log_probs = self.log_probs(obs)
        if deterministic:
            return log_probs.argmax(dim=-1)
        return th.multinomial(log_probs.exp(), 1).squeeze(-1)


class EnsembleCritic(BaseModel):
    """
    ``n_critics`` Q-networks ``Q_i(s, a)`` evaluated together as batched matrix products.

    :param observation_space: Observation space
    :param action_space: Action space
    :param net_arch: Hidden layer sizes of each Q-network
    :param features_extractor: Network that turns observations into features
    :param features_dim: Number of features
    :param activation_fn: Activation function
    :param n_critics: Number of Q-networks
    :param normalize_images: Whether to divide images by 255

    With ``Discrete`` actions each Q-network maps ``s`` to one value per action, read at the given action
    (DQN's head); with ``Box`` actions it maps ``(s, a)`` to one value.
    """

    features_extractor: BaseFeaturesExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        n_critics: int = 2,
        normalize_images: bool = True,
    ):
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self.n_critics = n_critics
        self.discrete = isinstance(action_space, spaces.Discrete)
        in_size = features_dim if self.discrete else features_dim + int(np.prod(action_space.shape))
        sizes = [in_size, *net_arch]
        layers: list[nn.Module] = []
        for size_in, size_out in itertools.pairwise(sizes):
            layers += [EnsembleLinear(n_critics, size_in, size_out), activation_fn()]
        layers.append(EnsembleLinear(n_critics, sizes[-1], int(action_space.n) if self.discrete else 1))
        self.q_networks = nn.Sequential(*layers)

    def q_from_features(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """:return: Every critic's ``Q(s, a)``, shape ``(n_critics, batch)``."""
        if self.discrete:
            q_values = self.q_networks(features)  # (n_critics, batch, n_actions)
            index = actions.long().reshape(1, -1, 1).expand(len(q_values), -1, 1)
            return q_values.gather(-1, index).squeeze(-1)
        return self.q_networks(th.cat([features, actions], dim=-1)).squeeze(-1)

    def forward(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        return self.q_from_features(self.extract_features(obs, self.features_extractor), actions)


class ValueNetwork(BaseModel):
    """
    State value ``V(s)``.

    :param observation_space: Observation space
    :param action_space: Action space
    :param net_arch: Hidden layer sizes
    :param features_extractor: Network that turns observations into features
    :param features_dim: Number of features
    :param activation_fn: Activation function
    :param normalize_images: Whether to divide images by 255
    """

    features_extractor: BaseFeaturesExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
    ):
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self.v_network = nn.Sequential(mlp(features_dim, net_arch, activation_fn), nn.Linear(net_arch[-1], 1))
        self.apply(orthogonal_init)

    def v_from_features(self, features: th.Tensor) -> th.Tensor:
        """:return: ``V(s)``, shape ``(batch,)``."""
        return self.v_network(features).squeeze(-1)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        return self.v_from_features(self.extract_features(obs, self.features_extractor))


class IQLPolicy(BasePolicy):
    """
    Policy class (actor, twin critics with their target, and value network) for IQL: a Gaussian actor for
    ``Box`` actions, a categorical one for ``Discrete`` actions.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: Hidden layer sizes, the same for every network, or a dict with keys
        ``pi``, ``qf`` and ``vf``. Default ``[256, 256]`` as in the paper.
    :param activation_fn: Activation function
    :param actor_dropout: Dropout rate in the actor's hidden layers (paper: 0.1 on Kitchen and Adroit)
    :param n_critics: Number of Q-networks (the paper uses two and takes their minimum)
    :param features_extractor_class: Features extractor to use (default: the class's ``default_features_extractor_class``:
        ``FlattenExtractor``; ``CombinedExtractor`` for ``MultiInputPolicy``, ``NatureCNN`` for ``CnnPolicy``)
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor
    :param normalize_images: Whether to divide images by 255
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    """

    default_features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor
    actor: GaussianActor | CategoricalActor
    critic: EnsembleCritic
    critic_target: EnsembleCritic
    value: ValueNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: Union[list[int], dict[str, list[int]], None] = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        actor_dropout: float | None = None,
        n_critics: int = 2,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class or self.default_features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            squash_output=isinstance(action_space, spaces.Box),
            normalize_images=normalize_images,
        )
        if net_arch is None:
            net_arch = [256, 256]
        if optimizer_class is th.optim.Adam and not optimizer_kwargs:
            # One fused kernel per step instead of a dozen small ones per parameter (CPU and CUDA).
            self.optimizer_kwargs = {"fused": True}
        self.net_arch = net_arch
        self.arch = net_arch if isinstance(net_arch, dict) else {"pi": net_arch, "qf": net_arch, "vf": net_arch}
        self.activation_fn = activation_fn
        self.actor_dropout = actor_dropout
        self.n_critics = n_critics
        self._build(lr_schedule)

    def _network_kwargs(self, name: str) -> dict[str, Any]:
        features_extractor = self.make_features_extractor()
        return dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            net_arch=self.arch[name],
            features_extractor=features_extractor,
            features_dim=features_extractor.features_dim,
            activation_fn=self.activation_fn,
            normalize_images=self.normalize_images,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        actor_class = CategoricalActor if isinstance(self.action_space, spaces.Discrete) else GaussianActor
        self.actor = actor_class(**self._network_kwargs("pi"), dropout=self.actor_dropout)
        self.critic = EnsembleCritic(**self._network_kwargs("qf"), n_critics=self.n_critics)
        self.critic_target = EnsembleCritic(**self._network_kwargs("qf"), n_critics=self.n_critics)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)
        self.critic_target.requires_grad_(False)
        self.value = ValueNetwork(**self._network_kwargs("vf"))
        for network in (self.actor, self.critic, self.value):
            network.optimizer = self.optimizer_class(network.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            actor_dropout=self.actor_dropout,
            n_critics=self.n_critics,
            lr_schedule=self._dummy_schedule,  # dummy lr schedule, not needed for loading policy alone
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self.actor(observation, deterministic)

    def set_training_mode(self, mode: bool) -> None:
        """
        Put the actor, critics and value network (not the target critics) in training or evaluation mode.

        SB3 calls this before every prediction (an evaluation makes thousands) and every ``train()``: the modules are
        walked only when the mode changes (a walk costs about as much as the actor's forward pass on one observation).
        """
        if mode == self.training:
            return
        self.actor.set_training_mode(mode)
        self.critic.set_training_mode(mode)
        self.value.set_training_mode(mode)
        self.training = mode


MlpPolicy = IQLPolicy


class MultiInputPolicy(IQLPolicy):
    """IQL policy for Dict observations (goal-conditioned tasks such as AntMaze): the keys are flattened and concatenated."""

    default_features_extractor_class = CombinedExtractor


class CnnPolicy(IQLPolicy):
    """IQL policy for image observations: SB3's ``NatureCNN`` features (images are divided by 255)."""

    default_features_extractor_class = NatureCNN
