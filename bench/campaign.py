"""Every case measured in several fresh processes: R timing processes per backend, interleaved
round-robin across backends (numpy, torch, …, mxnet-gluon, then again), so that a drift of the machine
hits every backend alike; then one more process per backend trains each task for the correctness
columns. A case's figure is the median over its processes of each process's median round, with a 95 %
confidence interval over the processes (bench.stats): the spread a reader meets when rerunning.

Each process is a ``bench.worker`` of the backend's own environment, answering one ``measure`` call
per case; one that crashes or runs past its time leaves its cases failed, with the reason.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import backends
from bench import harness, machine, stats, taskdata


@dataclass(frozen=True)
class Case:
    """One timing: a task on a backend in a dtype, or the quadratic sweep at ``n`` points."""

    kind: str  # "speed" or "scaling"
    task: str
    backend: str
    dtype: str
    n: int | None = None

    @property
    def params(self) -> str:
        """The pytest id's parameters, which also name the case in the results: ``quadratic-100-numpy-float64``."""
        return "-".join(str(p) for p in (self.task, self.n, self.backend, self.dtype) if p is not None)

    @property
    def id(self) -> str:
        return f"test_{self.kind}[{self.params}]"


@dataclass(frozen=True)
class Settings:
    repeats: int = 3  # timing processes per backend
    threads: int = 1
    device: str = "cpu"
    quick: bool = False
    timeout: float = 600.0  # seconds one process may take

    @property
    def measure(self) -> dict[str, Any]:
        """What each ``measure`` call is asked: a round's steps at least, the seconds of rounds to aim for
        in one process, and the fewest rounds."""
        if self.quick:
            return {"steps": 10, "round_time": 0.0, "min_rounds": 1}
        return {"steps": 100, "round_time": 0.15, "min_rounds": 2}

    @property
    def budget(self) -> float:
        """Seconds of training for the correctness columns, beyond which a case trains fewer epochs."""
        return 0.5 if self.quick else 3.0


class Progress:
    """A tqdm bar over every call of the campaign, naming the process and the case in progress, with the
    elapsed time and an estimate of what is left; on a non-terminal (a CI log), a plain line per process.
    ``quiet`` is a context in which writing to the terminal is allowed (pytest captures otherwise); it
    writes to the process's own stderr, which ``bench run`` leaves alone when it quiets pytest's."""

    def __init__(self, total: int, quiet: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext):
        self.total, self.quiet, self.start, self.bar = total, quiet, time.monotonic(), None
        if sys.__stderr__.isatty():
            from tqdm import tqdm

            with self.quiet():
                self.bar = tqdm(total=total, unit="case", file=sys.__stderr__, dynamic_ncols=True, leave=False)

    def process(self, what: str, cases: int) -> None:
        with self.quiet():
            if self.bar is not None:
                self.bar.set_description_str(what, refresh=True)
            else:
                print(f"{what}: {cases} cases ({time.monotonic() - self.start:.0f} s)", file=sys.__stderr__, flush=True)

    def answered(self, next_case: str) -> None:
        if self.bar is not None:
            with self.quiet():
                self.bar.set_postfix_str(next_case, refresh=False)
                self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            with self.quiet():
                self.bar.close()


def environ(settings: Settings, data: dict[str, str], caches: Path) -> dict[str, str]:
    """A worker's variables: thread counts, the task data, and compile caches of this campaign alone
    (the first process of each backend compiles cold, as a first-time user's would; the later reuse it)."""
    return {**machine.thread_settings(settings.threads), **data, "PYTHONUNBUFFERED": "1",
            "TORCHINDUCTOR_CACHE_DIR": str(caches / "torchinductor"),
            "JAX_COMPILATION_CACHE_DIR": str(caches / "jax"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}  # fmt: skip


def run(cases: list[Case], settings: Settings, progress: Progress | None = None) -> dict[Case, dict[str, Any]]:
    """Measure every case; returns each case's figures, or ``{"error": why}``."""
    by_backend: dict[str, list[Case]] = {}
    for c in cases:
        by_backend.setdefault(c.backend, []).append(c)
    found: dict[Case, list[dict[str, Any]]] = {c: [] for c in cases}
    errors: dict[Case, str] = {}
    with tempfile.TemporaryDirectory(prefix="autodiff-bench-") as scratch:
        data = taskdata.ship(Path(scratch), {(c.task, c.n) for c in cases})
        env = environ(settings, data, Path(scratch))
        for r in range(settings.repeats):
            for b, mine in by_backend.items():
                calls = [("measure", measure_call(c, settings)) for c in mine]
                what = f"[{r + 1}/{settings.repeats}] {b}"
                for c, out in zip(mine, processes(b, calls, env, settings, progress, what, mine), strict=True):
                    if isinstance(out, harness.BenchError):
                        errors.setdefault(c, str(out))
                    else:
                        found[c].append(out)
        for b, mine in by_backend.items():  # the correctness columns, in a process that times nothing
            speed = [c for c in mine if c.kind == "speed" and c not in errors]
            calls = [("correctness", correctness_call(c, found[c], settings)) for c in speed]
            for c, out in zip(speed, processes(b, calls, env, settings, progress, f"[train] {b}", speed), strict=True):
                if isinstance(out, harness.BenchError):
                    errors.setdefault(c, str(out))
                else:
                    found[c].append({"correctness": out})
    return {c: {"error": errors[c]} if c in errors else merged(found[c]) for c in cases}


def processes(backend: str, calls: list[tuple[str, dict[str, Any]]], env: dict[str, str], settings: Settings,
              progress: Progress | None, what: str, mine: list[Case],
              remote: Callable[..., harness.Remote] = harness.Remote) -> list[Any]:  # fmt: skip
    """The calls answered by one fresh worker of the backend's environment (``remote``: how it is run;
    bench.count's runs it under valgrind)."""
    if not calls:
        return []
    if progress is not None:
        progress.process(what, len(calls))
    worker = remote(backends.BACKENDS[backend].env, calls, env)
    try:
        answered = None if progress is None else lambda i: progress.answered(mine[min(i + 1, len(mine) - 1)].params)
        return worker.results(settings.timeout, answered)
    finally:
        worker.stop()


def measure_call(c: Case, settings: Settings) -> dict[str, Any]:
    speed = c.kind == "speed"
    steps = settings.measure["steps"] if speed else max(1, min(settings.measure["steps"], 10**7 // (c.n or 1)))
    return {"task": c.task, "backend": c.backend, "dtype": c.dtype, "device": device(c, settings), "n": c.n,
            **settings.measure, "steps": steps, "objective": speed, "handwritten": not speed}  # fmt: skip


def correctness_call(c: Case, found: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    per_step = statistics.median(statistics.median(p["step_s"]) for p in found)
    return {"task": c.task, "backend": c.backend, "dtype": c.dtype, "device": device(c, settings),
            "per_step": per_step, "budget": settings.budget}  # fmt: skip


def device(c: Case, settings: Settings) -> str:
    return "cpu" if c.backend == "numpy" else settings.device  # numpy stays the reference on the CPU


def merged(found: list[dict[str, Any]]) -> dict[str, Any]:
    """One case's processes in one record: per process, the median of its rounds (``samples_s``, and
    ``objective_samples_s``, ``handwritten_samples_s`` of the figures timed beside them); the
    first process's first call (compiled cold); the correctness columns."""
    timed = [p for p in found if "step_s" in p]
    out: dict[str, Any] = {k: timed[0][k] for k in ("mode", "device", "steps_per_round", "first_call_s")}
    out["rounds"] = [len(p["step_s"]) for p in timed]
    out["pids"] = [p["pid"] for p in timed]
    out["frameworks"] = sorted({f for p in timed for f in p["frameworks"]})
    for key, name in (("step_s", "samples_s"), ("objective_s", "objective_samples_s"),
                      ("handwritten_s", "handwritten_samples_s")):  # fmt: skip
        if key in timed[0]:
            out[name] = [statistics.median(p[key]) for p in timed]
    out["median_s"], out["ci_low_s"], out["ci_high_s"] = stats.median_ci(out["samples_s"])
    for p in found:
        out |= p.get("correctness", {})
    return out
