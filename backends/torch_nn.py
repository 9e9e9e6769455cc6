"""torch the way a training script does it: an ``nn.Module`` and ``torch.optim`` (SGD, or the task's
optimiser: SGD with momentum, Adam, AdamW)."""

from __future__ import annotations

import torch

from backends.torch import Namespace, Torch, torch_optimizer


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
        self.opt = torch_optimizer(self.optimizer, list(self.net.parameters()), task.lr(0))  # plain: SGD(lr=...)

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.task.loss(self.net(x), y, self.xp)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        return self.optimizer_step(x, y, lr)
