"""HIPS autograd: ``value_and_grad`` over the task's model and loss, with ``autograd.numpy`` as the
array namespace: reverse mode over plain numpy code. A task's optimiser other than plain SGD is written
in ``autograd.numpy`` ops (``Updates``): ``autograd.misc.optimizers``' ``sgd`` and ``adam`` run a loop of
their own over ``num_iters`` steps at one ``step_size``, starting their state at zero each call, so they
cannot train a schedule step by step (and their ``sgd`` is another momentum: v ← mass·v − (1 − mass)·g).

Beyond the gradient, autograd has both modes: ``make_vjp`` (reverse) and ``make_jvp`` (forward), which trace
the function anew on every call, and the operators built on them (``grad``, ``jacobian``, ``hessian``,
``hessian_tensor_product``). Newton's method (``tasks.optimizers.Newton``) takes ``autograd.hessian`` of the
batch loss and solves with ``autograd.numpy.linalg.solve``."""

from __future__ import annotations

from typing import Any

import autograd.numpy as anp
import numpy as np
from autograd import grad, hessian, hessian_tensor_product, jacobian, make_jvp, make_vjp, value_and_grad

from backends._base import Backend
from tasks import operators
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
    operators = {"loss": "the task's model and loss in autograd.numpy", "jvp": "autograd.make_jvp",
                 "vjp": "autograd.make_vjp, its vjp of 1", "hvp-fwd-rev": "autograd.make_jvp of autograd.grad",
                 "hvp-rev-rev": "autograd.hessian_tensor_product (autograd.grad of autograd.grad's dot with v)",
                 "hessian": "autograd.hessian (autograd.jacobian of autograd.jacobian: reverse over reverse)",
                 "jacobian-fwd": "autograd.make_jvp of each column of the identity, stacked",
                 "jacobian-rev": "autograd.jacobian (a vjp a row)"}  # fmt: skip

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v) for k, v in task.init.items()}
        self.value_and_grad = value_and_grad(self.objective)
        self.newton = self.optimizer.name == "newton"
        self.updates = None if self.optimizer.plain or self.newton else Updates(self.optimizer, self.p)
        self.shapes = operators.shapes_of(self.p)

    def asarray(self, a: np.ndarray) -> np.ndarray:
        return np.array(a, dtype=self.dtype)

    def objective(self, p: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Any:
        return self.task.loss(self.task.model(p, x, self.xp), y, self.xp)

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> Any:
        if self.newton:
            return self.newton_step(x, y, lr)
        loss, grads = self.value_and_grad(self.p, x, y)
        if self.updates is not None:
            self.p = self.updates(self.p, grads, lr)
            return loss
        self.p = {k: v - lr * grads[k] for k, v in self.p.items()}
        return loss

    def newton_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> Any:
        """Damped Newton on the batch: the flat loss's gradient (``value_and_grad``) and Hessian
        (``autograd.hessian``), then (H + λI) d = g by ``autograd.numpy.linalg.solve``: numpy's LAPACK solve, as
        autograd wraps it (so that the step could itself be differentiated), the reference's to the bit."""
        f = operators.flat_loss(self.task, x, y, self.shapes, self.xp)
        theta = anp.concatenate([anp.ravel(v) for v in self.p.values()])
        loss, g = value_and_grad(f)(theta)
        h = hessian(f)(theta)
        if self.optimizer.damping:
            h = h + self.optimizer.damping * anp.eye(theta.size, dtype=theta.dtype)
        self.p = operators.unflatten(theta - lr * anp.linalg.solve(h, g), self.shapes, anp)
        return loss

    def loss(self, x: np.ndarray, y: np.ndarray) -> Any:
        return self.objective(self.p, x, y)

    def stack(self, losses: list[Any]) -> np.ndarray:
        return np.array(losses, dtype=self.dtype)

    def params(self) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in self.p.items()}

    def gradient(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(g) for k, g in self.value_and_grad(self.p, self.x, self.y)[1].items()}

    # -- beyond the gradient (tasks.operators): each call traces f anew, as autograd does every call -------------
    # Forward mode's tangent is promoted to float64 by max and maximum: autograd's rule for them divides by
    # ``1.0 + (x == y)`` (``balanced_eq``), a float64 array, so a float32 jvp comes back as float64.
    def jvp(self, f: Any, theta: np.ndarray, v: np.ndarray) -> Any:
        return make_jvp(f)(theta)(v)[1]

    def vjp(self, f: Any, theta: np.ndarray) -> Any:
        pullback, value = make_vjp(f)(theta)
        return pullback(np.ones_like(value))

    def hvp_fwd_rev(self, f: Any, theta: np.ndarray, v: np.ndarray) -> Any:
        return make_jvp(grad(f))(theta)(v)[1]

    def hvp_rev_rev(self, f: Any, theta: np.ndarray, v: np.ndarray) -> Any:
        return hessian_tensor_product(f)(theta, v)

    def hessian(self, f: Any, theta: np.ndarray) -> Any:
        return hessian(f)(theta)

    def jacobian_fwd(self, g: Any, theta: np.ndarray) -> Any:
        """autograd has no forward-mode Jacobian (its ``jacobian`` pulls back a row at a time): a jvp a column,
        each through ``make_jvp``'s function at θ, which traces g forward again for each tangent."""
        push = make_jvp(g)(theta)
        return anp.stack([push(e)[1] for e in np.eye(theta.size, dtype=theta.dtype)], axis=1)

    def jacobian_rev(self, g: Any, theta: np.ndarray) -> Any:
        return jacobian(g)(theta)
