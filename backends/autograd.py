"""HIPS autograd: ``value_and_grad`` over the task's model and loss, with ``autograd.numpy`` as the
array namespace: reverse mode over plain numpy code. A task's optimiser other than plain SGD is written
in ``autograd.numpy`` ops (``Updates``): ``autograd.misc.optimizers``' ``sgd`` and ``adam`` run a loop of
their own over ``num_iters`` steps at one ``step_size``, starting their state at zero each call, so they
cannot train a schedule step by step (and their ``sgd`` is another momentum: v ← mass·v − (1 − mass)·g)."""

from __future__ import annotations

from typing import Any

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad

from backends._base import Backend
from tasks.optimizers import Optimizer


def broadcast(x: Any, shape: tuple[int, ...]) -> Any:
    """``x`` broadcast to ``shape``, its missing leading dimensions first made 1 (autograd's gradient of
    ``broadcast_to`` takes no new leading dimensions)."""
    ones = (1,) * (len(shape) - np.ndim(x))
    return anp.broadcast_to(anp.reshape(x, ones + np.shape(x)), shape)


class Namespace:
    """``autograd.numpy``, the numpy autograd records (the whole contract), but for ``where``: autograd gives
    each operand of ``where`` the gradient of the whole result, so an operand that was broadcast (a row, a
    column) gets one of the wrong shape. Broadcast them first; ``broadcast_to``'s gradient sums back."""

    # autograd's functions are Python functions: held as static methods, or the namespace binds itself
    sum, mean, max, min = map(staticmethod, (anp.sum, anp.mean, anp.max, anp.min))
    exp, log, log1p, tanh, sin, cos = map(staticmethod, (anp.exp, anp.log, anp.log1p, anp.tanh, anp.sin, anp.cos))
    sqrt, square, abs = map(staticmethod, (anp.sqrt, anp.square, anp.abs))
    maximum, minimum, reshape, matmul = map(staticmethod, (anp.maximum, anp.minimum, anp.reshape, anp.matmul))

    @staticmethod
    def where(condition: Any, x1: Any, x2: Any) -> Any:
        shape = np.broadcast_shapes(np.shape(condition), np.shape(x1), np.shape(x2))
        return anp.where(condition, broadcast(x1, shape), broadcast(x2, shape))

    def __getattr__(self, name: str) -> Any:  # the rest of numpy, beyond the contract, as autograd has it
        return getattr(anp, name)


class Updates:
    """The task's optimiser (tasks.optimizers) in autograd.numpy ops, new arrays each step: SGD as PyTorch
    documents it, Adam as Kingma & Ba's Algorithm 1 (L2 decay in the gradient), AdamW's decoupled decay."""

    def __init__(self, opt: Optimizer, params: dict[str, np.ndarray]) -> None:
        self.opt, self.t = opt, 0
        self.m = {k: anp.zeros_like(v) for k, v in params.items()}  # SGD's momentum buffer, Adam's 1st moment
        self.v = {k: anp.zeros_like(v) for k, v in params.items()}  # Adam's 2nd moment

    def __call__(self, p: dict[str, Any], grads: dict[str, Any], lr: float) -> dict[str, Any]:
        o, self.t = self.opt, self.t + 1
        out = {}
        for k, theta in p.items():
            g = grads[k] + o.weight_decay * theta if o.weight_decay and not o.decoupled else grads[k]
            if o.name == "sgd":
                if o.momentum:
                    self.m[k] = o.momentum * self.m[k] + g if self.t > 1 else g
                    g = g + o.momentum * self.m[k] if o.nesterov else self.m[k]
                out[k] = theta - lr * g
                continue
            self.m[k] = o.b1 * self.m[k] + (1 - o.b1) * g
            self.v[k] = o.b2 * self.v[k] + (1 - o.b2) * g * g
            step = (self.m[k] / (1 - o.b1**self.t)) / (anp.sqrt(self.v[k] / (1 - o.b2**self.t)) + o.eps)
            out[k] = theta - lr * (step + o.weight_decay * theta) if o.decoupled else theta - lr * step
        return out


class Autograd(Backend):
    name = "autograd"
    xp = Namespace()

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v) for k, v in task.init.items()}
        self.value_and_grad = value_and_grad(self.objective)
        self.updates = None if self.optimizer.plain else Updates(self.optimizer, self.p)

    def asarray(self, a: np.ndarray) -> np.ndarray:
        return np.array(a, dtype=self.dtype)

    def objective(self, p: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Any:
        return self.task.loss(self.task.model(p, x, self.xp), y, self.xp)

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> Any:
        loss, grads = self.value_and_grad(self.p, x, y)
        if self.updates is not None:
            self.p = self.updates(self.p, grads, lr)
            return loss
        self.p = {k: v - lr * grads[k] for k, v in self.p.items()}
        return loss

    def loss(self, x: np.ndarray, y: np.ndarray) -> Any:
        return self.objective(self.p, x, y)

    def stack(self, losses: list[Any]) -> np.ndarray:
        return np.array(losses, dtype=self.dtype)

    def params(self) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in self.p.items()}

    def gradient(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(g) for k, g in self.value_and_grad(self.p, self.x, self.y)[1].items()}
