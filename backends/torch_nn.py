"""torch the way a training script does it: an ``nn.Module`` and ``torch.optim`` (SGD, or the task's
optimiser: SGD with momentum, Adam, AdamW).

Beyond the gradient, torch's operators (torch.func) of the module: ``torch.func.functional_call`` runs the
module with its parameters replaced by slices of the flat θ, the way torch.func's docs differentiate a module's
parameters (its ``functional_call`` example takes ``grad`` of a loss of the module). Newton's method, which
``torch.optim`` has not (its ``LBFGS`` is quasi-Newton: an approximate inverse Hessian from past gradients), is
the same: ``torch.func.hessian`` of the module's loss, ``torch.linalg.solve``, and the update in place of the
module's parameters under ``no_grad``, as a ``torch.optim`` step updates them."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch

from backends.torch import Namespace, Torch, torch_optimizer
from tasks import Params, operators


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
    operators = {"loss": "torch.func.functional_call of the module, and the task's loss",
                 **{k: f"{v}, of torch.func.functional_call of the module" for k, v in Torch.operators.items()
                    if k != "loss"}}  # fmt: skip

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.net = Model(task, self.p, self.xp)
        self.p = dict(self.net.p.items())
        if self.optimizer.name != "newton":
            self.opt = torch_optimizer(self.optimizer, list(self.net.parameters()), task.lr(0))  # plain: SGD(lr=...)
        self.flat_task = dataclasses.replace(task, model=self.functional_model)

    def functional_model(self, p: Params, x: torch.Tensor, xp: Any) -> torch.Tensor:
        """The module's forward with parameters ``p`` (the task's names) in place of its own."""
        return torch.func.functional_call(self.net, {f"p.{k}": v for k, v in p.items()}, (x,))

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.task.loss(self.net(x), y, self.xp)

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        return self.newton_step(x, y, lr) if self.optimizer.name == "newton" else self.optimizer_step(x, y, lr)

    def operator_function(self, name: str, at: operators.Point) -> tuple[Any, tuple[Any, ...]]:
        """torch's, of the task with the module's forward (``functional_call``) as its model."""
        through = copy.copy(self)
        through.task = self.flat_task
        return Torch.operator_function(through, name, at)
