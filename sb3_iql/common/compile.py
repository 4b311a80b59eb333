"""
``torch.compile`` of a whole gradient step: the one place where sb3-iql uses private torch pieces.

Each private piece is checked before compiling (``missing_features``): dynamo's
``trace_autograd_ops`` and ``recompile_limit`` settings, the signature of torch's functional Adam,
inductor's ``cpp_wrapper`` / ``size_asserts`` options, and on CUDA ``mark_static_address`` and
``cudagraph_mark_step_begin``. Where one is missing or has changed, or compiling itself fails
(``COMPILE_ERRORS``), the step falls back to eager execution with a warning that says why. The eager
path (``sb3_iql.common.optimizers``) uses public APIs only.
"""

import inspect
import subprocess
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch as th

#: Compiled models one process can hold before dynamo falls back to eager (one cache entry each).
RECOMPILE_LIMIT = 64
#: What the functional Adam must accept (torch.optim.adam.adam), as sb3-iql calls it.
FUNCTIONAL_ADAM_ARGUMENTS = frozenset(
    {"params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs", "state_steps", "foreach", "capturable", "fused",
     "has_complex", "decoupled_weight_decay", "amsgrad", "beta1", "beta2", "lr", "weight_decay", "eps", "maximize"}
)  # fmt: skip
CPU_INDUCTOR_OPTIONS = {"cpp_wrapper": True, "size_asserts": False}
#: The key under which a param group keeps its learning rate as a tensor for the compiled graph (a float lr would be
#: a constant to it: every new value would recompile). ``group["lr"]`` itself stays a float.
COMPILED_LR = "compiled_lr"


def _compile_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [subprocess.CalledProcessError]
    for module, name in (("torch._dynamo.exc", "TorchDynamoException"), ("torch._inductor.exc", "InductorError")):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


#: What a failed compile raises (dynamo's and inductor's errors, a failing C++ compiler); other errors of a step propagate.
COMPILE_ERRORS = _compile_errors()


def missing_features(device: th.device) -> list[str]:
    """:return: The private torch features that compiling the step needs and this torch lacks (empty: all there)."""
    missing = []
    if not hasattr(th, "compile") or not hasattr(th, "_dynamo"):
        missing.append("torch.compile")
        return missing
    config = th._dynamo.config
    for setting in ("trace_autograd_ops", "recompile_limit"):
        if not hasattr(config, setting):
            missing.append(f"torch._dynamo.config.{setting}")
    try:
        from torch.optim.adam import adam

        absent = FUNCTIONAL_ADAM_ARGUMENTS - set(inspect.signature(adam).parameters)
        if absent:
            missing.append(f"torch.optim.adam.adam arguments {sorted(absent)}")
    except (ImportError, ValueError, TypeError):
        missing.append("torch.optim.adam.adam")
    if device.type == "cuda":
        if not hasattr(th._dynamo, "mark_static_address"):
            missing.append("torch._dynamo.mark_static_address")
        if not hasattr(th.compiler, "cudagraph_mark_step_begin"):
            missing.append("torch.compiler.cudagraph_mark_step_begin")
    else:
        try:
            from torch._inductor import config as inductor_config

            absent = [option for option in CPU_INDUCTOR_OPTIONS if not hasattr(inductor_config, option)]
            missing += [f"torch._inductor.config.{option}" for option in absent]
        except ImportError:
            missing.append("torch._inductor")
    return missing


class CompiledStep:
    """
    A gradient step compiled with ``torch.compile`` into one graph, falling back to eager where it cannot.

    The first call runs eagerly: it creates the optimizer state that the compiled graph then updates in
    place. The step must compute its gradients with ``sb3_iql.common.optimizers.minimize``.

    :param step: The step, ``step(batch) -> statistics``
    :param optimizers: The optimizers the step updates
    :param device: Where the step runs (CUDA compiles with CUDA graphs)
    """

    def __init__(self, step: Callable[[Any], Any], optimizers: Sequence[th.optim.Optimizer], device: th.device):
        self.step = step
        self.optimizers = list(optimizers)
        self.device = device
        self.compiled: Callable[[Any], Any] | None = None
        self.failed = False
        self.calls = 0

    def __call__(self, batch: Any) -> Any:
        self.calls += 1
        if self.failed or self.calls == 1:
            return self.step(batch)
        if self.compiled is None:
            missing = missing_features(self.device)
            if missing:
                return self._fall_back(f"this torch lacks {', '.join(missing)}", batch)
            self.compiled = self._compile()
        # Tracing the gradients makes the whole update one graph. Set for this call only, and by hand:
        # config.patch() costs about 0.1 ms, 2% of a step.
        config = th._dynamo.config
        traced_before, config.trace_autograd_ops = config.trace_autograd_ops, True
        try:
            if self.device.type == "cuda":
                # Each call is a step of its own to CUDA graph trees: the previous step's outputs are consumed.
                th.compiler.cudagraph_mark_step_begin()
            return self.compiled(batch)
        except COMPILE_ERRORS as error:  # a failed compile changes nothing: the step then runs eagerly
            return self._fall_back(f"{type(error).__name__}: {error}", batch)
        finally:
            config.trace_autograd_ops = traced_before

    def _fall_back(self, reason: str, batch: Any) -> Any:
        # An error of the step itself (a shape mismatch, say) fails eagerly too, and propagates from here as it is.
        result = self.step(batch)
        warnings.warn(f"torch.compile failed ({reason}); training continues without compiling.", stacklevel=3)
        self.failed = True
        return result

    def _compile(self) -> Callable[[Any], Any]:
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group[COMPILED_LR] = th.tensor(float(group["lr"]), device=self.device)
        # Dynamo keys compiled code on the code object and guards on the model's tensors: each compiled model
        # adds an entry, and past the default limit of 8 the step would silently fall back to eager.
        th._dynamo.config.recompile_limit = max(th._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        if self.device.type != "cuda":
            # A C++ wrapper calls the ~70 kernels of a step without Python in between; dynamo's guards already
            # check every input's size and strides, so inductor's own asserts only repeat them (7% a step together).
            return th.compile(self.step, options=dict(CPU_INDUCTOR_OPTIONS))
        # On a GPU the step is a few hundred small kernels, which CUDA graphs launch as one.
        for optimizer in self.optimizers:
            mark_state_static(optimizer)
        return th.compile(self.step, mode="reduce-overhead")


def mark_state_static(optimizer: th.optim.Optimizer) -> None:
    """
    Mark the optimizer's learning rates and state as tensors at fixed addresses, as a CUDA graph needs the
    tensors it updates in place (parameters already count as such). A replaced tensor, from a loaded state
    dict, fails dynamo's guard and recompiles.
    """
    for group in optimizer.param_groups:
        if isinstance(group.get(COMPILED_LR), th.Tensor):
            th._dynamo.mark_static_address(group[COMPILED_LR])
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, th.Tensor):
                th._dynamo.mark_static_address(value)


def steps_functionally(optimizer: th.optim.Optimizer) -> bool:
    """Whether a traced step can run ``optimizer`` functionally: plain Adam/AdamW whose state a first ``step()`` created."""
    return (
        th.compiler.is_compiling()
        and type(optimizer) in (th.optim.Adam, th.optim.AdamW)
        and not any(group["differentiable"] for group in optimizer.param_groups)
        and len(optimizer.state) == sum(len(group["params"]) for group in optimizer.param_groups)
    )


def functional_adam_step(optimizer: th.optim.Optimizer, grads: dict[th.Tensor, th.Tensor | None]) -> None:
    """
    Adam's (or AdamW's) step on its own state with the given gradients, in a form dynamo traces into the step's graph.

    ``Optimizer.step`` breaks a compiled graph; torch's functional ``adam`` does not.
    """
    from torch.optim.adam import adam

    for group in optimizer.param_groups:
        params = [param for param in group["params"] if grads.get(param) is not None]
        param_grads: list[th.Tensor] = [grads[param] for param in params]  # type: ignore[misc]
        states = [optimizer.state[param] for param in params]
        learning_rate = group.get(COMPILED_LR, group["lr"])
        with th.no_grad():
            if not (group["weight_decay"] or group["amsgrad"] or group["maximize"]):
                _plain_adam_for_inductor(params, param_grads, states, group, learning_rate)
                continue
            beta1, beta2 = group["betas"]
            adam(
                params,
                param_grads,
                [state["exp_avg"] for state in states],
                [state["exp_avg_sq"] for state in states],
                [state["max_exp_avg_sq"] for state in states] if group["amsgrad"] else [],
                [state["step"] for state in states],
                # Inductor traces the per-tensor form (the fused kernel is opaque to it) with the step count kept on
                # the device, as the fused form keeps it.
                foreach=False,
                capturable=True,
                fused=False,
                has_complex=any(th.is_complex(param) for param in params),
                decoupled_weight_decay=group["decoupled_weight_decay"],
                amsgrad=group["amsgrad"],
                beta1=beta1,
                beta2=beta2,
                lr=learning_rate,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
            )


def _plain_adam_for_inductor(
    params: list[th.Tensor],
    grads: list[th.Tensor],
    states: list[dict[str, th.Tensor]],
    group: dict[str, Any],
    learning_rate: float | th.Tensor,
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
    for step in steps:
        step.add_(1)
    step_counts = th.stack(steps)
    step_size = (learning_rate / (1 - beta1**step_counts)).amax()
    bias_correction2_sqrt = (1 - beta2**step_counts).sqrt().amax()
    for param, grad, state in zip(params, grads, states):
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        param.sub_(step_size * exp_avg / (exp_avg_sq.sqrt() / bias_correction2_sqrt + group["eps"]))
