"""What a timing process measures, and the figures derived from the timings.

``measure`` runs in a fresh process of the backend's own environment (a ``bench.worker``): it builds
one case and converts it into its framework (untimed), times its first call (tracing, compiling or
hybridizing included) on a short slice that sizes the rounds, warms up, then times rounds; a later
process of the same case is given that size, and only warms up. A round trains through a fixed slice of the
task's schedule and ends in a blocking read; the objective alone over the same slice, and for the
quadratic sweep a hand-written loop of the same framework, are timed in turn with each round
(interleaved, so that a busy moment of the machine hits each alike).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from backends._base import Backend
from bench.core import agreement as agreement_rule
from bench.core.errors import BenchError, Diverged
from bench.core.records import Agreement, ProcessTiming
from bench.host import procs
from bench.worker import handwritten as loops
from bench.worker import training
from bench.worker.operator_timer import OperatorTimed
from bench.worker.rounds import CALIBRATIONS, Rounds, seconds

MIN_STEPS = 10  # the shortest slice a round trains (fewer where ``steps`` asks for fewer: the largest sweep sizes)
# what a timing process names as loaded: the proof it is isolated
FRAMEWORKS = {"torch", "jax", "tensorflow", "autograd", "mxnet"}


class Unit:
    """A fixed slice of a task's schedule, converted into the framework once: its first ``steps`` steps,
    rounded up to whole epochs, or, where that is less than an epoch, the first batches of the first
    epoch. Calling it trains through the slice and blocks until the work is done."""

    def __init__(self, backend: Backend, steps: int) -> None:
        task = backend.task
        lrs, orders = task.lrs(), task.orders()
        if steps < task.steps_per_epoch:
            order = np.arange(len(task.x)) if orders[0] is None else orders[0]
            self.steps, lrs, orders = steps, lrs[:1], [order[: steps * task.batch]]
        else:
            epochs = min(task.epochs, -(-steps // task.steps_per_epoch))
            self.steps, lrs, orders = epochs * task.steps_per_epoch, lrs[:epochs], orders[:epochs]
        self.backend, self.lrs, self.orders = backend, lrs, orders
        self.chunk = backend.prepare(lrs, orders)
        self.out: Any = None

    def __call__(self) -> None:
        self.out = self.backend.run(self.chunk)
        self.backend.wait(self.out)

    def objective(self) -> None:
        """The loss alone of every step of the slice, at the current parameters (no gradient, no update)."""
        self.backend.wait(self.backend.evaluate(self.chunk))

    def dispatch(self) -> object:
        """The same work without the blocking read (for the self-test: this is not a timing)."""
        return self.backend.run(self.chunk)

    def losses(self) -> np.ndarray:
        """The last call's per-step losses."""
        return self.backend.to_numpy(self.out).astype("float64").ravel()


class Timed(Rounds):
    """A training case built in this process (untimed: building, converting, compiling, warming up), then timed
    over one or more visits (``Rounds.visit``), a round training its slice (``Unit``) and, beside it, the objective
    alone over the same slice and the quadratic sweep's hand-written loop, where asked."""

    def __init__(self, task: str, backend: str, dtype: str, device: str, n: int | None, steps: int,
                 unit_time: float, objective: bool, handwritten: bool, size: int | None,
                 check: bool = False) -> None:  # fmt: skip

        self.started = time.perf_counter()
        self.case = (task, backend, dtype, device, n)
        b = training.build(task, backend, dtype, device, n=n)
        timed: dict[str, Callable[[], Any]] = {}
        if handwritten:
            loop = loops.make(backend, b.task, dtype, b.device)
        self.first: dict[str, Any] = {}  # the first visit's own figures: first_call_s, agreement
        if size is None:
            least = min(steps, MIN_STEPS)
            probe = Unit(b, least)  # its first call includes tracing, compiling or hybridizing
            compiled = b.compile_seconds()
            self.first["first_call_s"] = seconds(probe)
            if compiled is not None:  # of which the framework's own tally says it compiled
                self.first["compile_s"] = b.compile_seconds() - compiled
            on_schedule(probe)  # from the initial parameters: the schedule's own first steps
            if check:
                self.first["agreement"] = agreement(probe, self.case)
            per_step = seconds(probe) / probe.steps
            calls = 2
            if per_step * probe.steps < unit_time:  # a quick slice: the fastest of three calls sizes the unit
                per_step, calls = min(per_step, *(seconds(probe) / probe.steps for _ in range(2))), 4
            size = int(np.clip(unit_time / per_step, least, steps))  # a slow step gets a shorter slice
            unit = probe if size == probe.steps else Unit(b, size)  # the probe is warm: called twice already
            warm_ups = 0 if unit is probe else 1
            self.trained = calls * probe.steps + warm_ups * unit.steps
        else:
            unit, warm_ups = Unit(b, size), 1  # its first call compiles, the second is the warm-up
            unit()
            on_schedule(unit)
            if check:
                self.first["agreement"] = agreement(unit, self.case)
            self.trained = 2 * unit.steps
        for _ in range(warm_ups):
            unit()
        timed["step_s"] = self.unit = unit
        if objective:
            timed["objective_s"] = unit.objective
            unit.objective()  # its own first call (a compiled backend compiles the objective apart)
        if handwritten:
            timed["handwritten_s"] = lambda: loop.run(unit.steps)
            loop.run(unit.steps)
        self.timed, self.per = timed, dict.fromkeys(timed, unit.steps)
        self.ready()

    @property
    def backend(self) -> Backend:
        return self.unit.backend

    def visited(self, rounds: int) -> None:
        """The slice's loss after the visit's rounds is finite: a timing of arithmetic on inf and NaN is not a timing
        of training."""
        unit = self.unit
        self.trained += (rounds + 1) * unit.steps  # and the call of ``settle``, if any
        if not np.isfinite(unit.losses()).all():
            raise divergence(self.case, unit, self.trained)


def on_schedule(unit: Unit) -> None:
    """After the first call of a slice from the initial parameters, whose steps are then the schedule's first:
    a loss that is not finite there is the task's own divergence, named by its step."""
    bad = np.flatnonzero(~np.isfinite(unit.losses()))
    if bad.size:
        raise Diverged(int(bad[0]) + 1)


def agreement(unit: Unit, case: tuple[Any, ...]) -> Agreement:
    """A slice's first call from the initial parameters held against numpy's over the same batches and learning
    rates (rounded as the backend rounds them, its optimiser's formula followed: ``agreement.reference``): the
    largest relative difference over every step's loss and the parameters the slice ends at. What a width case's
    correctness columns say, checked in the process that timed it, on the slice it had built (no second build, and
    no second compile). ``case``: (task, backend, dtype, device, n)."""
    task, _, dtype, _, n = case
    b = unit.backend
    losses, params = unit.losses(), {k: np.asarray(v, dtype="float64") for k, v in b.params().items()}
    ref = training.build(task, "numpy", dtype, "cpu", n=n, formula=b.formula)
    out = ref.run(ref.prepare(unit.lrs.astype(b.rate_dtype).astype("float64"), unit.orders))
    ref_losses = ref.to_numpy(out).astype("float64").ravel()
    ends = [agreement_rule.rel_diff(params[k], np.asarray(v, dtype="float64")) for k, v in ref.params().items()]
    diff = max([agreement_rule.rel_diff(losses, ref_losses), *ends])
    return Agreement(final_loss=float(losses[-1]), max_rel_diff=diff, steps=unit.steps, lr_dtype=b.rate_dtype,
                     formula=b.formula)  # fmt: skip


def divergence(case: tuple[Any, ...], unit: Unit, trained: int) -> Exception:
    """Why a slice called over and over (its rounds, each from where the last left off) came to a loss that is
    not finite, where its first call did not: the step of the task's own schedule, trained from its start
    in a fresh instance of the backend as far as the slice's calls went (``trained`` steps), where that
    diverges; else that the rounds did where the schedule does not. ``case``: (task, backend, dtype, device, n)."""
    task, backend, dtype, device, n = case
    t = unit.backend.task
    epochs = min(t.epochs, -(-trained // t.steps_per_epoch))
    try:
        training.train_here(task, backend, dtype, device, epochs=epochs, n=n)
    except Diverged as e:
        return e
    return BenchError(
        f"the loss is not finite once the schedule's first {unit.steps} steps were trained again and again, each "
        f"time from where the last left off (as timing rounds and counted calls do); the schedule itself, from its "
        f"start, does not diverge in its first {epochs * t.steps_per_epoch} steps"
    )


# The cases of this process between their visits (``measure``'s ``visit``), by what names a case (``named``)
LIVE: dict[tuple[Any, ...], Rounds] = {}
# A case's time per step as this process last measured it (the median round of its last visit): what sizes
# its training for the correctness columns where that is asked of the process that timed it (``correctness``)
MEASURED: dict[tuple[Any, ...], float] = {}


def measure(
    task: str,
    backend: str,
    dtype: str = "float64",
    device: str = "cpu",
    n: int | None = None,
    steps: int = 100,
    unit_time: float = 0.05,
    round_time: float = 1.0,
    min_rounds: int = 3,
    objective: bool = True,
    handwritten: bool = False,
    size: int | None = None,
    visit: int = 0,
    visits: int = 1,
    check: bool = False,
    operator: str | None = None,
) -> ProcessTiming:
    """One visit of a case's timings in this process, per step in seconds: ``step_s`` a training step,
    one figure a round; ``objective_s`` and ``handwritten_s`` likewise, where asked. A round trains
    ``steps`` steps, or as many as take about ``unit_time`` where that is fewer; rounds go on until
    ``round_time`` seconds have passed, at least ``min_rounds``, but never fewer than MIN_STEPS steps (a
    one-step slice makes Dynamo recompile). The first visit (``visit`` 0) builds the case; it stays built
    in this process until its last (``visits``), and a process visits each of its cases in turn
    (bench.campaign.timing), so that a moment in which the machine is slow falls on a visit, not on a case.
    ``first_call_s`` (first visit) is the first call of a slice of MIN_STEPS steps, which sizes the round;
    where an earlier process sized it (``size``, its ``steps_per_round``), the round is built at that size
    at once and its first call is not reported (a compiled backend compiles once instead of twice);
    ``machine`` what the calibration kernels, the CPU share and the steal time said (bench.worker.calibration);
    ``faults_per_step``, the pages the kernel handed a training step (``minor_faults``), over the
    visit's ``steps_timed``; ``setup_s`` the seconds before the rounds (building, converting, compiling,
    warming up), ``rounds_s`` the rounds'; ``agreement``, where ``check``, the first call against numpy's
    (``agreement``). ``joined`` makes one process's record of a case's visits.

    With ``operator`` (one of tasks.operators.OPERATORS), the case is that operator of the task instead
    (``bench.worker.operator_timer``): each figure is per call of it, ``objective_s`` the loss's call (where
    ``objective``), a round's calls sized by ``unit_time`` (or ``size``), ``steps`` and ``handwritten`` unused;
    ``check``, its first call's value held against the reference (``check``)."""
    key = named(task, backend, dtype, device, n, operator)
    if visit == 0 and key not in LIVE:  # not built ahead
        prepare(task, backend, dtype, device, n, steps, unit_time, objective, handwritten, size, check, operator)
    elif key not in LIVE:
        raise BenchError(f"{task} {backend} {dtype}: visit {visit + 1} of a case this process did not build")
    case = LIVE[key]
    try:
        every = round_time * visits / CALIBRATIONS
        out = case.visit(round_time, min_rounds, first=visit == 0, last=visit == visits - 1, every=every)
    except BaseException:
        del LIVE[key]
        raise
    if visit == visits - 1:
        del LIVE[key]
    if operator is None:
        MEASURED[key] = float(np.median(out["step_s"]))
    b = case.backend
    return ProcessTiming(mode=b.mode, device=b.device, steps_per_round=case.steps_per_round, visit=visit,
                         **(case.first if visit == 0 else {}), **out, setup_s=case.setup_s if visit == 0 else 0.0,
                         pid=os.getpid(), cpus=procs.affinity(),
                         frameworks=sorted(FRAMEWORKS & sys.modules.keys()))  # fmt: skip


def prepare(task: str, backend: str, dtype: str = "float64", device: str = "cpu", n: int | None = None,
            steps: int = 100, unit_time: float = 0.05, objective: bool = True, handwritten: bool = False,
            size: int | None = None, check: bool = False, operator: str | None = None,
            **visits: Any) -> dict[str, float]:  # fmt: skip
    """A case built ahead of its visits (``measure``'s first builds it otherwise), while another process
    builds its own beside this one (bench.campaign.timing); its seconds."""
    key = named(task, backend, dtype, device, n, operator)
    if operator is None:
        LIVE[key] = Timed(task, backend, dtype, device, n, steps, unit_time, objective, handwritten, size, check)
    else:
        LIVE[key] = OperatorTimed(task, backend, dtype, device, n, operator, unit_time, size, check, objective)
    return {"setup_s": LIVE[key].setup_s}


def named(task: str, backend: str, dtype: str, device: str, n: int | None, operator: str | None) -> tuple[Any, ...]:
    """What names a case in this process (``LIVE``, ``MEASURED``): (task, backend, dtype, device, n), and an operator
    case's operator after them."""
    return (task, backend, dtype, device, n) + (() if operator is None else (operator,))


def settle(cpus: list[int]) -> dict[str, Any]:
    """Before the rounds of cases built ahead: this process and its threads onto ``cpus`` (it built them
    unpinned), and each case's slice called once on them (what the other processes' rounds left in the
    caches since, and the new CPU's)."""
    procs.pin(cpus)
    for case in LIVE.values():
        case.settle()
    return {"cpus": procs.affinity()}


def correctness(
    task: str, backend: str, dtype: str, device: str, per_step: float | None, budget: float
) -> dict[str, Any]:
    """Train the whole schedule where it fits the budget, else the whole epochs that do; the final loss,
    parameters and loss curve, and how far they are from numpy's over the same epochs. ``per_step`` None:
    the step as this process measured the case (``MEASURED``). ``correctness_s``: the seconds it took."""
    started = time.monotonic()
    if per_step is None:
        per_step = MEASURED.get((task, backend, dtype, device, None))
        if per_step is None:
            raise BenchError(f"{task} {backend} {dtype}: not timed in this process, so not trained in it")
    t = training.make_task(task)
    per_epoch = per_step * t.steps_per_epoch
    epochs = t.epochs if per_epoch * t.epochs <= budget else max(1, int(budget / per_epoch))
    run = training.train_here(task, backend, dtype, device, epochs=epochs)
    ref = training.train_here(**agreement_rule.reference(run, epochs))
    return {"epochs_trained": epochs, "epochs": t.epochs, "final_loss": run.losses[-1],
            "max_rel_diff": agreement_rule.run_diff(run, ref), "params": run.params, "lr_dtype": run.lr_dtype,
            "formula": run.formula,
            "losses": sample(run.losses), "loss_diffs": sample(list(agreement_rule.rel_diffs(run.losses, ref.losses))),
            "correctness_s": time.monotonic() - started}  # fmt: skip


def sample(losses: list[float], points: int = 1000) -> dict[str, list]:
    """A trajectory thinned for storage: every early step, then evenly spaced ones, and the last."""
    n = len(losses)
    steps = np.unique(np.concatenate([np.arange(min(n, 100)), np.linspace(0, n - 1, points).astype(int)]))
    return {"step": (steps + 1).tolist(), "loss": [float(losses[i]) for i in steps]}
