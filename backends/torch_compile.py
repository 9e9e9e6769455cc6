"""torch.compile over the whole functional step: ``torch.func.grad_and_value`` and the update, one graph."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from backends.torch import Torch


class TorchCompile(Torch):
    name = "torch-compile"
    mode = "compiled"

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: v.detach() for k, v in self.p.items()}
        # Dynamo keeps its compiled graphs per code object, shared by every instance, and runs eagerly
        # past 8 of them: start each instance (a task and dtype) with a clean cache.
        torch._dynamo.reset()
        self.compiled = torch.compile(self.sgd_step)

    def sgd_step(self, p, x, y, lr):
        grads, loss = torch.func.grad_and_value(self.functional)(p, x, y)
        return {k: p[k] - lr * grads[k] for k in p}, loss

    def functional(self, p, x, y):
        return self.task.loss(self.task.model(p, x, self.xp), y, self.xp)

    def gradient(self) -> dict[str, np.ndarray]:
        grads = torch.compile(torch.func.grad(self.functional))(self.p, self.x, self.y)
        return {k: self.to_numpy(g) for k, g in grads.items()}

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        # a tensor learning rate: a Python float would be specialised on, one compilation per value
        self.p, loss = self.compiled(self.p, x, y, torch.tensor(lr, dtype=x.dtype, device=x.device))
        return loss

    @cached_property
    def compiled_loss(self):
        return torch.compile(self.functional)  # forward only: the parameters here hold no tape

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.compiled_loss(self.p, x, y)
