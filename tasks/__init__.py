"""Training tasks, each defined once and run unchanged by every backend.

A task is plain numpy: data, initial parameters, a model and a loss written against an array
namespace ``xp``, a learning-rate schedule and an optimiser (``tasks.optimizers``: plain SGD unless it
names another), and a hand-derived gradient that the numpy reference backend uses.
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

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from tasks.optimizers import SGD, Adam, AdamW, Spec, parse

# a task file picks its optimiser with ``from tasks import Task, Adam``
__all__ = ["SGD", "Adam", "AdamW", "FILE_MODULE", "NAME", "Params", "TASKS", "USER_TASKS", "Task", "add", "get",
           "load_module"]  # fmt: skip

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
    "mlp-momentum": "tasks.mlp_momentum",
    "digits-adamw": "tasks.digits_adamw",
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
    orders_made: tuple[np.ndarray, ...] | None = None  # the batch orders, where another process made them
    # SGD(...), Adam(...), AdamW(...) (tasks.optimizers), a name ("adam") or {"name": "adam", "b2": 0.99};
    # the learning rate is ``lr``'s. One that does not parse is kept as given, for ``bench check`` to name.
    optimizer: Spec = SGD()

    def __post_init__(self) -> None:
        if len(self.x) % self.batch:
            raise ValueError(f"{self.name}: batch size {self.batch} does not divide {len(self.x)}")
        try:
            object.__setattr__(self, "optimizer", parse(self.optimizer))
        except ValueError:
            pass

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
        if self.orders_made is not None:
            return list(self.orders_made[: self.epochs])
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
    return load_module(TASKS[name]).make(**options)


# A user's own tasks, added by ``add``: this variable carries them to every child process (workers).
USER_TASKS = "AUTODIFF_BENCH_TASKS"
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
FILE_MODULE = "autodiff_bench_task_"  # the prefix of the module names task files are loaded under


def load_module(target: str) -> ModuleType:
    """A task module: ``package.module``, or a file ending in ``.py`` (loaded once, under a name of its path)."""
    if not target.endswith(".py"):
        return importlib.import_module(target)
    path = Path(target).resolve()
    stem, tag = re.sub(r"\W", "_", path.stem), hashlib.sha256(str(path).encode()).hexdigest()[:8]
    name = f"{FILE_MODULE}{stem}_{tag}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"{target} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def add(target: str) -> str:
    """Register a user's task: a file ``path/to/task.py`` or a module ``package.module`` that defines
    ``make() -> Task``. Returns the task's name, which then names it everywhere (results, test ids)."""
    target = str(Path(target).resolve()) if target.endswith(".py") else target
    if target.endswith(".py") and not Path(target).is_file():
        raise ValueError(f"{target}: no such file")
    make = getattr(load_module(target), "make", None)
    if not callable(make):
        raise ValueError(f"{target} defines no make() -> Task")
    task = make()
    if not isinstance(task, Task):
        raise ValueError(f"{target}: make() returned {type(task).__name__}, not a Task")
    if not NAME.fullmatch(task.name):
        raise ValueError(f"{target}: the task name {task.name!r} is not letters, digits, '_', '.', '+' or '-'")
    if TASKS.get(task.name, target) != target:
        raise ValueError(f"{target}: the name {task.name!r} is taken by {TASKS[task.name]}")
    TASKS[task.name] = target
    users = dict(entry.split("=", 1) for entry in filter(None, os.environ.get(USER_TASKS, "").split(os.pathsep)))
    os.environ[USER_TASKS] = os.pathsep.join(f"{k}={v}" for k, v in {**users, task.name: target}.items())
    return task.name


TASKS.update(entry.split("=", 1) for entry in filter(None, os.environ.get(USER_TASKS, "").split(os.pathsep)))
