"""An operator case in a timing process: one operator beyond the gradient (``tasks.operators``) of a task, at the
task's point, timed call by call as a training case is step by step (``bench.worker.rounds.Rounds``).

The backend is built as ``bench.worker.operators.values_here`` builds it (plain SGD, not trained); its
``operator(name, at)`` makes the call (a compiled mode's first call traces and compiles it). A round calls it k times
and ends in a blocking read of the last value (``Calls``), k sized so that a round takes about ``unit_time``
seconds (once at least); the loss operator's call is timed beside it in the same rounds, k' times, sized alike
(``objective_s``), so that a figure over the loss's is the operator's cost in losses (the cheap gradient principle
bounds the gradient's by about 5)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from backends._base import Backend, Lacks
from bench.core.errors import Unsupported
from bench.core.records import OperatorCheck
from bench.worker import training
from bench.worker.rounds import Rounds, seconds
from tasks import operators

MAX_CALLS = 100_000  # a round of a microsecond call: enough of them
PROBES = 3  # calls that size a round, the fastest of them (after the first, which compiles)


class Calls:
    """``k`` calls of an operator's call at its point; calling this makes them and blocks until the last value is
    computed (``Backend.wait``: an asynchronous framework's earlier calls are done by then too)."""

    def __init__(self, backend: Backend, fn: Callable[[], Any], k: int) -> None:
        self.backend, self.fn, self.k = backend, fn, k
        self.out: Any = None

    def __call__(self) -> None:
        fn = self.fn
        for _ in range(self.k - 1):
            fn()
        self.out = fn()
        self.backend.wait(self.out)


def sized(backend: Backend, fn: Callable[[], Any], unit_time: float) -> int:
    """The calls a round makes: about ``unit_time`` seconds of them at the fastest of PROBES calls (a call already
    past ``unit_time`` ends the probing: one a round), one at least. The probes warm the call up."""
    one, fastest = Calls(backend, fn, 1), float("inf")
    for _ in range(PROBES):
        fastest = min(fastest, seconds(one))
        if fastest >= unit_time:
            break
    return int(np.clip(unit_time / max(fastest, 1e-9), 1, MAX_CALLS))


class OperatorTimed(Rounds):
    """One operator of one task on one backend, built in this process (untimed: the backend, its arrays, the
    operator's call; its first call, which traces and compiles, timed apart as ``first_call_s``, with ``compile_s``
    where the framework keeps a tally, where no earlier process sized the round), then timed over visits: ``step_s``
    a call of the operator, ``objective_s`` a call of the loss, where ``objective`` (none for the loss itself).
    ``size``: the calls of a round, where an earlier process chose them. ``check``: hold the first call's value
    against the reference (``tasks.operators.judge``), as ``check``. A dense operator (an n × n Hessian, an m × n
    Jacobian, and the HVPs of a backend without autodiff where the task writes no HVP, numpy's: the task's dense
    Hessian times v) is asked of at most ``tasks.operators.DENSE_LIMIT`` parameters: beyond, the case is
    ``Unsupported``."""

    def __init__(self, task: str, backend: str, dtype: str, device: str, n: int | None, operator: str,
                 unit_time: float, size: int | None, check: bool = False, objective: bool = True) -> None:  # fmt: skip
        self.started = time.perf_counter()
        self.case = (task, backend, dtype, device, n, operator)
        b = training.build(task, backend, dtype, device, n=n, optimizer="sgd", trains=False)
        at = operators.point(b.task)
        dense = operator in operators.DENSE or (
            operator in operators.HVPS and not b.has_autodiff and b.task.hvp is None
        )
        if dense and at.theta.size > operators.DENSE_LIMIT:
            how = "" if operator in operators.DENSE else f" ({backend}'s is the task's dense Hessian times v)"
            raise Unsupported(f"{operator}{how} is asked of a model of at most {operators.DENSE_LIMIT:,} parameters, "
                              f"not of {at.theta.size:,} (tasks.operators.DENSE_LIMIT)")  # fmt: skip
        try:
            fn = b.operator(operator, at)
            loss = b.operator("loss", at) if objective and operator != "loss" else None
        except Lacks as e:
            raise Unsupported(str(e)) from None
        self.b, self.first = b, {}
        compiled = b.compile_seconds()
        first = Calls(b, fn, 1)
        took = seconds(first)  # tracing and compiling included
        if size is None:  # the first process's (a later one's first call meets the run's compile caches)
            self.first["first_call_s"] = took
            if compiled is not None:  # of which the framework's own tally says it compiled
                self.first["compile_s"] = b.compile_seconds() - compiled
        if check:
            self.first["check"] = judged(b, operator, at, first.out, dtype)
        k = sized(b, fn, unit_time) if size is None else size
        self.timed, self.per = {"step_s": Calls(b, fn, k)}, {"step_s": k}
        if size is not None:
            self.timed["step_s"]()  # the warm-up (sizing warms it up otherwise)
        if loss is not None:
            Calls(b, loss, 1)()  # its own first call (a compiled mode compiles it apart)
            kl = sized(b, loss, unit_time)
            self.timed["objective_s"], self.per["objective_s"] = Calls(b, loss, kl), kl
        self.ready()

    @property
    def backend(self) -> Backend:
        return self.b


def judged(b: Backend, name: str, at: operators.Point, value: Any, dtype: str) -> OperatorCheck:
    """A value of operator ``name`` held against its reference in ``dtype`` (``tasks.operators.judge``)."""
    ref = operators.reference(b.task, name, at)
    verdict = operators.judge({name: b.to_numpy(value)}, {name: ref}, dtype)[name]
    return OperatorCheck(verdict.kind, float(verdict.error), float(verdict.tol), verdict.how)
