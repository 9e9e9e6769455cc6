"""torch.compile over the whole functional step: ``torch.func.grad_and_value`` and the update, one graph.
A task's optimiser other than plain SGD is ``torch.optim``'s own, through its functional API
(``torch.optim.sgd.sgd``, ``torch.optim.adam.adam``: what ``torch.optim.SGD`` and ``Adam`` call), inside
the graph, on state tensors made as ``torch.optim`` makes them. Newton's method is torch's (``torch.func.hessian``,
``torch.linalg.solve``) in the compiled step; each operator is torch's torch.func call under ``torch.compile``."""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch._dynamo.utils import compilation_time_metrics
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from backends.torch import Torch, newton_direction
from tasks import operators


class TorchCompile(Torch):
    name = "torch-compile"
    mode = "compiled step"
    operators = {k: f"torch.compile of {v}" for k, v in Torch.operators.items()}

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: v.detach() for k, v in self.p.items()}
        step = self.newton if self.optimizer.name == "newton" else self.sgd_step if self.optimizer.plain else (
            self.optimizer_step)  # fmt: skip
        self.compiled = torch.compile(own(step))
        # torch.optim's state: SGD's momentum buffers (zeros: its first step, 0·μ + g, is torch's clone of g),
        # Adam's moments and step counts (0-d, in the run's dtype: torch's own with that default dtype)
        zeros = {k: torch.zeros_like(v) for k, v in self.p.items()}
        self.state = {"momentum": zeros} if self.optimizer.name == "sgd" else {
            "exp_avg": zeros, "exp_avg_sq": {k: torch.zeros_like(v) for k, v in self.p.items()},
            "step": {k: torch.zeros((), dtype=v.dtype, device=v.device) for k, v in self.p.items()}}  # fmt: skip

    def sgd_step(self, p, x, y, lr):
        grads, loss = torch.func.grad_and_value(self.functional)(p, x, y)
        return {k: p[k] - lr * grads[k] for k in p}, loss

    def newton(self, p, x, y, lr):
        """Newton's step (``newton_direction``) of the flat parameters; θ − γ·d split back into the parameters."""
        theta = torch.cat([p[k].reshape(-1) for k, _ in self.shapes])
        d, loss = newton_direction(operators.flat_loss(self.task, x, y, self.shapes, self.xp), theta,
                                   self.optimizer.damping)  # fmt: skip
        return operators.unflatten(theta - lr * d, self.shapes, self.xp), loss

    def optimizer_step(self, p, state, x, y, lr):
        """The task's optimiser, ``torch.optim``'s functional form: new parameters, the state in place."""
        grads, loss = torch.func.grad_and_value(self.functional)(p, x, y)
        new = {k: v.clone() for k, v in p.items()}  # torch.optim updates in place
        params, gs, o, wd = list(new.values()), [grads[k] for k in p], self.optimizer, self.optimizer.weight_decay
        if wd and not o.decoupled:
            # torch.optim's L2 decay, g + λθ, written out: inductor (torch 2.13, CPU) compiles its
            # grad.add(param, alpha=λ) as grad + param where grad is a matmul, dropping λ (docs/optimisers.md;
            # tests/equivalence/test_optimizers.py shows it)
            gs, wd = [g + wd * p[k] for g, k in zip(gs, p, strict=True)], 0.0
        if o.name == "sgd":
            buffers = list(state["momentum"].values())
            sgd(params, gs, buffers, foreach=False, weight_decay=wd, momentum=o.momentum,
                                lr=lr, dampening=0.0, nesterov=o.nesterov, maximize=False)  # fmt: skip
        else:
            adam(params, gs, list(state["exp_avg"].values()), list(state["exp_avg_sq"].values()), [],
                                  list(state["step"].values()), foreach=False, decoupled_weight_decay=o.decoupled,
                                  amsgrad=False, beta1=o.b1, beta2=o.b2, lr=lr, weight_decay=wd,
                                  eps=o.eps, maximize=False)  # fmt: skip
        return new, loss

    def functional(self, p, x, y):
        return self.task.loss(self.task.model(p, x, self.xp), y, self.xp)

    def gradient(self) -> dict[str, np.ndarray]:
        grads = torch.compile(torch.func.grad(self.functional))(self.p, self.x, self.y)
        return {k: self.to_numpy(g) for k, g in grads.items()}

    def compile_seconds(self) -> float:
        """Dynamo's own tally of its compilations (tracing, AOT autograd, Inductor's code generation)."""
        return sum(compilation_time_metrics.get("_compile.compile_inner", ()))

    def prepare(self, lrs: np.ndarray, orders: list[np.ndarray | None]) -> list[tuple[torch.Tensor, Any]]:
        """Each epoch's rate as a 0-d tensor of the run's dtype, made here (untimed) as jax-jit makes its
        arrays: a Python float would be specialised on, one compilation per value."""
        return [(self.asarray(np.asarray(lr)), None if o is None else self.asindex(o))
                for lr, o in zip(lrs, orders, strict=True)]  # fmt: skip

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        if self.optimizer.plain or self.optimizer.name == "newton":
            self.p, loss = self.compiled(self.p, x, y, lr)
        else:
            self.p, loss = self.compiled(self.p, self.state, x, y, lr)
        return loss

    @cached_property
    def compiled_loss(self):
        return torch.compile(own(self.functional))  # forward only: the parameters here hold no tape

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.compiled_loss(self.p, x, y)

    def operator(self, name: str, at: operators.Point) -> Callable[[], Any]:
        return compiled_operator(*self.operator_function(name, at))


def compiled_operator(fn: Callable[..., Any], args: tuple[Any, ...]) -> Callable[[], Any]:
    """An operator's function under ``torch.compile``, with code of its own (``own``), called with its arguments:
    the first call compiles."""
    compiled = torch.compile(own(fn))
    return lambda: compiled(*args)


COMPILED = itertools.count()


def own(method):
    """The method (or function) with code of its own. Dynamo keeps a function's compiled graphs, and what
    it learnt of its shapes, by its code (the object, and its name and line), which every instance of a
    class shares: the second instance alive would get a dynamic-shape graph, and the ninth none (eager).
    Each instance (a task and dtype) compiles a function of its own, as a program timing one case would."""
    f = getattr(method, "__func__", method)
    code = f.__code__.replace(co_name=f"{f.__code__.co_name}_{next(COMPILED)}")
    g = types.FunctionType(code, f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    return types.MethodType(g, method.__self__) if hasattr(method, "__func__") else g
