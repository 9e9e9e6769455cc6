"""A case's rounds in a timing process: its figures timed in turn, one each a round, with the calibration kernels
between them. ``Rounds`` is what a training case (``bench.worker.timer.Timed``) and an operator case
(``bench.worker.operator_timer.OperatorTimed``) share: a case built once, then visited (``visit``) as often as the
campaign asks, each visit a few rounds."""

from __future__ import annotations

import functools
import resource
import time
from collections.abc import Callable
from typing import Any

from backends._base import Backend
from bench.worker import calibration

MAX_ROUNDS = 5000  # a round of a microsecond step takes 100 µs: enough of them
CALIBRATIONS = 8  # calibration kernels timed this many times over a case's rounds, and before and after them


def seconds(fn: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def minor_faults() -> int:
    """Pages the kernel has handed this process so far (fresh memory touched for the first time)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@functools.cache
def kernels() -> Any:
    """The calibration kernels of this process, made once."""
    return calibration.Kernels()


class Rounds:
    """A case built in this process (untimed: building, converting, compiling, warming up), then timed over one or
    more visits (``visit``); between its visits the process times its other cases. A subclass builds the case and
    sets, before calling ``ready``: ``timed``, each figure's call (``step_s`` first: what the case times, then the
    figures timed beside it in the same rounds), and ``per``, how many of what a figure is per (training steps,
    operator calls) one call of it does; ``first``, the first visit's own figures; ``started``, when it began."""

    timed: dict[str, Callable[[], Any]]
    per: dict[str, int]
    first: dict[str, Any]
    started: float

    @property
    def backend(self) -> Backend:
        raise NotImplementedError

    @property
    def steps_per_round(self) -> int:
        """What a round's call of ``step_s`` does: the steps of a training slice, an operator's calls."""
        return self.per["step_s"]

    def ready(self) -> None:
        """Once the case is built and warm: the calibration kernels made (and their reading begun), the setup's
        seconds taken."""
        self.reading, self.since = calibration.Reading(kernels()), 0.0  # seconds of rounds since a calibration
        self.setup_s = time.perf_counter() - self.started

    def settle(self) -> None:
        """One call of what the case times, on the CPU the process has just been pinned to."""
        self.timed["step_s"]()

    def visit(self, round_time: float, min_rounds: int, first: bool, last: bool, every: float) -> dict[str, Any]:
        """Rounds for about ``round_time`` seconds (every figure's rounds and the calibration kernels
        together; the last begun where it should end in time), at least ``min_rounds``: each figure per
        step (per call), one a round; ``machine``, what the calibration kernels (timed before the ``first`` visit,
        every ``every`` seconds of rounds and after the ``last``), the CPU share and the steal time
        said over this and the earlier visits; ``faults_per_step``, the pages the kernel handed ``step_s``'s call
        over what it did (``steps_timed``)."""
        reading = self.reading
        rounds_start = time.perf_counter()
        reading.begin(calibrate=first)
        figures: dict[str, list[float]] = {k: [] for k in self.timed}
        steps, faults, took = figures["step_s"], 0, 0.0
        now = time.perf_counter()
        while len(steps) < min_rounds or (now + took - rounds_start < round_time and len(steps) < MAX_ROUNDS):
            before = minor_faults()  # a step's pages: read around the training call alone (timed first)
            began = now
            for k, fn in self.timed.items():
                figures[k].append(seconds(fn) / self.per[k])
                if k == "step_s":
                    faults += minor_faults() - before
            now = time.perf_counter()
            took, self.since = now - began, self.since + now - began
            if self.since > every:
                reading.calibrate()
                now, self.since = time.perf_counter(), 0.0
        machine = reading.end(calibrate=last)
        self.visited(len(steps))
        timed = len(steps) * self.steps_per_round
        return {**figures, "machine": machine, "rounds_s": time.perf_counter() - rounds_start,
                "faults_per_step": faults / timed, "steps_timed": timed}  # fmt: skip

    def visited(self, rounds: int) -> None:
        """After a visit's ``rounds``: what the case checks of them (a training case: that its loss stayed finite)."""
