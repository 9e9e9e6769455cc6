"""mlp's network and data, trained by SGD with momentum and weight decay, the rate cut a fifth of the way
before the end: where frameworks keep the velocity in units of the rate (Keras, MXNet), the cut reaches
the step at once in the reference (PyTorch's definition) and through the velocity in theirs."""

from __future__ import annotations

import dataclasses

from tasks import SGD, Task, mlp


def rate(epoch: int) -> float:
    return 0.01 if epoch < 48 else 0.002


def make() -> Task:
    """Everything of mlp but its name, its rate and its optimiser."""
    return dataclasses.replace(
        mlp.make(),
        name="mlp-momentum",
        source="mlp (1-16-1 tanh network) with SGD, momentum 0.9 and weight decay 1e-4, the rate cut by 5 at epoch 48",
        lr=rate,
        optimizer=SGD(momentum=0.9, weight_decay=1e-4),
    )
