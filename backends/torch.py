"""torch autograd: ``backward()``, then an in-place update under ``no_grad``; a task's optimiser other
than plain SGD is ``torch.optim``'s (SGD, Adam, AdamW)."""

from __future__ import annotations

import numpy as np
import torch

from backends._base import Backend
from tasks.optimizers import Optimizer

Operand = torch.Tensor | float  # a tensor, or a Python scalar
Axis = int | tuple[int, ...] | None


def tensors(x1: Operand, x2: Operand) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.maximum and torch.minimum take no Python scalar: make it a 0-d tensor like the other operand."""
    if isinstance(x1, torch.Tensor) and isinstance(x2, torch.Tensor):
        return x1, x2
    t = x1 if isinstance(x1, torch.Tensor) else x2
    return tuple(v if v is t else torch.as_tensor(v, dtype=t.dtype, device=t.device) for v in (x1, x2))


class Namespace:
    """The array contract (tasks.contract) over torch, which calls ``axis`` and ``keepdims`` ``dim`` and
    ``keepdim``, and whose ``max(x, dim)`` returns values and indices (``amax`` returns the values)."""

    exp, log, log1p, tanh, sin = torch.exp, torch.log, torch.log1p, torch.tanh, torch.sin
    cos, sqrt, square, abs = torch.cos, torch.sqrt, torch.square, torch.abs
    where, reshape, matmul = torch.where, torch.reshape, torch.matmul

    @staticmethod
    def sum(x: torch.Tensor, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
        return torch.sum(x, dim=axis, keepdim=keepdims)

    @staticmethod
    def mean(x: torch.Tensor, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
        return torch.mean(x, dim=axis, keepdim=keepdims)

    @staticmethod
    def max(x: torch.Tensor, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
        return torch.amax(x, dim=() if axis is None else axis, keepdim=keepdims)  # dim=() is every axis

    @staticmethod
    def min(x: torch.Tensor, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
        return torch.amin(x, dim=() if axis is None else axis, keepdim=keepdims)

    @staticmethod
    def maximum(x1: Operand, x2: Operand) -> torch.Tensor:
        return torch.maximum(*tensors(x1, x2))

    @staticmethod
    def minimum(x1: Operand, x2: Operand) -> torch.Tensor:
        return torch.minimum(*tensors(x1, x2))


def torch_optimizer(opt: Optimizer, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimiser that a task's optimiser (tasks.optimizers) names, as a user makes it."""
    if opt.name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=opt.momentum, nesterov=opt.nesterov, weight_decay=opt.weight_decay
        )
    kind = torch.optim.AdamW if opt.decoupled else torch.optim.Adam
    return kind(params, lr=lr, betas=(opt.b1, opt.b2), eps=opt.eps, weight_decay=opt.weight_decay)


class Torch(Backend):
    name = "torch"
    devices = ("cpu", "cuda")
    xp = Namespace()

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v).requires_grad_() for k, v in task.init.items()}
        self.opt = None if self.optimizer.plain else torch_optimizer(self.optimizer, list(self.p.values()), task.lr(0))

    def asarray(self, a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=getattr(torch, self.dtype), device=self.device)

    def asindex(self, order: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(order, device=self.device)

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.task.loss(self.task.model(self.p, x, self.xp), y, self.xp)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        if self.opt is not None:
            return self.optimizer_step(x, y, lr)
        loss = self.objective(x, y)
        loss.backward()
        with torch.no_grad():
            for p in self.p.values():
                p.add_(p.grad, alpha=-lr)
                p.grad = None
        return loss.detach()

    def optimizer_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        """A step of the ``torch.optim`` optimiser, at the epoch's rate."""
        self.opt.param_groups[0]["lr"] = lr
        self.opt.zero_grad()
        loss = self.objective(x, y)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.objective(x, y)

    def stack(self, losses: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(losses)

    def to_numpy(self, a: torch.Tensor) -> np.ndarray:
        return a.detach().cpu().numpy()

    def wait(self, out: torch.Tensor) -> None:
        if out.is_cuda:
            torch.cuda.synchronize()

    def params(self) -> dict[str, np.ndarray]:
        return {k: self.to_numpy(v) for k, v in self.p.items()}

    def gradient(self) -> dict[str, np.ndarray]:
        # a parameter that only reaches the loss through a condition has no path to it: its gradient is 0
        grads = torch.autograd.grad(
            self.objective(self.x, self.y), list(self.p.values()), allow_unused=True, materialize_grads=True
        )
        return {k: self.to_numpy(g) for k, g in zip(self.p, grads, strict=True)}
