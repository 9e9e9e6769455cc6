"""The reference: plain numpy with the task's hand-derived gradient.

It is the yardstick the other backends are divided by, so its step costs little more than a numpy
user's: a parameter of one element, whose gradient is an array of its dtype, is updated as a numpy
scalar of its dtype (``a[0] = a[0] - lr * g[0]``: scalar arithmetic, where ``a -= lr * g`` on a (1,)
array is two ufunc calls, several times dearer). The arithmetic is that of ``a -= lr * g``, to the
bit: the learning rate rounded to the dtype, a product and a difference in the dtype. The task's
gradient gets the parameters in their own shapes, as the task defines them.

Any other optimiser is ``tasks.optimizers``' reference update, written from its published definition;
or, given ``formula``, the update of a framework that differs from it (``tasks.formulas``), to check
that framework against its own formula.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends._base import Backend, Lacks
from tasks import formulas, operators


class Numpy(Backend):
    name = "numpy"
    has_autodiff = False
    xp = np  # the reference the contract is checked against
    # no autodiff: each operator is the task's own formula (where the task has it), in the run's dtype
    operators = {"loss": "the task's model and loss", "jvp": "∇L·v, ∇L by the task's loss_and_grad",
                 "vjp": "the task's loss_and_grad", "hvp-fwd-rev": "the task's hvp, else its hessian times v",
                 "hvp-rev-rev": "the task's hvp, else its hessian times v", "hessian": "the task's hessian",
                 "jacobian-fwd": "the task's jacobian", "jacobian-rev": "the task's jacobian"}  # fmt: skip

    def __init__(self, task, dtype="float64", device="cpu", formula="reference"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v) for k, v in task.init.items()}
        self.loss_and_grad = task.loss_and_grad
        self.chosen = formula if formulas.differences(formula, self.optimizer) else "reference"
        self.rule = None if self.optimizer.plain else formulas.rule(self.chosen, self.optimizer, self.p)
        # per parameter: the array, updated in place, and the index of its one element (None: the whole array)
        self.updates = [(k, a, (0,) * a.ndim if a.size == 1 else None, a.dtype) for k, a in self.p.items()]

    def asarray(self, a: np.ndarray) -> np.ndarray:
        return np.array(a, dtype=self.dtype)

    def prepare(self, lrs: np.ndarray, orders: list[np.ndarray | None]) -> Any:
        # each learning rate as a Python float (for ``a -= lr * g``) and as a scalar of the dtype (for a
        # one-element parameter: the float rounded as ``lr * g`` rounds it, under NEP 50 and numpy 1's
        # value-based casting alike, where numpy 1 would take float32 · Python float to float64)
        scalar = np.dtype(self.dtype).type
        orders = [None if o is None else self.asindex(o) for o in orders]
        return [((float(lr), scalar(lr)), o) for lr, o in zip(lrs, orders, strict=True)]

    @property
    def formula(self) -> str:
        return self.chosen

    def step(self, x: np.ndarray, y: np.ndarray, lr: Any) -> Any:
        rate, scalar = lr
        loss, grads = self.loss_and_grad(self.p, x, y)
        if self.optimizer.name == "newton":  # the task's own Hessian of the batch's loss
            self.rule.update(self.p, grads, rate, np.asarray(self.task.hessian(self.p, x, y), dtype=self.dtype))
            return loss
        if self.rule is not None:
            self.rule.update(self.p, {k: np.asarray(grads[k], dtype=a.dtype) for k, a in self.p.items()}, rate)
            return loss
        for k, a, i, dtype in self.updates:
            g = grads[k]
            if i is not None:
                try:
                    if g.dtype is dtype:  # an array of the parameter's shape, as the contract has it
                        a[i] = a[i] - scalar * g[i]
                        continue
                except (AttributeError, IndexError):  # a gradient given as a Python float, a scalar, a 0-d array
                    pass
            a -= rate * g
        return loss

    def loss(self, x: np.ndarray, y: np.ndarray) -> Any:
        return self.task.loss(self.task.model(self.p, x, np), y, np)

    def _steps(self, chunk: Any, fn: Any) -> list[Any]:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported, not warned about
            return super()._steps(chunk, fn)

    def stack(self, losses: list[Any]) -> np.ndarray:
        return np.array(losses, dtype=self.dtype)

    def params(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.p.items()}

    def gradient(self) -> dict[str, np.ndarray]:
        return self.loss_and_grad(self.p, self.x, self.y)[1]

    def operator_function(self, name: str, at: operators.Point) -> tuple[Any, tuple[Any, ...]]:
        """The task's own formulas (numpy has no autodiff): its gradient for jvp and vjp, its ``hvp`` for the HVPs
        (else its ``hessian`` times v), its ``hessian`` for the Hessian, its ``jacobian`` for the Jacobians; a task
        without one lacks those operators here."""
        if name not in operators.OPERATORS:
            raise KeyError(name)
        task, shapes = self.task, at.shapes
        x, y, batch = self.asarray(at.x), self.asarray(at.y), self.asarray(at.batch)

        def params(theta: np.ndarray) -> dict[str, np.ndarray]:
            return operators.unflatten(theta, shapes, np)

        def grad(theta: np.ndarray) -> np.ndarray:
            return operators.flatten(task.loss_and_grad(params(theta), x, y)[1], shapes, self.dtype)

        needs = "hessian" if name == "hessian" else "jacobian" if "jacobian" in name else None
        if name in operators.HVPS and task.hvp is None:
            needs = "hessian"
        if needs and getattr(task, needs) is None:
            what = "hvp or hessian" if name in operators.HVPS else needs
            raise Lacks(f"numpy has no {name}: the task defines no {what} by hand, and numpy has no autodiff")

        def hvp(theta: np.ndarray, v: np.ndarray) -> np.ndarray:
            if task.hvp is None:
                return np.asarray(task.hessian(params(theta), x, y), dtype=self.dtype) @ v
            return operators.flatten(task.hvp(params(theta), x, y, params(v)), shapes, self.dtype)

        fns = {
            "loss": lambda t: task.loss(task.model(params(t), x, np), y, np),
            "jvp": lambda t, v: grad(t) @ v,
            "vjp": grad,
            "hvp-fwd-rev": hvp,
            "hessian": lambda t: np.asarray(task.hessian(params(t), x, y), dtype=self.dtype),
            "jacobian-fwd": lambda t: np.asarray(task.jacobian(params(t), batch), dtype=self.dtype),
        }
        fns["hvp-rev-rev"], fns["jacobian-rev"] = fns["hvp-fwd-rev"], fns["jacobian-fwd"]
        theta, v = self.asarray(at.theta), self.asarray(at.v)
        return fns[name], ((theta, v) if name in ("jvp", *operators.HVPS) else (theta,))
