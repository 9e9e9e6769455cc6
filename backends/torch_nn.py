"""torch the way a training script does it: an ``nn.Module`` and ``torch.optim.SGD``."""

from __future__ import annotations

import torch

from backends.torch import Namespace, Torch


class Model(torch.nn.Module):
    """Holds the task's parameters and runs the task's own model function."""

    def __init__(self, task, params: dict[str, torch.Tensor], xp: Namespace) -> None:
        super().__init__()
        self.task, self.xp = task, xp
        self.p = torch.nn.ParameterDict({k: torch.nn.Parameter(v) for k, v in params.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.task.model(self.p, x, self.xp)


class TorchNN(Torch):
    name = "torch-nn"

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.net = Model(task, self.p, self.xp)
        self.p = dict(self.net.p.items())
        self.opt = torch.optim.SGD(self.net.parameters(), lr=task.lr(0))

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.task.loss(self.net(x), y, self.xp)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        self.opt.param_groups[0]["lr"] = lr
        self.opt.zero_grad()
        loss = self.objective(x, y)
        loss.backward()
        self.opt.step()
        return loss.detach()
