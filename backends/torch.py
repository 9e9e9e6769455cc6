"""torch autograd: ``backward()``, then an in-place update under ``no_grad``."""

from __future__ import annotations

import numpy as np
import torch

from backends._base import Backend


class Torch(Backend):
    name = "torch"
    devices = ("cpu", "cuda")

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v).requires_grad_() for k, v in task.init.items()}

    def asarray(self, a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=getattr(torch, self.dtype), device=self.device)

    def asindex(self, order: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(order, device=self.device)

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.task.loss(self.task.model(self.p, x, torch), y, torch)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        loss = self.objective(x, y)
        loss.backward()
        with torch.no_grad():
            for p in self.p.values():
                p.add_(p.grad, alpha=-lr)
                p.grad = None
        return loss.detach()

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
        grads = torch.autograd.grad(self.objective(self.x, self.y), list(self.p.values()))
        return {k: self.to_numpy(g) for k, g in zip(self.p, grads, strict=True)}
