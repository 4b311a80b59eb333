"""Optimizer steps that ``torch.compile`` can trace into the same graph as the losses and their gradients."""

from collections.abc import Sequence
from typing import Any

import torch as th
from torch.optim.adam import adam


def set_learning_rate(optimizer: th.optim.Optimizer, learning_rate: float) -> None:
    """Set the lr of every param group; a tensor lr is filled in place, so a compiled step sees no new constant."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], th.Tensor):
            group["lr"].fill_(learning_rate)
        else:
            group["lr"] = learning_rate


def mark_state_static(optimizer: th.optim.Optimizer) -> None:
    """
    Mark the optimizer's learning rates and state as tensors at fixed addresses, as a CUDA graph needs the
    tensors it updates in place (parameters already count as such). A replaced tensor, from a loaded state
    dict, fails dynamo's guard and recompiles.
    """
    for group in optimizer.param_groups:
        if isinstance(group["lr"], th.Tensor):
            th._dynamo.mark_static_address(group["lr"])
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, th.Tensor):
                th._dynamo.mark_static_address(value)


def minimize(optimizers: Sequence[th.optim.Optimizer], loss: th.Tensor) -> None:
    """
    One optimizer step of every optimizer in ``optimizers`` on the gradients of ``loss``.

    The same maths as ``zero_grad(); loss.backward(); step()``, written so that ``torch.compile`` traces all
    of it into one graph: ``Tensor.backward`` and ``Optimizer.step`` each break a compiled graph, and each
    break costs more than the elementwise work between two matrix products.

    :param optimizers: Optimizers whose parameters ``loss`` depends on; they must not share parameters
    :param loss: A scalar loss
    """
    params = [param for optimizer in optimizers for group in optimizer.param_groups for param in group["params"]]
    grads = dict(zip(params, th.autograd.grad(loss, params, allow_unused=True)))
    for optimizer in optimizers:
        step_with_gradients(optimizer, grads)


def step_with_gradients(optimizer: th.optim.Optimizer, grads: dict[th.Tensor, th.Tensor | None]) -> None:
    """
    ``optimizer.step()`` with the given gradients; parameters without one are left alone, as ``step()`` does.

    Adam and AdamW run torch's functional Adam on the optimizer's own state (compiled, a form written for
    inductor where it applies). Any other optimizer, and Adam's first step (which creates that state),
    goes through ``step()``.

    :param optimizer: The optimizer
    :param grads: The gradient of each parameter (None where the loss does not depend on it)
    """
    if not _is_functional_adam(optimizer):
        for group in optimizer.param_groups:
            for param in group["params"]:
                param.grad = grads.get(param)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return
    compiling = th.compiler.is_compiling()
    for group in optimizer.param_groups:
        params = [param for param in group["params"] if grads.get(param) is not None]
        param_grads: list[th.Tensor] = [grads[param] for param in params]  # type: ignore[misc]
        states = [optimizer.state[param] for param in params]
        with th.no_grad():
            if compiling and not (group["weight_decay"] or group["amsgrad"] or group["maximize"]):
                _plain_adam_for_inductor(params, param_grads, states, group)
                continue
            beta1, beta2 = group["betas"]
            adam(
                params,
                param_grads,
                [state["exp_avg"] for state in states],
                [state["exp_avg_sq"] for state in states],
                [state["max_exp_avg_sq"] for state in states] if group["amsgrad"] else [],
                [state["step"] for state in states],
                # Compiled, inductor traces the per-tensor form (the fused kernel is opaque to it) with the
                # step count kept on the device, as the fused form keeps it.
                foreach=False if compiling else group["foreach"],
                capturable=compiling or group["capturable"],
                fused=False if compiling else group["fused"],
                has_complex=any(th.is_complex(param) for param in params),
                decoupled_weight_decay=group["decoupled_weight_decay"],
                amsgrad=group["amsgrad"],
                beta1=beta1,
                beta2=beta2,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
            )


def _plain_adam_for_inductor(
    params: list[th.Tensor], grads: list[th.Tensor], states: list[dict[str, th.Tensor]], group: dict[str, Any]
) -> None:
    """
    Adam without weight decay, as torch computes it, in a form that inductor compiles to fast CPU code.

    Traced as torch writes it, every elementwise kernel recomputes ``beta ** step`` for each vector of 8
    floats: inductor's C++ keeps libm's errno semantics, so the compiler cannot hoist the scalar ``pow``
    out of the loop, and Adam runs at a third of the fused kernel's speed. Here the bias corrections come
    from one reduction over the group's step counts, which inductor computes once. The counts are equal
    (the tensors step together: each had a gradient at every step, as every IQL parameter does).
    """
    beta1, beta2 = group["betas"]
    steps = [state["step"] for state in states]
    th._foreach_add_(steps, 1)
    step_counts = th.stack(steps)
    step_size = (group["lr"] / (1 - beta1**step_counts)).amax()
    bias_correction2_sqrt = (1 - beta2**step_counts).sqrt().amax()
    for param, grad, state in zip(params, grads, states):
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        param.sub_(step_size * exp_avg / (exp_avg_sq.sqrt() / bias_correction2_sqrt + group["eps"]))


def _is_functional_adam(optimizer: th.optim.Optimizer) -> bool:
    """Whether the functional path applies: plain (Adam or AdamW) and its state already created by a first ``step()``."""
    return (
        type(optimizer) in (th.optim.Adam, th.optim.AdamW)
        and not any(group["differentiable"] for group in optimizer.param_groups)
        and len(optimizer.state) == sum(len(group["params"]) for group in optimizer.param_groups)
    )
