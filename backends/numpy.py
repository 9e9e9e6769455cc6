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

from backends._base import Backend
from tasks import formulas


class Numpy(Backend):
    name = "numpy"
    has_autodiff = False
    xp = np  # the reference the contract is checked against

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
