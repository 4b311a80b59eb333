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


class _TorchFunctions:
    """Stand-in for ``torch._C._VariableFunctions``: the pickles look up the activation by name on it."""

    tanh = staticmethod(th.tanh)


def _attribute(owner: Any, name: str) -> Any:
    """The pickles' ``getattr``, limited to the activation on ``_TorchFunctions`` (a free getattr reaches anything)."""
    if owner is _TorchFunctions and name == "tanh":
        return _TorchFunctions.tanh
    raise pickle.UnpicklingError(f"refusing getattr({owner!r}, {name!r}): not part of a DAPG policy pickle")


def _load_storage(data: bytes) -> Any:
    """Legacy tensor storages, read by torch's safe loader (``weights_only=True`` runs no pickled code)."""
    return th.load(io.BytesIO(data), weights_only=True, map_location="cpu")


class _MjrlUnpickler(pickle.Unpickler):
    """
    Unpickle old ``mjrl`` policies without ``mjrl``, reading their tensors with today's torch. A restricted
    unpickler: every global the DAPG pickles name is mapped to a stand-in or an allowed constructor, and any
    other global (``os.system``, ``subprocess.Popen``, ...) is refused, so a crafted pickle cannot run code.
    """

    ALLOWED = {
        ("collections", "OrderedDict"): lambda: __import__("collections").OrderedDict,
        ("numpy", "dtype"): lambda: np.dtype,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy.core.multiarray", "_reconstruct"): lambda: np.core.multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): lambda: np.core.multiarray.scalar,
        ("torch._utils", "_rebuild_tensor_v2"): lambda: th._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): lambda: th._utils._rebuild_parameter,
        ("torch._C", "_VariableFunctions"): lambda: _TorchFunctions,
        ("torch.storage", "_load_from_bytes"): lambda: _load_storage,
        ("builtins", "getattr"): lambda: _attribute,
    }

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("mjrl.") or module.startswith("torch.nn.modules."):
            return _Attributes
        if module == "torch.nn.backends.thnn":
            return lambda *args: None
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]()
        raise pickle.UnpicklingError(f"refusing to load global '{module}.{name}': not part of a DAPG policy pickle")


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
