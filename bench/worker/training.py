"""Training in this process: a backend built for a task, trained, its gradient, its array contract."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

import backends
import tasks
from backends._base import Lacks
from bench.core import taskdata
from bench.core.cases import check_names, require
from bench.core.errors import BenchError, Diverged, Failed, Unavailable, Unsupported, UsageError
from bench.core.records import Nested, TrainingRun, as_lists
from bench.host import envs
from bench.worker import handwritten
from tasks import formulas, optimizers

CHUNK_STEPS = 1000  # train in chunks of about this many steps; divergence is checked between chunks


def make_task(
    name: str, lr: float | None = None, epochs: int | None = None, n: int | None = None, optimizer: Any = None
) -> tasks.Task:
    """The task as the main process made it (bench.core.taskdata), with the run's learning rate, epochs and
    optimiser (a ``tasks.optimizers`` spec, in place of the task's own)."""
    try:
        task = taskdata.made(name, n)
    except taskdata.DataDiffer as e:
        raise BenchError(str(e)) from None
    if lr is not None:
        task = dataclasses.replace(task, lr=lambda epoch: lr)
    if epochs is not None:
        task = dataclasses.replace(task, epochs=min(epochs, task.epochs))
    if optimizer is not None:
        task = dataclasses.replace(task, optimizer=optimizer)
    return task


def build(
    task: str,
    backend: str,
    dtype: str = "float64",
    device: str = "cpu",
    lr: float | None = None,
    epochs: int | None = None,
    n: int | None = None,
    optimizer: Any = None,
    formula: str | None = None,
    trains: bool = True,
) -> backends._base.Backend:
    """A backend instance for the task, in this process: its framework must be importable here.
    ``formula`` (numpy only) is a framework's optimiser formula to follow (tasks.formulas). An instance
    that ``trains`` needs an optimiser that can be trained with (``tasks.optimizers.problems``); one for
    the gradient alone does not."""
    check_names(task, backend, dtype)
    if formula is not None and (backend != "numpy" or formula not in formulas.FORMULAS):
        raise UsageError(f"formula {formula!r}: numpy follows one of {', '.join(formulas.FORMULAS)}; no other backend")
    spec = backends.BACKENDS[backend]
    reason = envs.missing(spec.framework, envs.current())
    if reason:
        raise Unavailable(f"{backend}: {reason}")
    cls = backends.load(backend)
    if device not in cls.devices:
        raise Unavailable(f"{backend} runs on {', '.join(cls.devices)} only, not {device}")
    try:
        made = make_task(task, lr, epochs, n, optimizer)
    except ImportError as e:  # a task whose data need a package this environment lacks (digits: sklearn)
        raise Unavailable(f"task {task} cannot be made in the {envs.current()} environment: {e}") from e
    bad = optimizers.problems(made.optimizer)
    if bad and trains:
        raise UsageError(f"task {task}: {bad[0]}")
    if bad or (not trains and optimizers.parse(made.optimizer).name in cls.lacks):  # one it cannot train with
        made = dataclasses.replace(made, optimizer=optimizers.SGD())  # the gradient is the optimiser's business
    try:
        return cls(made, dtype, device) if formula is None else cls(made, dtype, device, formula=formula)
    except Lacks as e:
        raise Unsupported(str(e)) from None


def train_here(
    task: str,
    backend: str,
    dtype: str = "float64",
    device: str = "cpu",
    lr: float | None = None,
    epochs: int | None = None,
    lr_dtype: str | None = None,
    checkpoints: tuple[int, ...] = (),
    optimizer: Any = None,
    formula: str | None = None,
    n: int | None = None,
) -> TrainingRun:
    """Train in this process. ``lr_dtype`` rounds the learning rates first (to match another backend's);
    ``checkpoints`` names epochs after which to record the parameters; ``optimizer`` replaces the task's
    (a ``tasks.optimizers`` spec); ``formula`` has numpy follow a framework's optimiser (tasks.formulas);
    ``n``, the task's size where it takes one (quadratic's sweep)."""
    b = build(task, backend, dtype, device, lr, epochs, n, optimizer=optimizer, formula=formula)
    t = b.task
    lrs = t.lrs().astype(lr_dtype or "float64").astype("float64")
    orders = t.orders()
    chunk = -(-CHUNK_STEPS // t.steps_per_epoch)
    ends = sorted({*range(chunk, t.epochs, chunk), *(c for c in checkpoints if c < t.epochs), t.epochs})
    losses: list[np.ndarray] = []
    saved: dict[str, dict[str, Nested]] = {}
    done, start = 0, 0
    for end in ends:
        out = b.to_numpy(b.run(b.prepare(lrs[start:end], orders[start:end]))).astype("float64").ravel()
        bad = np.flatnonzero(~np.isfinite(out))
        if bad.size:
            raise Diverged(done + int(bad[0]) + 1)
        losses.append(out)
        done, start = done + out.size, end
        if end in checkpoints:
            saved[str(end)] = as_lists(b.params(), t.init)
    return TrainingRun(
        task,
        backend,
        dtype,
        as_lists(b.params(), t.init),
        np.concatenate(losses).tolist(),
        lr_dtype=lr_dtype or b.rate_dtype,
        formula=b.formula,
        optimizer=optimizers.to_json(b.optimizer),
        digest=taskdata.digest(t),
        checkpoints=saved,
    )


def gradient_here(task: str, backend: str, dtype: str = "float64", device: str = "cpu") -> dict[str, Nested]:
    """The backend's gradient of the task's loss over all the data at the initial parameters."""
    b = build(task, backend, dtype, device, trains=False)
    return as_lists(b.gradient(), b.task.init)


def evaluate_here(
    task: str, backend: str, dtype: str = "float64", device: str = "cpu", epochs: int | None = None
) -> dict[str, Any]:
    """The backend's ``evaluate`` through the first ``epochs`` of the schedule at the initial parameters:
    its losses, and its parameters before and after."""
    b = build(task, backend, dtype, device, epochs=epochs, trains=False)  # evaluate needs no optimiser
    before = as_lists(b.params(), b.task.init)
    out = b.evaluate(b.prepare(b.task.lrs(), b.task.orders()))
    b.wait(out)
    losses = b.to_numpy(out).astype("float64").ravel().tolist()
    return {"losses": losses, "before": before, "after": as_lists(b.params(), b.task.init)}


def handwritten_here(
    task: str, backend: str, dtype: str = "float64", device: str = "cpu", steps: int = 50
) -> dict[str, Nested]:
    """The parameters after ``steps`` steps of the framework's hand-written loop (bench.worker.handwritten)."""
    check_names(task, backend, dtype)
    made = make_task(task)
    loop = handwritten.make(backend, made, dtype, device)
    loop.run(steps)
    return as_lists(loop.params(), made.init)


def contract_here(backend: str, dtype: str = "float64") -> dict[str, Any]:
    """Every example of the array contract (tasks.contract) evaluated by the backend, value and gradient,
    all in one task; where that fails, each example alone, so that a failure names its example."""
    from tasks import contract

    require("backend", backend, backends.BACKENDS)
    reason = envs.missing(backends.BACKENDS[backend].framework, envs.current())
    if reason:
        raise Unavailable(f"{backend}: {reason}")
    cls = backends.load(backend)
    shapes: dict[int, tuple[int, ...]] = {}
    try:
        return contract.split(cls(contract.task(None, shapes), dtype).gradient(), shapes)
    except Exception:  # any framework's error: found again below, example by example
        out: dict[str, Any] = {}
    for e in contract.EXAMPLES:
        try:
            out |= contract.split(cls(contract.task([e], shapes), dtype).gradient(), shapes, [e])
        except Exception as err:  # reported as that example's outcome
            out[e.code] = {"error": str(Failed.of(err))}
    return out
