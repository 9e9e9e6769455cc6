"""The caller's side of the calls: a worker process in a backend's environment, and calls run there."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import backends
from bench.core import taskdata
from bench.core.cases import check_names
from bench.core.errors import BenchError, Unanswered, Unavailable
from bench.core.records import Nested, TrainingRun
from bench.core.wire import decode
from bench.host import envs, machine, procs
from bench.worker.serve import call_here


class Remote:
    """Calls run by a worker process in another environment; started now, collected by ``results``.
    The worker answers one line per call as it goes, so a worker that dies keeps what it answered.
    ``environ`` adds variables to the worker's environment (a value None removes one); where it names no
    shipped task data (``taskdata.VARIABLE``), the data these calls need are shipped for this worker alone.
    A worker started with ``more`` waits, once it has answered these calls, for the calls ``send`` gives it."""

    def __init__(self, env: str, calls: list[tuple[str, dict[str, Any]]],
                 environ: dict[str, str | None] | None = None, more: bool = False):  # fmt: skip
        self.env, self.calls, self.proc, self.seen = env, list(calls), None, 0
        if not envs.python(env).exists():
            return
        self.out = tempfile.NamedTemporaryFile(suffix=".jsonl")
        self.err = tempfile.TemporaryFile()
        self.data = tempfile.TemporaryDirectory(prefix="autodiff-bench-data-")
        extra = dict(environ or {})
        if taskdata.VARIABLE not in extra:
            extra |= taskdata.ship(Path(self.data.name), {(kw["task"], kw.get("n")) for _, kw in calls if "task" in kw})
        self.proc = procs.start(self.command(), cwd=envs.ROOT, stdin=subprocess.PIPE, stderr=self.err,
                                env=machine.environ_with(extra))  # fmt: skip
        self.write(calls, more)

    def send(self, calls: list[tuple[str, dict[str, Any]]], more: bool = False) -> None:
        """More calls for a worker started with ``more``; the last it will be given unless ``more`` again."""
        self.calls += calls
        self.write(calls, more)

    def write(self, calls: list[tuple[str, dict[str, Any]]], more: bool) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(BrokenPipeError):  # it died: ``results`` says how
            self.proc.stdin.write(b"".join(json.dumps(c).encode() + b"\n" for c in calls) + b"\n")
            self.proc.stdin.flush()
            if not more:
                self.proc.stdin.close()

    def wait(self, answers: int, timeout: float, answered: Callable[[int], None] | None = None) -> bool:
        """Until the worker has answered this many calls (True), or has ended, or ``timeout`` seconds have
        passed; ``answered`` as in ``results``."""
        deadline = time.monotonic() + timeout
        while self.proc is not None and self.proc.poll() is None and time.monotonic() < deadline:
            if self.told(answered) >= answers:
                return True
            time.sleep(0.05)
        return self.proc is not None and self.told(answered) >= answers

    def told(self, answered: Callable[[int], None] | None) -> int:
        """The calls answered so far; ``answered(i)`` for each not told before."""
        done = len(self.answers())
        if answered is not None:
            for i in range(self.seen, done):
                answered(i)
            self.seen = done
        return done

    def command(self) -> list[Any]:
        return [envs.python(self.env), "-m", "bench.worker", self.out.name]

    def results(self, timeout: float | None = None, answered: Callable[[int], None] | None = None) -> list[Any]:
        """Every call's outcome, once the worker ends or ``timeout`` seconds have passed (then it is
        stopped); ``answered(i)`` is called as the worker answers the i-th call."""
        if self.proc is None:
            return [self.unavailable(kw["backend"]) for _, kw in self.calls]
        code, deadline = None, None if timeout is None else time.monotonic() + timeout
        while code is None and (deadline is None or time.monotonic() < deadline):
            try:
                code = self.proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            if answered is not None:
                self.told(answered)
        procs.stop(self.proc)  # and whatever it started
        with self.out, self.err, self.data:
            outcomes = [decode(fn, reply) for (fn, _), reply in zip(self.calls, self.answers(), strict=False)]
            if len(outcomes) < len(self.calls):
                self.err.seek(0)
                why = procs.ended(code, self.err.read().decode(errors="replace").splitlines(), timeout)
                why = why.replace("the worker", f"the {self.env} worker", 1)
                missing = len(self.calls) - len(outcomes)  # the first: the call it was on
                outcomes += [Unanswered(why, on=True), *[Unanswered(why)] * (missing - 1)]
        return outcomes

    def answers(self) -> list[dict[str, Any]]:
        """The worker's complete answers so far: the lines it has ended (a long one is written in parts)."""
        self.out.seek(0)
        return [json.loads(line) for line in self.out.read().decode().split("\n")[:-1]]

    def stop(self) -> None:
        """End the worker and whatever it started (called again after ``results``: harmless)."""
        if self.proc is not None:
            procs.stop(self.proc)
            self.out.close()
            self.err.close()
            self.data.cleanup()

    def unavailable(self, backend: str) -> Unavailable:
        return Unavailable(f"{backend}: {envs.missing(backends.BACKENDS[backend].framework, self.env)}")


def call_many(calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Each call in the environment of its backend: other environments' calls in one worker each,
    running while this process does its own. Results (or BenchErrors) in the order of ``calls``."""
    for _, kw in calls:
        check_names(kw["task"], kw["backend"], kw.get("dtype", "float64"))
    where = [backends.BACKENDS[kw["backend"]].env for _, kw in calls]
    remote_envs = sorted({env for env in where if env != envs.current()})
    remotes = {env: Remote(env, [c for c, w in zip(calls, where, strict=True) if w == env]) for env in remote_envs}
    try:
        local = [call_here(fn, kw) if w == envs.current() else None for (fn, kw), w in zip(calls, where, strict=True)]
        remote_results = {env: iter(r.results()) for env, r in remotes.items()}
    finally:
        for r in remotes.values():
            r.stop()
    return [out if w == envs.current() else next(remote_results[w]) for out, w in zip(local, where, strict=True)]


def call(fn: str, **kwargs: Any) -> Any:
    """One call, in the backend's environment; raises its BenchError."""
    (out,) = call_many([(fn, kwargs)])
    if isinstance(out, BenchError):
        raise out
    return out


def train(task: str, backend: str, dtype: str = "float64", **options: Any) -> TrainingRun:
    return call("train", task=task, backend=backend, dtype=dtype, **options)


def gradient(task: str, backend: str, dtype: str = "float64", **options: Any) -> dict[str, Nested]:
    return call("gradient", task=task, backend=backend, dtype=dtype, **options)
