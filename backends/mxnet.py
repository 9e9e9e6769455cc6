"""MXNet autograd on NDArrays: ``autograd.record()``, ``backward()``, then ``param[:] = ...``."""

from __future__ import annotations

from typing import Any

import mxnet as mx
import numpy as np
from mxnet import autograd, nd

from backends._base import Backend


class ND:
    """The array namespace the tasks' models use, for NDArrays (MXNet 1.x calls matmul ``dot``)."""

    sum, mean, tanh, exp, log, matmul = nd.sum, nd.mean, nd.tanh, nd.exp, nd.log, nd.dot


class Mxnet(Backend):
    name = "mxnet"
    is_async = True

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v) for k, v in task.init.items()}
        for p in self.p.values():
            p.attach_grad()

    @property
    def ctx(self) -> mx.Context:
        return mx.gpu() if self.device == "cuda" else mx.cpu()

    def asarray(self, a: np.ndarray) -> nd.NDArray:
        return nd.array(a, dtype=self.dtype, ctx=self.ctx)

    def asindex(self, order: np.ndarray) -> nd.NDArray:
        return nd.array(order, dtype="int64", ctx=self.ctx)

    def take(self, a: nd.NDArray, order: nd.NDArray) -> nd.NDArray:
        return nd.take(a, order)

    def objective(self, x: nd.NDArray, y: nd.NDArray) -> nd.NDArray:
        return self.task.loss(self.task.model(self.p, x, ND), y, ND)

    def step(self, x: nd.NDArray, y: nd.NDArray, lr: float) -> nd.NDArray:
        with autograd.record():
            loss = self.objective(x, y)
        loss.backward()
        for p in self.p.values():
            p[:] = p - lr * p.grad
        return loss

    def stack(self, losses: list[nd.NDArray]) -> nd.NDArray:
        return nd.concat(*losses, dim=0)

    def to_numpy(self, a: nd.NDArray) -> np.ndarray:
        return a.asnumpy()

    def wait(self, out: Any) -> None:
        nd.waitall()

    def params(self) -> dict[str, np.ndarray]:
        return {k: v.asnumpy() for k, v in self.p.items()}

    def gradient(self) -> dict[str, np.ndarray]:
        with autograd.record():
            loss = self.objective(self.x, self.y)
        loss.backward()
        return {k: v.grad.asnumpy() for k, v in self.p.items()}
