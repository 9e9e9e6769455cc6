"""What is timed or counted: a case (a task on a backend in a dtype), and how a campaign times it."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

import backends
import tasks
from bench.core.errors import UsageError
from bench.host import procs

DTYPES = ("float64", "float32")


def require(kind: str, value: str, valid: Collection[str]) -> None:
    if value not in valid:
        raise UsageError(f"unknown {kind} {value!r}; choose from: {', '.join(valid)}")


def check_names(task: str, backend: str, dtype: str = "float64") -> None:
    require("task", task, tasks.TASKS)
    require("backend", backend, backends.BACKENDS)
    require("dtype", dtype, DTYPES)


# The kinds of case: a task's own ("speed"), the quadratic sweep's at N points ("scaling"), the width sweep's,
# wide-mlp at a hidden width n ("width"), and one operator beyond the gradient of a task (tasks.operators), or of
# wide-mlp at a hidden width n ("operator")
SPEED, SCALING, WIDTH, OPERATOR = "speed", "scaling", "width", "operator"
KINDS = (SPEED, SCALING, WIDTH, OPERATOR)


@dataclass(frozen=True)
class Case:
    """One timing: a task on a backend in a dtype, the quadratic sweep at ``n`` points, the width sweep's task
    at hidden width ``n``, or an ``operator`` (tasks.operators.OPERATORS) of a task (of wide-mlp at width ``n``)."""

    kind: str  # one of KINDS
    task: str
    backend: str
    dtype: str
    n: int | None = None
    operator: str | None = None  # an operator case's operator; None for every other kind

    @property
    def params(self) -> str:
        """The pytest id's parameters, which also name the case in the results: ``quadratic-100-numpy-float64``,
        ``logistic-hvp-fwd-rev-jax-jit-float64``, ``wide-mlp-256-jvp-torch-float64``."""
        parts = (self.task, self.n, self.operator, self.backend, self.dtype)
        return "-".join(str(p) for p in parts if p is not None)


ROUND_TIME = 0.6  # seconds of rounds per case per process (docs/fair-timing.md, "Rounds in visits")
VISITS = 4  # a process times its cases in turn this many times, a quarter of ROUND_TIME each (same place)
# The seconds remeasuring may take in a default run, by what the run's processes took (start-up, building,
# rounds): the noisiest cases are timed again within it (docs/fair-timing.md)
REMEASURE_SECONDS = 30.0
# The work a --timeout is for: the builds of one process of a default run (a case built to time it, or to train it
# for the correctness columns; a compiling backend compiles at each), by Settings.quick: --quick's 6, room for a few
# tasks or sweep points beside its own task's 2 builds (digits, timed and trained); a default run's 16 timed
# (ten tasks, the sweep at 10⁴ and 10⁶: at 10² it is quadratic's own case; the width sweep's four widths) and 14
# trained in its last round. A process given more builds (a user's own tasks) may take as much longer
# (``time_limit``).
BUILDS = {True: 6, False: 30}
# The width sweep's cells (wide-mlp at width n: a step of 0.1 to 50 ms, the more of it matrix products the wider;
# at its own width, where the run times the task too, the task's case serves: ``twins``) are timed on less than a
# task case (docs/fair-timing.md, "The width sweep"): an eighth of its seconds of rounds (WIDTH_ROUNDS × ROUND_TIME,
# in VISITS visits, at least a round each), rounds of about WIDTH_UNIT seconds (a task's: bench.worker.timer's 0.05)
# and of at most WIDTH_FLOPS floating-point operations (but a step at least), in two of the R processes, the first
# (which compiles cold) and the last (``rounds_of``). Its agreement with numpy is checked in its last process, on
# the first call of its slice (``bench.worker.timer.agreement``), not by training it again (a second compile).
WIDTH_ROUNDS = 0.125
WIDTH_UNIT = 0.0125
WIDTH_FLOPS = 5 * 10**8
# An operator case is timed as a width cell is (docs/operators.md, "Timing the operators"): an eighth of a task
# case's seconds of rounds, in the first and last of its R processes (``rounds_of``), a round calling the operator
# about WIDTH_UNIT seconds' worth of times (once at least) and then the loss as many seconds' worth; its value is held
# against the hand-derived one in its last process, on its first call (``bench.worker.operator_timer``).


@dataclass(frozen=True)
class Settings:
    repeats: int = 3  # timing processes per backend
    threads: int = 1
    device: str = "cpu"
    quick: bool = False
    timeout: float = 600.0  # seconds one process may take
    native_blas: bool = False  # the main environment's workers without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
    workers: int = 1  # timing workers at a time, each pinned to CPUs of its own (--jobs)
    remeasure_s: float = REMEASURE_SECONDS  # what remeasuring the noisiest cases may take (``within``)

    @property
    def measure_arguments(self) -> dict[str, Any]:
        """What each ``measure`` call is asked: a round's steps at least, the seconds of rounds to aim for
        in one visit of a case, the fewest rounds a visit, and the visits of each case in one process."""
        if self.quick:
            return {"steps": 10, "round_time": 0.0, "min_rounds": 1, "visits": 1}
        return {"steps": 100, "round_time": ROUND_TIME / VISITS, "min_rounds": 1, "visits": VISITS}

    @property
    def jobs(self) -> int:
        return jobs(self.quick, self.workers)

    @property
    def builders(self) -> int:
        """Timing processes that build their cases at once, ahead of their rounds (``Turns``): one a CPU,
        where one worker times at a time on a machine of several; none otherwise (each builds, then times)."""
        return procs.cpus() if self.jobs == 1 and not self.quick and procs.cpus() > 1 else 0

    @property
    def trains_where_timed(self) -> bool:
        """Whether a backend's last timing process, once it has timed its cases, trains them for the correctness
        columns (a process start-up and its imports saved per backend; the training builds its own): where
        nothing is timed beside the training (one worker at a time: a round trains once every process of it
        has timed, ``Turns.train``; --quick, whose timings are not to be read). Else (``--jobs N``) a process
        of its own does, after every timing, which times nothing (``Campaign.correctness``)."""
        return self.quick or self.jobs == 1

    @property
    def calls(self) -> int:
        """The ``measure`` calls a case gets: each of its visits in each of its processes."""
        return self.repeats * self.measure_arguments["visits"]

    @property
    def budget(self) -> float:
        """Seconds of training for the correctness columns, beyond which a case trains fewer epochs."""
        return 0.5 if self.quick else 1.0


def time_limit(settings: Settings, builds: int) -> float:
    """Seconds one process of ``builds`` builds may take: ``settings.timeout`` for as many as a default run
    gives one (BUILDS), in proportion beyond."""
    return settings.timeout * max(1.0, builds / BUILDS[settings.quick])


def jobs(quick: bool, workers: int = 1) -> int:
    """Workers at a time: ``workers``, each on pinned CPUs of its own, for timings a reader reads; a --quick
    run, whose timings are not to be read, runs one per CPU, unpinned."""
    return procs.cpus() if quick else workers


def rounds_of(c: Case, repeats: int) -> list[int]:
    """The rounds of processes (0-based, of ``repeats``) that time a case: all of them; a width case and an operator
    case the first and the last alone."""
    return sorted({0, repeats - 1}) if c.kind in (WIDTH, OPERATOR) else list(range(repeats))


@functools.cache
def parameters(task: str, n: int | None = None) -> int:
    """The entries of the task's θ (its parameters flattened: tasks.operators.flatten), at width ``n`` where given."""
    made = tasks.get(task) if n is None else tasks.get(task, n=n)
    return int(sum(np.size(v) for v in made.init.values()))


@functools.cache
def flops(task: str, n: int | None = None) -> int | None:
    """A training step's floating-point operations, as the task counts them from its shapes (``Task.flops``);
    None where it does not."""
    return tasks.get(task).flops if n is None else tasks.get(task, n=n).flops


def rows_of(cases: list[Case], found: dict[Case, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per case asked for, in their order: what names it (and a quadratic sweep case's bytes a step: x
    and y read once; a width case's floating-point operations a step; an operator case's operator and the entries of
    θ, ``parameters``), then its figures or ``{"error": why}``."""
    rows = []
    for c in cases:
        row: dict[str, Any] = {"kind": c.kind, "task": c.task, "backend": c.backend, "dtype": c.dtype}
        if c.kind == OPERATOR:
            row |= {"operator": c.operator, "parameters": parameters(c.task, c.n)}
            row |= {} if c.n is None else {"n": c.n}
        elif c.kind == SCALING and c.n is not None:
            row |= {"n": c.n, "bytes_per_step": 2 * c.n * np.dtype(c.dtype).itemsize}
        elif c.n is not None:
            row |= {"n": c.n, "flops_per_step": flops(c.task, c.n)}
        rows.append(row | found.get(c, {"error": "never measured"}))
    return rows
