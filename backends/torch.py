"""torch autograd: ``backward()``, then an in-place update under ``no_grad``; a task's optimiser other
than plain SGD is ``torch.optim``'s (SGD, Adam, AdamW). Beyond the gradient, torch.func's transforms (``jvp``,
``vjp``, ``grad``, ``hessian``, ``jacfwd``, ``jacrev``): the operators of ``tasks.operators`` and Newton's method,
the Hessian by ``torch.func.hessian`` and the step by ``torch.linalg.solve``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from backends._base import Backend
from tasks import operators
from tasks.optimizers import Optimizer

Operand = torch.Tensor | float  # a tensor, or a Python scalar
Fn = Callable[[torch.Tensor], torch.Tensor]  # the loss or the model as a function of the flat parameters
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


def newton_direction(f: Fn, theta: torch.Tensor, damping: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton's step d of the loss f at θ, solving (∇²f + λI)·d = ∇f with ``torch.linalg.solve``, the Hessian by
    ``torch.func.hessian`` (the ``hessian`` operator's), and the loss at θ."""
    grad, loss = torch.func.grad_and_value(f)(theta)
    hess = torch.func.hessian(f)(theta)
    if damping:
        hess = hess + damping * torch.eye(theta.shape[0], dtype=theta.dtype, device=theta.device)
    return torch.linalg.solve(hess, grad), loss


class Torch(Backend):
    name = "torch"
    devices = ("cpu", "cuda")
    xp = Namespace()
    # torch.func rather than torch.autograd.functional: its transforms compose (an HVP is the jvp of grad), run
    # forward mode as forward mode (autograd.functional's jvp is the double-vjp trick: two reverse passes), and
    # torch.compile traces each into one graph, so that the compiled modes compute the same calls. (Eager, on
    # digits, autograd.functional's hessian, a reverse pass a row, takes about half torch.func.hessian's time.)
    operators = {"loss": "the task's model and loss on torch tensors", "jvp": "torch.func.jvp",
                 "vjp": "torch.func.vjp, its pullback of 1", "hvp-fwd-rev": "torch.func.jvp of torch.func.grad",
                 "hvp-rev-rev": "torch.func.grad of torch.func.grad's dot with v", "hessian": "torch.func.hessian",
                 "jacobian-fwd": "torch.func.jacfwd", "jacobian-rev": "torch.func.jacrev"}  # fmt: skip

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v).requires_grad_() for k, v in task.init.items()}
        # Newton's method: torch.optim has none (newton_step: torch.func's Hessian and torch.linalg.solve)
        by_hand = self.optimizer.plain or self.optimizer.name == "newton"
        self.opt = None if by_hand else torch_optimizer(self.optimizer, list(self.p.values()), task.lr(0))
        self.shapes = operators.shapes_of(task.init)
        self.flat_task = task  # the task whose model torch.func differentiates: its own here, a module's in torch-nn

    def asarray(self, a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=getattr(torch, self.dtype), device=self.device)

    def asindex(self, order: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(order, device=self.device)

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.task.loss(self.task.model(self.p, x, self.xp), y, self.xp)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        if self.optimizer.name == "newton":
            return self.newton_step(x, y, lr)
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

    def newton_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        """A step of Newton's method on the batch: the loss of the flat parameters (``tasks.operators.flat_loss``),
        its direction (``newton_direction``), and θ ← θ − γ·d, in place, a parameter's slice of d at a time."""
        theta = torch.cat([self.p[k].detach().reshape(-1) for k, _ in self.shapes])  # in the task's order
        f = operators.flat_loss(self.flat_task, x, y, self.shapes, self.xp)
        d, loss = newton_direction(f, theta, self.optimizer.damping)
        with torch.no_grad():
            for k, dp in operators.unflatten(d, self.shapes, self.xp).items():
                self.p[k].sub_(lr * dp)
        return loss

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

    # -- operators beyond the gradient (tasks.operators), by torch.func -----------------------------------
    def jvp(self, f: Fn, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(f, (theta,), (v,))[1]

    def vjp(self, f: Fn, theta: torch.Tensor) -> torch.Tensor:
        loss, pullback = torch.func.vjp(f, theta)
        return pullback(torch.ones_like(loss))[0]

    def hvp_fwd_rev(self, f: Fn, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(torch.func.grad(f), (theta,), (v,))[1]

    def hvp_rev_rev(self, f: Fn, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.func.grad(lambda t: torch.dot(torch.func.grad(f)(t), v))(theta)

    def hessian(self, f: Fn, theta: torch.Tensor) -> torch.Tensor:
        return torch.func.hessian(f)(theta)

    def jacobian_fwd(self, f: Fn, theta: torch.Tensor) -> torch.Tensor:
        return torch.func.jacfwd(f)(theta)

    def jacobian_rev(self, f: Fn, theta: torch.Tensor) -> torch.Tensor:
        return torch.func.jacrev(f)(theta)
