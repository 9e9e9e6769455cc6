"""The noise model: what a process's readings of the machine say about it, how a case's processes
become one record, and the interval in which a rerun's median falls.

A process is noisy where its calibration kernels ran slower than the case's quietest process, its CPU gave it
less than its share of the wall-clock time, or the hypervisor stole time (``noise_of``). A case's figure is the
median over its processes of each process's fastest round per step (``merged``); its interval comes from the
process-to-process spread pooled over like cases (``pool``) and the drift of the machine between runs
(``drift``, and ``moved``: how far the machine moved within this run), through bench.core.stats.rerun_interval.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.core import stats
from bench.core.cases import OPERATOR, SPEED, WIDTH, Case
from bench.core.errors import BenchError, Unanswered
from bench.core.records import ProcessTiming
from bench.host import machine

# What a worker's readings of the machine say: a process is noisy where its calibration kernels ran this much
# slower than the case's quiet level in this run, where its CPU gave it less than this share of the
# wall-clock time, or where the hypervisor stole more than this share of the machine's time.
CALIBRATION_SLACK = 0.10
REMEASURE_AT_MOST = 0.25  # of the processes: beyond it the machine was busy throughout, and nothing is timed again
CPU_SHARE = 0.90
STEAL = 0.02
KERNELS = ("calibration_cpu_s", "calibration_memory_s")


def within(noise: dict[Case, float], cost: Callable[[Case], float], startup: dict[str, float],
           seconds: float) -> set[Case]:  # fmt: skip
    """The cases to time again: the noisiest first (``noise_of`` their noisiest process), each that still
    fits in ``seconds`` with what it costs (``cost``) and, the first of its backend, a process's ``startup``."""
    chosen: set[Case] = set()
    for c in sorted(noise, key=noise.__getitem__, reverse=True):
        started = any(o.backend == c.backend for o in chosen)
        more = cost(c) + (0.0 if started else startup.get(c.backend, 0.0))
        if more <= seconds:
            chosen.add(c)
            seconds -= more
    return chosen


def quiet_levels(found: dict[Case, list[ProcessTiming]]) -> dict[tuple[Case, str], float]:
    """Per case and calibration kernel, the quiet level: the fastest its processes ran it. Per case, for
    what a case leaves behind in its worker changes the kernels (after the sweep's 10⁷ points the loop of
    small numpy operations runs markedly slower, in every process alike): a process is judged against
    the other processes that timed the same case."""
    return {(c, k): min(p.machine[k] for p in ps) for c, ps in found.items() for k in KERNELS if ps}


def noise_of(p: ProcessTiming, quiet: dict[tuple[Case, str], float], case: Case) -> float:
    """How far from quiet a process was while it timed a case: the worst of its calibration kernels'
    slowdown over the case's quiet level, its CPU time lost and the share stolen, each over its limit (≤ 1: quiet)."""
    m = p.machine
    slow = max(m[k] / quiet[(case, k)] - 1 for k in KERNELS) / CALIBRATION_SLACK
    return max(slow, (1 - m["cpu_share"]) / (1 - CPU_SHARE), m["steal"] / STEAL)


def noisy(p: ProcessTiming, quiet: dict[tuple[Case, str], float], case: Case) -> bool:
    return noise_of(p, quiet, case) > 1


def visits_joined(visits: list[ProcessTiming]) -> ProcessTiming:
    """One process's record of a case from its visits' answers: every round of every visit; the machine's
    reading over them all (the last visit's); the pages a step was handed (``faults_per_step``); the
    setup and the rounds' seconds summed."""
    first, last = visits[0], visits[-1]
    steps = sum(v.steps_timed for v in visits)

    def every(figure: str) -> list[float] | None:
        return None if getattr(first, figure) is None else [x for v in visits for x in getattr(v, figure)]

    return dataclasses.replace(
        first,
        step_s=every("step_s"),
        objective_s=every("objective_s"),
        handwritten_s=every("handwritten_s"),
        machine=last.machine,
        steps_timed=steps,
        visits=len(visits),
        faults_per_step=sum(v.faults_per_step * v.steps_timed for v in visits) / steps if steps else 0.0,
        setup_s=sum(v.setup_s for v in visits),
        rounds_s=sum(v.rounds_s for v in visits),
    )


def process_joined(visits: list[Any]) -> Any:
    """A case's answers from one process, one a visit, as one answer: its first failure, or its visits joined
    (``visits_joined``); the visits its process never answered (``Unanswered``: it ended first) left out, and
    None where it answered none."""
    failed = (v for v in visits if isinstance(v, BenchError) and not isinstance(v, Unanswered))
    given = [v for v in visits if not isinstance(v, BenchError)]
    return next(failed, None) or (visits_joined(given) if given else None)


def merged(found: list[ProcessTiming]) -> dict[str, Any]:
    """One case's processes in one record: per process, the fastest of its rounds (``samples_s``, and
    ``objective_samples_s``, ``handwritten_samples_s`` of the figures timed beside them; its median round
    too, ``median_samples_s``); what the machine was doing (``machine``, ``noisy``); where the time went
    (``setup_s``, ``rounds_s``); the first process's first call (compiled cold); a width case's agreement with
    numpy (``final_loss``, ``max_rel_diff`` over ``steps_checked`` steps), and an operator case's value against its
    reference (``verdict``, ``rel_error``, ``tol``, ``reference``), from its last process that checked it."""
    first = found[0]
    out: dict[str, Any] = {"mode": first.mode, "device": first.device, "steps_per_round": first.steps_per_round}
    cold = next((p for p in found if p.first_call_s is not None), None)
    out["first_call_s"] = None if cold is None else cold.first_call_s
    if cold is not None and cold.compile_s is not None:
        out["compile_s"] = cold.compile_s
    out["rounds"] = [len(p.step_s) for p in found]
    out["pids"], out["cpus"] = [p.pid for p in found], [p.cpus for p in found]
    out["frameworks"] = sorted({f for p in found for f in p.frameworks})
    for key, name in (("step_s", "samples_s"), ("objective_s", "objective_samples_s"),
                      ("handwritten_s", "handwritten_samples_s")):  # fmt: skip
        if getattr(first, key) is not None:
            out[name] = [min(getattr(p, key)) for p in found]
    out["median_samples_s"] = [statistics.median(p.step_s) for p in found]
    out["faults_per_step"] = statistics.median(p.faults_per_step for p in found)
    out["machine"] = [p.machine for p in found]
    out["noisy"] = [p.noisy for p in found]
    out["remeasured"] = sum(p.replaces_pid is not None for p in found)
    out["setup_s"], out["rounds_s"] = [p.setup_s for p in found], [p.rounds_s for p in found]
    checked = next((p.agreement for p in reversed(found) if p.agreement is not None), None)
    if checked is not None:  # a width case's correctness columns, from its last process
        out |= {"final_loss": checked.final_loss, "max_rel_diff": checked.max_rel_diff,
                "steps_checked": checked.steps, "lr_dtype": checked.lr_dtype, "formula": checked.formula}  # fmt: skip
    judged = next((p.check for p in reversed(found) if p.check is not None), None)
    if judged is not None:  # an operator case's correctness columns, from its last process
        out |= dataclasses.asdict(judged)
    return out


def pool(c: Case) -> tuple[Any, ...]:
    """The cases whose process-to-process spread is pooled with this one's: a backend's task cases (each
    step a few calls of its framework, cache-resident), and a sweep's cases of one size and dtype across
    backends (at 10⁶ and 10⁷ points a step streams memory, and where its pages land moves every backend
    alike, and further between processes than a backend's small cases move; at the width sweep's large widths
    a step is the same matrix products in every backend). An operator case of a task pools with the backend's
    other operator cases (a call is a few calls of its framework, as a step is); one of wide-mlp at width n with
    the width's operator cases across backends, as the width sweep's cells do."""
    if c.kind == SPEED or (c.kind == OPERATOR and c.n is None):
        return (c.kind, c.backend)
    return (c.kind, c.n, c.dtype)


# What moves a whole run: the sd of log time between back-to-back default runs, beyond what the processes of
# one run sample. Each value is the least drift at which one run's 95 % intervals hold 95 % of a back-to-back
# rerun's medians on the host the committed results come from (docs/trust.md); bench diff's "Least drift" line
# gives that figure for two runs of a user's own host.
DRIFT = 0.0125  # a case whose arrays stay in a core's cache: clock and layout
DRIFT_STREAMING = 0.03  # a case whose arrays stream from memory: where its pages land moves it more


def drift(c: Case) -> float:
    """The drift between runs of a case (DRIFT): the sweep's cases whose x alone outgrows a core's level-2
    cache stream memory; every other case, a task's included, stays in cache. Like cases share it (``pool``)."""
    streams = c.kind == "scaling" and c.n is not None and c.n * np.dtype(c.dtype).itemsize > machine.l2_bytes()
    return DRIFT_STREAMING if streams else DRIFT


def by_round(rows: list[dict[str, Any]]) -> list[float]:
    """How the machine moved while the run timed: for each round of processes after the first (the run
    starts the r-th process of every backend after the (r-1)-th), the median over the cases of that
    round's figure against the first's, as a fraction (0.02: 2 % slower). Cases with a process replaced
    are left out (their processes are no longer in round order). A level that keeps climbing is a host
    slowing down, which a rerun meets further on; ``moved`` adds it to the drift between runs. The width sweep's
    cases and the operator cases, timed in the first and last rounds alone (``bench.core.cases.rounds_of``), are
    left out too."""
    rounds = [r["samples_s"] for r in rows if not r.get("remeasured") and len(r.get("samples_s", ())) > 1
              and r.get("kind") not in (WIDTH, OPERATOR)]  # fmt: skip
    most = max(map(len, rounds), default=0)
    mine = [s for s in rounds if len(s) == most]
    return [math.expm1(statistics.median(math.log(s[i] / s[0]) for s in mine)) for i in range(1, most)]


def moved(records: list[dict[str, Any]]) -> float:
    """How far the machine moved while this run timed: the largest level of ``by_round``, either way (0
    with one process a case). A rerun meets the machine at least that far on, so the drift between runs
    of the run's intervals is DRIFT and this together (``math.hypot``): intervals made with DRIFT alone
    would miss the rerun of a host that keeps slowing."""
    return max(map(abs, by_round(records)), default=0.0)


def with_intervals(records: list[dict[str, Any]], drift: float = 0.0) -> None:
    """Each record's median and the interval a rerun's median falls in (bench.core.stats.rerun_interval), from
    the process-to-process spread pooled over these records (``pool``, ``sigma_log``) and the drift of the
    machine between runs (``drift_log``)."""
    sigma = stats.pooled_log_sd(r["samples_s"] for r in records)
    for r in records:
        r["sigma_log"], r["drift_log"] = sigma, drift
        r["median_s"], r["ci_low_s"], r["ci_high_s"] = stats.rerun_interval(r["samples_s"], sigma, drift=drift)
