"""
The DAPG expert policies that D4RL rolled out for the Adroit ``*-expert`` data: old ``mjrl`` pickles,
read without ``mjrl`` into a numpy policy.
"""

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch as th


class _Attributes:
    """Stand-in for the pickled ``mjrl`` and legacy ``torch.nn`` classes: keeps their attributes."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class _MjrlUnpickler(pickle.Unpickler):
    """Unpickle old ``mjrl`` policies without ``mjrl``, reading their tensors with today's torch."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("mjrl.") or module.startswith("torch.nn.modules"):
            return _Attributes
        if module == "torch.nn.backends.thnn":
            return lambda *args: None
        if (module, name) == ("torch._C", "_VariableFunctions"):
            return th
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return lambda data: th.load(io.BytesIO(data), weights_only=False, map_location="cpu")
        return super().find_class(module, name)


class DapgPolicy:
    """
    A DAPG expert policy (``mjrl`` ``GaussianMLP``): a tanh MLP with input/output shift and scale and
    a state-independent log-std, evaluated in numpy.

    :param path: The ``*-v0.pickle`` file
    :param deterministic: Act with the mean instead of sampling from the Gaussian
    :param seed: Seed of the action noise
    """

    def __init__(self, path: str | Path, deterministic: bool = False, seed: int = 0):
        with open(path, "rb") as file:
            try:
                pickled = _MjrlUnpickler(file).load()
                network = pickled.model
                layers = network._modules["fc_layers"]._modules
                self.layers = [
                    (_numpy(layers[key]._parameters["weight"]).T, _numpy(layers[key]._parameters["bias"]))
                    for key in sorted(layers, key=int)
                ]
                self.in_shift, self.in_scale = _numpy(network.in_shift), _numpy(network.in_scale)
                self.out_shift, self.out_scale = _numpy(network.out_shift), _numpy(network.out_scale)
                self.std = np.exp(_numpy(pickled.log_std))
            except (pickle.UnpicklingError, AttributeError, KeyError, EOFError) as error:
                raise ValueError(f"{path} is not a DAPG (mjrl GaussianMLP) policy pickle: {error!r}") from error
        self.observation_dim = self.layers[0][0].shape[0]
        self.action_dim = self.layers[-1][0].shape[1]
        self.deterministic = deterministic
        self.rng = np.random.default_rng(seed)

    def mean(self, observation: np.ndarray) -> np.ndarray:
        """:return: The mean action for an observation."""
        hidden = (np.asarray(observation, dtype=np.float64) - self.in_shift) / (self.in_scale + 1e-8)
        for weight, bias in self.layers[:-1]:
            hidden = np.tanh(hidden @ weight + bias)
        weight, bias = self.layers[-1]
        return (hidden @ weight + bias) * self.out_scale + self.out_shift

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        action = self.mean(observation)
        if not self.deterministic:
            action = action + self.std * self.rng.standard_normal(self.action_dim)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def _numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().cpu().numpy() if isinstance(tensor, th.Tensor) else tensor, dtype=np.float64)
