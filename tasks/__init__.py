"""Training tasks, each defined once and run unchanged by every backend.

A task is plain numpy: data, initial parameters, a model and a loss written against an array
namespace ``xp``, an SGD schedule, and a hand-derived gradient that the numpy reference backend uses.
Importing this package imports no framework.

What a model and a loss may use is the array contract, written down in ``tasks.contract`` (names of
the Python Array API standard) and checked on every backend by tests/test_contract.py:

- operators ``+ - * / ** @``, unary ``-``, ``< <= > >=`` (conditions for ``where``), ``.T``, indexing
  and slicing with integers and slices;
- ``sum``, ``mean``, ``max``, ``min`` (``axis``, ``keepdims``), ``exp``, ``log``, ``log1p``, ``tanh``,
  ``sin``, ``cos``, ``sqrt``, ``square``, ``abs``, ``maximum``, ``minimum``, ``where``, ``reshape``,
  ``matmul``; Python scalars anywhere an operand may be.

Left out (see ``tasks.contract`` for why): what has no derivative (argmax, sorting, ``==``), creating
arrays and in-place writes, advanced indexing, batched matmul, 0-d arrays.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Params = Mapping[str, Any]

# registry key -> module; the module defines ``make() -> Task``
TASKS: dict[str, str] = {
    "quadratic": "tasks.quadratic",
    "linear": "tasks.linear",
    "parabola": "tasks.parabola",
    "parabola-sgd": "tasks.parabola_sgd",
    "plane": "tasks.plane",
    "logistic": "tasks.logistic",
    "mlp": "tasks.mlp",
    "digits": "tasks.digits",
}


@dataclass(frozen=True, eq=False)
class Task:
    """One training problem. Arrays are float64; backends cast to the run's dtype.

    Parameters have any shape of at least one dimension (a scalar parameter has shape (1,)), so that
    frameworks without 0-d arrays (MXNet's NDArray) hold them too. ``x`` and ``y`` have one sample per
    row and any shape after it (vectors, matrices, one-hot labels); batches are rows. ``model`` and
    ``loss`` use only the array contract (``tasks.contract``) on ``xp`` and on the arrays they get.
    """

    name: str
    source: str  # the tutorial the task comes from
    x: np.ndarray
    y: np.ndarray
    init: dict[str, np.ndarray]
    model: Callable[[Params, Any, Any], Any]  # (params, x, xp) -> prediction
    loss: Callable[[Any, Any, Any], Any]  # (prediction, y, xp) -> scalar
    loss_and_grad: Callable[[Params, np.ndarray, np.ndarray], tuple[Any, dict[str, np.ndarray]]]
    lr: Callable[[int], float]  # learning rate of an epoch (0-based)
    epochs: int
    batch_size: int | None = None  # None: the whole data set each step
    shuffle_seed: int | None = None  # None: batches in data order
    expected: dict[str, Any] = field(default_factory=dict)  # where training must end
    expected_tol: float = 0.0  # absolute, in float64
    float32_tol: float | None = None  # for float32 runs against the reference, where 1e-4 is too tight
    metrics: Callable[[Params], dict[str, float]] | None = None  # figures of trained parameters, in numpy
    metric_floors: dict[str, float] = field(default_factory=dict)  # the least each metric must reach

    def __post_init__(self) -> None:
        if len(self.x) % self.batch:
            raise ValueError(f"{self.name}: batch size {self.batch} does not divide {len(self.x)}")

    @property
    def batch(self) -> int:
        return self.batch_size or len(self.x)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.x) // self.batch

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def lrs(self) -> np.ndarray:
        return np.array([self.lr(e) for e in range(self.epochs)])

    def orders(self) -> list[np.ndarray | None]:
        """The sample order of every epoch: None for data order, else a seeded permutation."""
        if self.shuffle_seed is None:
            return [None] * self.epochs
        rng = np.random.default_rng(self.shuffle_seed)
        return [rng.permutation(len(self.x)) for _ in range(self.epochs)]

    def full_loss(self, params: Params) -> float:
        """The loss on the whole data set, in numpy float64."""
        return float(self.loss(self.model(params, self.x, np), self.y, np))


def get(name: str, **options: Any) -> Task:
    """The task of that name; options go to its ``make`` (quadratic takes ``n``, its number of points)."""
    if name not in TASKS:
        raise KeyError(name)
    return importlib.import_module(TASKS[name]).make(**options)
