"""Optimizer steps on given gradients, written so ``torch.compile`` can trace them into one graph with the losses."""

from collections.abc import Sequence

import torch as th

from sb3_iql.common.compile import COMPILED_LR, functional_adam_step, steps_functionally


def set_learning_rate(optimizer: th.optim.Optimizer, learning_rate: float) -> None:
    """Set the lr of every param group (a float, as everywhere in torch; a compiled step's tensor copy follows it)."""
    for group in optimizer.param_groups:
        group["lr"] = float(learning_rate)
        if isinstance(group.get(COMPILED_LR), th.Tensor):
            group[COMPILED_LR].fill_(float(learning_rate))


def minimize(optimizers: Sequence[th.optim.Optimizer], loss: th.Tensor) -> None:
    """
    One optimizer step of every optimizer in ``optimizers`` on the gradients of ``loss``.

    The same maths as ``zero_grad(); loss.backward(); step()``. Gradients come from ``torch.autograd.grad``,
    which ``torch.compile`` traces into the same graph as the loss (``Tensor.backward`` breaks the graph).

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

    Eagerly this is ``step()`` itself. Traced by ``torch.compile`` (``sb3_iql.common.compile``), Adam and AdamW
    run functionally on their own state, which stays in the graph.

    :param optimizer: The optimizer
    :param grads: The gradient of each parameter (None where the loss does not depend on it)
    """
    if steps_functionally(optimizer):
        functional_adam_step(optimizer, grads)
        return
    for group in optimizer.param_groups:
        for param in group["params"]:
            grad = grads.get(param)
            # Contiguous: torch's fused CPU Adam misreads a strided gradient (batched networks' weights get one).
            param.grad = None if grad is None else grad.contiguous()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
