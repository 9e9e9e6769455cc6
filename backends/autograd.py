"""HIPS autograd: ``value_and_grad`` over the task's model and loss, with ``autograd.numpy`` as the
array namespace: reverse mode over plain numpy code."""

from __future__ import annotations

from typing import Any

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad

from backends._base import Backend


class Autograd(Backend):
    name = "autograd"
    xp = anp  # numpy, wrapped so that autograd records each call: the whole contract

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v) for k, v in task.init.items()}
        self.value_and_grad = value_and_grad(self.objective)

    def asarray(self, a: np.ndarray) -> np.ndarray:
        return np.array(a, dtype=self.dtype)

    def objective(self, p: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Any:
        return self.task.loss(self.task.model(p, x, self.xp), y, self.xp)

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> Any:
        loss, grads = self.value_and_grad(self.p, x, y)
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
