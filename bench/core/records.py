"""What a training run reports: the typed record that crosses from a worker to its caller."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

Nested = list[Any]  # an array as nested lists (ndarray.tolist())


@dataclass
class TrainingRun:
    task: str
    backend: str
    dtype: str
    params: dict[str, Nested]  # each parameter in its own shape
    losses: list[float]
    lr_dtype: str = "float64"  # the precision the backend's optimiser used for the learning rate
    formula: str = "reference"  # whose update it followed (tasks.formulas): the reference, or its framework's
    optimizer: Any = None  # the optimiser it trained with, as tasks.optimizers.to_json writes it
    digest: str = ""  # of the task's data as the backend's environment made it
    checkpoints: dict[str, dict[str, Nested]] = dataclasses.field(default_factory=dict)  # epoch -> params

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def as_lists(arrays: dict[str, Any], order: dict[str, Any]) -> dict[str, Nested]:
    """Plain float64 nested lists of each array's shape (``np.array(lists)`` gives it back), in the task's
    order of parameters: [w] for a (1,) parameter, [[...], ...] for a matrix."""
    return {k: np.asarray(arrays[k], dtype="float64").tolist() for k in order}
