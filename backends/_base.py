"""What every backend adapter looks like.

A backend gets a task, a dtype and a device, converts the data and initial parameters into its
framework once (``__init__``), and then trains through the task's schedule in chunks of epochs:
``prepare`` converts a chunk of the schedule (untimed), ``run`` trains through it and returns the
per-step losses as a framework array (timed; may return before the work is done on async
frameworks), ``evaluate`` computes the same steps' losses at the current parameters without
training (the objective alone: no gradient, no update), ``wait`` blocks until either's work is done,
``to_numpy`` reads an array back. Eager backends only write ``step`` and ``loss``; a compiled backend
overrides ``run`` and ``evaluate`` as a whole.

Beyond the gradient (``tasks.operators``): ``operator(name, at)`` makes a call that computes one operator
(jvp, vjp, the two HVPs, the Hessian, the two Jacobians) of the task's loss or model as functions of the flat
parameter vector, its arrays converted once; each call computes it anew and returns a framework array. A
backend writes one method per operator it has (``jvp(f, theta, v)``, ``hvp_fwd_rev(f, theta, v)``, …, named
as the operator with ``_`` for ``-``) and names, in ``operators``, the framework call each is. What it cannot
do, an operator or an optimiser (``newton``), it names in ``lacks`` with the reason; asked for it, it raises
``Lacks``.

The task's optimiser (``tasks.optimizers``) is ``self.optimizer``. Plain SGD is each mode's own
update (``p - lr * g`` by hand, or the framework's SGD where the mode is its optimiser API); any other
is the framework's own optimiser, whose formula (``optimizer_formula``, one of
``tasks.formulas.FORMULAS``) says what the suite checks it against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from tasks import Task, formulas, operators, optimizers


class Lacks(NotImplementedError):
    """What a backend cannot do (an operator, an optimiser), and why: one line, from its ``lacks``."""


class Backend:
    name: ClassVar[str]
    mode: ClassVar[str] = "eager"  # or "compiled step", "compiled loop" (backends.MODES)
    is_async: ClassVar[bool] = False  # run() may return before its work is done
    has_autodiff: ClassVar[bool] = True  # False: uses the task's hand-derived gradient
    lr_dtype: ClassVar[str] = "float64"  # precision the optimiser holds the learning rate in
    optimizer_formula: ClassVar[str] = "reference"  # whose update the framework's optimisers compute
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    xp: ClassVar[Any]  # the array namespace the task's model and loss see: the whole of tasks.contract
    # operator (tasks.operators.OPERATORS) -> the framework's call that computes it, as its docs name it
    operators: ClassVar[dict[str, str]] = {}
    # what it cannot do -> why: an operator, or an optimiser by name (``newton``)
    lacks: ClassVar[dict[str, str]] = {}

    def __init__(self, task: Task, dtype: str = "float64", device: str = "cpu") -> None:
        self.task, self.dtype, self.device = task, dtype, device
        self.optimizer = optimizers.parse(task.optimizer)
        if self.optimizer.name in self.lacks:
            raise Lacks(f"{self.name} cannot train with {self.optimizer.name}: {self.lacks[self.optimizer.name]}")
        self.x, self.y = self.asarray(task.x), self.asarray(task.y)

    @property
    def formula(self) -> str:
        """The formula this run's updates follow: the framework's, where it differs from the reference's
        for the task's optimiser by definition (``tasks.formulas.differences``); else ``reference``."""
        return self.optimizer_formula if formulas.differences(self.optimizer_formula, self.optimizer) else "reference"

    @property
    def rate_dtype(self) -> str:
        """The precision numpy's learning rates are rounded to when numpy is held against this run: ``lr_dtype``
        where its updates follow the reference formula; float64 where they follow the framework's own formula
        (``formula``), which rounds its settings, the rate among them, where it does."""
        return self.lr_dtype if self.formula == "reference" else "float64"

    # -- what each framework provides -------------------------------------------------
    def asarray(self, a: np.ndarray) -> Any:
        raise NotImplementedError

    def take(self, a: Any, order: Any) -> Any:
        return a[order]

    def step(self, x: Any, y: Any, lr: float) -> Any:
        """One step of the task's optimiser on one batch; returns the batch loss before the update."""
        raise NotImplementedError

    def loss(self, x: Any, y: Any) -> Any:
        """The batch loss at the current parameters: forward only, no gradient and no update."""
        raise NotImplementedError

    def stack(self, losses: list[Any]) -> Any:
        raise NotImplementedError

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def wait(self, out: Any) -> None:
        """Block until ``out`` (what ``run`` returned) is computed."""

    def params(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def gradient(self) -> dict[str, np.ndarray]:
        """Gradient of the task's loss over the whole data set at the current parameters."""
        raise NotImplementedError

    def compile_seconds(self) -> float | None:
        """The seconds this process has spent tracing and compiling so far, by the framework's own tally;
        None where it keeps none. The first call's share of it is its compile time."""
        return None

    # -- the training loop, shared by the eager backends --------------------------------
    def prepare(self, lrs: np.ndarray, orders: list[np.ndarray | None]) -> Any:
        return [(float(lr), None if o is None else self.asindex(o)) for lr, o in zip(lrs, orders, strict=True)]

    def asindex(self, order: np.ndarray) -> Any:
        return order

    def run(self, chunk: Any) -> Any:
        return self.stack(self._steps(chunk, self.step))

    def evaluate(self, chunk: Any) -> Any:
        """The losses of the batches ``run(chunk)`` trains on, in its order, at the current parameters."""
        return self.stack(self._steps(chunk, lambda x, y, lr: self.loss(x, y)))

    def _steps(self, chunk: Any, fn: Callable[[Any, Any, float], Any]) -> list[Any]:
        """``fn(x, y, lr)`` on every batch of the chunk, in order; what it returned."""
        out, bs, full = [], self.task.batch, self.task.steps_per_epoch == 1
        for lr, order in chunk:  # an order may cover part of an epoch: its first batches (bench.worker.timer.Unit)
            x, y = (self.x, self.y) if order is None else (self.take(self.x, order), self.take(self.y, order))
            if full:
                out.append(fn(x, y, lr))
            else:
                out.extend(fn(x[i : i + bs], y[i : i + bs], lr) for i in range(0, x.shape[0], bs))
        return out

    # -- beyond the gradient: operators of the flat parameter vector (tasks.operators) ---------------
    def operator(self, name: str, at: operators.Point) -> Callable[[], Any]:
        """A call computing operator ``name`` at ``at``: θ, v and the data converted here, once; the task's loss
        (or, for a Jacobian, its model on the first batch) as a function of θ. A compiled mode wraps
        ``operator_function``'s result in its compiler."""
        fn, args = self.operator_function(name, at)
        return lambda: fn(*args)

    def operator_function(self, name: str, at: operators.Point) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """The function of (θ, v) or (θ,) that computes operator ``name``, and its arguments, converted."""
        if name in self.lacks:
            raise Lacks(f"{self.name} has no {name}: {self.lacks[name]}")
        if name not in operators.OPERATORS:
            raise KeyError(name)
        theta, v = self.asarray(at.theta), self.asarray(at.v)
        if name.startswith("jacobian"):
            f = operators.flat_model(self.task, self.asarray(at.batch), at.shapes, self.xp)
        else:
            f = operators.flat_loss(self.task, self.asarray(at.x), self.asarray(at.y), at.shapes, self.xp)
        if name == "loss":
            return f, (theta,)
        method = getattr(self, name.replace("-", "_"))
        if name in ("jvp", *operators.HVPS):
            return (lambda t, w: method(f, t, w)), (theta, v)
        return (lambda t: method(f, t)), (theta,)
