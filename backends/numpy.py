"""The reference: plain numpy with the task's hand-derived gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends._base import Backend


class Numpy(Backend):
    name = "numpy"
    has_autodiff = False
    xp = np  # the reference the contract is checked against

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v) for k, v in task.init.items()}

    def asarray(self, a: np.ndarray) -> np.ndarray:
        return np.array(a, dtype=self.dtype)

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> Any:
        loss, grads = self.task.loss_and_grad(self.p, x, y)
        for k, g in grads.items():
            self.p[k] -= lr * g
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
        return self.task.loss_and_grad(self.p, self.x, self.y)[1]
