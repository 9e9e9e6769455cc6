"""torch-nn's training step under ``torch.compile``, as PyTorch's "Where to apply torch.compile?" writes a
compiled train step: ``opt.zero_grad(True)``, the ``nn.Module``'s forward, the loss, ``loss.backward()``,
``opt.step()``, one compiled function called once a step. The optimiser is torch-nn's ``torch.optim`` one
(SGD, or the task's) with its learning rate a tensor, as PyTorch's "Compiled optimizer with a LR scheduler"
tutorial makes it, so that a new rate is a new value in the same tensor and not a new compilation. Newton's method
is torch-nn's (the module's Hessian by ``torch.func.functional_call`` and ``torch.func.hessian``, the update in
place) compiled as the step; each operator is torch-nn's under ``torch.compile``."""

from __future__ import annotations

import types
from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch._dynamo.utils import compilation_time_metrics

from backends.torch import torch_optimizer
from backends.torch_compile import COMPILED, compiled_operator, own
from backends.torch_nn import TorchNN
from tasks import Task, operators


class TorchNNCompile(TorchNN):
    name = "torch-nn-compile"
    mode = "compiled step"
    operators = {k: f"torch.compile of {v}" for k, v in TorchNN.operators.items()}

    def __init__(self, task: Task, dtype: str = "float64", device: str = "cpu") -> None:
        super().__init__(task, dtype, device)
        # the rate a 0-d tensor (the tutorial's torch.tensor(0.01)), in the run's dtype: torch.optim reads a
        # float rate as a double, which a float32 tensor would not hold in a float64 run
        self.rate, self.set_to = torch.tensor(task.lr(0), dtype=getattr(torch, dtype), device=device), task.lr(0)
        if self.optimizer.name == "newton":  # torch.optim has none: the step is torch-nn's, at the rate's tensor
            self.compiled = torch.compile(own(self.newton_train))
            return
        self.opt = torch_optimizer(self.optimizer, list(self.net.parameters()), self.rate)
        if self.optimizer.name != "sgd":
            # Adam's step counts in the run's dtype: compiled, torch.optim computes its bias corrections from the
            # count tensor, which it would make in the default dtype (float32) where eager reads it as a double
            for p in self.net.parameters():
                self.opt.state[p] = {"step": torch.zeros((), dtype=p.dtype), "exp_avg": torch.zeros_like(p),
                                     "exp_avg_sq": torch.zeros_like(p)}  # fmt: skip
        self.opt.step = own_step(self.opt)
        self.compiled = torch.compile(own(self.train))

    def train(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The docs' compiled train step, returning its loss: read before ``backward()``, where Dynamo breaks
        the graph, so that no tensor with a tape lives across the break (Dynamo, wrapping one there, reads its
        ``.grad`` and warns, which it hides from the default warning filters but not from the suite's)."""
        self.opt.zero_grad(True)
        loss = self.objective(x, y)
        value = loss.detach()
        loss.backward()
        self.opt.step()
        return value

    def newton_train(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.newton_step(x, y, self.rate)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        if lr != self.set_to:  # a new epoch's rate, into the optimiser's tensor (as an LR scheduler sets it)
            self.rate.fill_(lr)
            self.set_to = lr
        return self.compiled(x, y)

    @cached_property
    def compiled_objective(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return torch.compile(own(self.objective))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.compiled_objective(x, y)

    def gradient(self) -> dict[str, np.ndarray]:
        """The compiled objective's gradient: its forward and the backward AOT autograd compiled for it."""
        grads = torch.autograd.grad(self.compiled_objective(self.x, self.y), list(self.p.values()),
                                    allow_unused=True, materialize_grads=True)  # fmt: skip
        return {k: self.to_numpy(g) for k, g in zip(self.p, grads, strict=True)}

    def operator(self, name: str, at: operators.Point) -> Callable[[], Any]:
        return compiled_operator(*self.operator_function(name, at))

    def compile_seconds(self) -> float:
        """Dynamo's own tally of its compilations (tracing, AOT autograd, Inductor's code generation)."""
        return sum(compilation_time_metrics.get("_compile.compile_inner", ()))


def own_step(opt: torch.optim.Optimizer) -> Callable[..., Any]:
    """``opt.step`` as functions of this optimiser's own. ``torch.optim`` breaks the graph inside its step (its
    ``_use_grad_for_differentiable``), so Dynamo compiles the step's frames apart from the train step that calls
    it, as frames of their own (the profiling hook's ``wrapper``, ``_use_grad``, the class's ``step``), keyed by
    their code, which every optimiser of the class shares: with several cases alive in a process, a later case's
    step would be compiled for shapes seen before as dynamic, and the ninth case's run eager (Dynamo's recompile
    limit). Each level here is a copy with code of its own (``own``), as a program timing one case compiles."""
    n = next(COMPILED)

    def copy(f: Any, **cells: Any) -> Any:
        code = f.__code__.replace(co_name=f"{f.__code__.co_name}_{n}")
        closure = tuple(types.CellType(cells[v]) if v in cells else c
                        for v, c in zip(code.co_freevars, f.__closure__ or (), strict=True))  # fmt: skip
        g = types.FunctionType(code, f.__globals__, f.__name__, f.__defaults__, closure or None)
        g.__kwdefaults__, g.__qualname__ = f.__kwdefaults__, f.__qualname__
        return g

    wrapper = type(opt).step  # Optimizer.profile_hook_step's wrapper of _use_grad, of the class's step
    use_grad = wrapper.__wrapped__
    step = use_grad.__wrapped__
    if not {"func"} == set(wrapper.__code__.co_freevars) == set(use_grad.__code__.co_freevars):
        raise RuntimeError("torch.optim's step is no longer wrapper(_use_grad(step)): see own_step")
    return types.MethodType(copy(wrapper, func=copy(use_grad, func=copy(step))), opt)
