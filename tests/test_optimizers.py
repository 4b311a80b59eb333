"""minimize() against the usual zero_grad / backward / step, for the optimizers it steps functionally and the others."""

import copy
from collections.abc import Callable

import pytest
import torch as th
from torch import nn

from sb3_iql.common.optimizers import minimize

OPTIMIZERS: dict[str, Callable[[list[nn.Parameter]], th.optim.Optimizer]] = {
    "adam-fused": lambda params: th.optim.Adam(params, lr=1e-2, fused=True),
    "adam-foreach": lambda params: th.optim.Adam(params, lr=1e-2, foreach=True),
    "adam-single-tensor-amsgrad": lambda params: th.optim.Adam(params, lr=1e-2, foreach=False, amsgrad=True),
    "adamw-tensor-lr": lambda params: th.optim.AdamW(params, lr=th.tensor(1e-2), weight_decay=0.1, fused=True),
    "sgd-momentum": lambda params: th.optim.SGD(params, lr=1e-2, momentum=0.9),
}


def losses(first: nn.Module, second: nn.Module, inputs: th.Tensor) -> th.Tensor:
    return first(inputs).pow(2).mean() + (second(inputs) - 1.0).abs().mean()


def minimize_step(networks: list[nn.Module], optimizers: list[th.optim.Optimizer], inputs: th.Tensor) -> None:
    minimize(optimizers, losses(*networks, inputs))


def compiled_minimize_step(networks: list[nn.Module], optimizers: list[th.optim.Optimizer], inputs: th.Tensor) -> None:
    compiled = th.compile(minimize_step, fullgraph=True)
    with th._dynamo.config.patch(trace_autograd_ops=True):
        compiled(networks, optimizers, inputs)


def run_and_compare(make_optimizer: Callable, step: Callable = minimize_step, rtol: float = 1e-6, atol: float = 1e-7) -> None:
    th.manual_seed(0)
    networks = [nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)) for _ in range(2)]
    reference = copy.deepcopy(networks)
    optimizers = [make_optimizer(list(network.parameters())) for network in networks]
    reference_optimizers = [make_optimizer(list(network.parameters())) for network in reference]
    for i in range(4):  # the first step creates the optimizer state, the later ones update it functionally
        inputs = th.randn(16, 4)
        (minimize_step if i == 0 else step)(networks, optimizers, inputs)
        for optimizer in reference_optimizers:
            optimizer.zero_grad()
        losses(*reference, inputs).backward()
        for optimizer in reference_optimizers:
            optimizer.step()
    for network, expected in zip(networks, reference):
        for param, expected_param in zip(network.parameters(), expected.parameters()):
            th.testing.assert_close(param, expected_param, rtol=rtol, atol=atol)
            assert param.grad is None  # no gradient is left behind on the parameters
    for optimizer, expected_optimizer in zip(optimizers, reference_optimizers):
        for state, expected_state in zip(optimizer.state.values(), expected_optimizer.state.values()):
            for key, value in expected_state.items():
                th.testing.assert_close(state[key], value, rtol=rtol, atol=atol)


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_minimize_matches_backward_and_step(make_optimizer):
    run_and_compare(make_optimizer)


@pytest.mark.parametrize("optimizer", ["adam-fused", "adamw-tensor-lr"])
def test_compiled_minimize_matches_backward_and_step(optimizer):
    """Compiled, plain Adam takes the form written for inductor, and AdamW with weight decay torch's functional form."""
    th._dynamo.reset()
    run_and_compare(OPTIMIZERS[optimizer], compiled_minimize_step, rtol=1e-5, atol=1e-6)  # inductor reorders float ops


def test_parameters_the_loss_does_not_use_are_left_alone():
    used, unused = nn.Linear(3, 1), nn.Linear(3, 1)
    optimizer = th.optim.Adam([*used.parameters(), *unused.parameters()], lr=0.1, fused=True)
    used_before, unused_before = copy.deepcopy(used.state_dict()), copy.deepcopy(unused.state_dict())
    for _ in range(3):
        minimize([optimizer], used(th.randn(5, 3)).pow(2).mean())
    for name, param in unused.named_parameters():
        th.testing.assert_close(param.detach(), unused_before[name], rtol=0, atol=0)
        assert param not in optimizer.state
    assert not th.equal(used.weight.detach(), used_before["weight"])
