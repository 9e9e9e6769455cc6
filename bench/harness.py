"""Train a task on a backend, here or in the backend's own environment, and report what happened."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import backends
import tasks
from bench import envs, machine, procs, taskdata
from tasks import formulas, optimizers

DTYPES = ("float64", "float32")
Nested = list[Any]  # an array as nested lists (ndarray.tolist())
CHUNK_STEPS = 1000  # train in chunks of about this many steps; divergence is checked between chunks


class BenchError(Exception):
    """An expected failure: reported as one line, with this exit status."""

    exit_status = 1


class UsageError(BenchError):
    exit_status = 2


class Unavailable(BenchError):
    pass


class Diverged(BenchError):
    def __init__(self, step: int) -> None:
        super().__init__(f"diverged at step {step}: the loss is not finite")
        self.step = step


@dataclass
class Run:
    task: str
    backend: str
    dtype: str
    params: dict[str, Nested]  # each parameter in its own shape
    losses: list[float]
    lr_dtype: str = "float64"  # the precision the backend's optimiser used for the learning rate
    formula: str = "reference"  # whose update it followed (tasks.formulas): the reference, or its framework's
    optimizer: Any = None  # the optimiser it trained with, as tasks.optimizers.to_json writes it
    digest: str = ""  # of the task's data as the backend's environment made it
    checkpoints: dict[str, dict[str, Nested]] = dataclasses.field(default_factory=dict)  # epoch -> params

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def require(kind: str, value: str, valid: Collection[str]) -> None:
    if value not in valid:
        raise UsageError(f"unknown {kind} {value!r}; choose from: {', '.join(valid)}")


def check(task: str, backend: str, dtype: str = "float64") -> None:
    require("task", task, tasks.TASKS)
    require("backend", backend, backends.BACKENDS)
    require("dtype", dtype, DTYPES)


def make_task(
    name: str, lr: float | None = None, epochs: int | None = None, n: int | None = None, optimizer: Any = None
) -> tasks.Task:
    """The task as the main process made it (bench.taskdata), with the run's learning rate, epochs and
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
    check(task, backend, dtype)
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
    if bad:
        made = dataclasses.replace(made, optimizer=optimizers.SGD())  # the gradient is the optimiser's business
    return cls(made, dtype, device) if formula is None else cls(made, dtype, device, formula=formula)


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
) -> Run:
    """Train in this process. ``lr_dtype`` rounds the learning rates first (to match another backend's);
    ``checkpoints`` names epochs after which to record the parameters; ``optimizer`` replaces the task's
    (a ``tasks.optimizers`` spec); ``formula`` has numpy follow a framework's optimiser (tasks.formulas)."""
    b = build(task, backend, dtype, device, lr, epochs, optimizer=optimizer, formula=formula)
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
    return Run(
        task,
        backend,
        dtype,
        as_lists(b.params(), t.init),
        np.concatenate(losses).tolist(),
        # a framework's formula (tasks.formulas) rounds its settings, the rate among them, where it does
        lr_dtype=lr_dtype or (b.lr_dtype if b.formula == "reference" else "float64"),
        formula=b.formula,
        optimizer=optimizers.to_json(b.optimizer),
        digest=taskdata.digest(t),
        checkpoints=saved,
    )


def as_lists(arrays: dict[str, Any], order: dict[str, Any]) -> dict[str, Nested]:
    """Plain float64 nested lists of each array's shape (``np.array(lists)`` gives it back), in the task's
    order of parameters: [w] for a (1,) parameter, [[...], ...] for a matrix."""
    return {k: np.asarray(arrays[k], dtype="float64").tolist() for k in order}


def gradient_here(task: str, backend: str, dtype: str = "float64", device: str = "cpu") -> dict[str, Nested]:
    """The backend's gradient of the task's loss over all the data at the initial parameters."""
    b = build(task, backend, dtype, device, trains=False)
    return as_lists(b.gradient(), b.task.init)


def evaluate_here(
    task: str, backend: str, dtype: str = "float64", device: str = "cpu", epochs: int | None = None
) -> dict[str, Any]:
    """The backend's ``evaluate`` through the first ``epochs`` of the schedule at the initial parameters:
    its losses, and its parameters before and after."""
    b = build(task, backend, dtype, device, epochs=epochs)
    before = as_lists(b.params(), b.task.init)
    out = b.evaluate(b.prepare(b.task.lrs(), b.task.orders()))
    b.wait(out)
    losses = b.to_numpy(out).astype("float64").ravel().tolist()
    return {"losses": losses, "before": before, "after": as_lists(b.params(), b.task.init)}


def handwritten_here(
    task: str, backend: str, dtype: str = "float64", device: str = "cpu", steps: int = 50
) -> dict[str, Nested]:
    """The parameters after ``steps`` steps of the framework's hand-written loop (bench.handwritten)."""
    from bench import handwritten

    check(task, backend, dtype)
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


def measure_here(**kwargs: Any) -> dict[str, Any]:
    """One case's timings in this process (bench.timing.measure, which builds on this module)."""
    from bench.timing import measure

    return measure(**kwargs)


def prepare_here(**kwargs: Any) -> dict[str, float]:
    """A case built for its timings ahead of them (bench.timing.prepare)."""
    from bench.timing import prepare

    return prepare(**kwargs)


def settle_here(**kwargs: Any) -> dict[str, Any]:
    """The cases built ahead onto the CPUs that time them (bench.timing.settle)."""
    from bench.timing import settle

    return settle(**kwargs)


def correctness_here(**kwargs: Any) -> dict[str, Any]:
    """A case trained for the correctness columns of its timing (bench.timing.correctness)."""
    from bench.timing import correctness

    return correctness(**kwargs)


def count_here(**kwargs: Any) -> dict[str, Any]:
    """One case's instructions per step in this process, which valgrind runs (bench.count.count)."""
    from bench.count import count

    return count(**kwargs)


CALLS: dict[str, Callable[..., Any]] = {
    "train": train_here,
    "gradient": gradient_here,
    "evaluate": evaluate_here,
    "handwritten": handwritten_here,
    "contract": contract_here,
    "measure": measure_here,
    "prepare": prepare_here,
    "settle": settle_here,
    "correctness": correctness_here,
    "count": count_here,
}


class Failed(BenchError):
    """An unexpected exception in one call, kept as that call's outcome: its type and message."""

    @classmethod
    def of(cls, e: BaseException) -> Failed:
        text = str(e).strip().splitlines()
        return cls(f"{type(e).__name__}: {text[0]}" if text else type(e).__name__)


ERRORS: dict[str, type[BenchError]] = {c.__name__: c for c in (BenchError, UsageError, Unavailable, Failed)}


def encode(outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, BenchError):
        return {"error": type(outcome).__name__, "message": str(outcome), "step": getattr(outcome, "step", None)}
    return {"result": outcome.to_json() if isinstance(outcome, Run) else outcome}


def decode(fn: str, reply: dict[str, Any]) -> Any:
    if "error" in reply:
        if reply["error"] == "Diverged":
            return Diverged(reply["step"])
        return ERRORS.get(reply["error"], BenchError)(reply["message"])
    return Run(**reply["result"]) if fn == "train" else reply["result"]


def call_here(fn: str, kwargs: dict[str, Any]) -> Any:
    """A call's result, or the error it raised as a BenchError: one call failing leaves the others be."""
    try:
        return CALLS[fn](**kwargs)
    except BenchError as e:
        return e
    except Exception as e:
        return Failed.of(e)


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
                outcomes += [BenchError(why)] * (len(self.calls) - len(outcomes))
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
        check(kw["task"], kw["backend"], kw.get("dtype", "float64"))
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


def train(task: str, backend: str, dtype: str = "float64", **options: Any) -> Run:
    return call("train", task=task, backend=backend, dtype=dtype, **options)


def gradient(task: str, backend: str, dtype: str = "float64", **options: Any) -> dict[str, Nested]:
    return call("gradient", task=task, backend=backend, dtype=dtype, **options)


def worker(out: str) -> None:
    """``python -m bench.worker OUT``: read calls on stdin, a JSON line each, in batches that an empty line
    ends, and write each one's outcome as a JSON line to OUT once it is done. A batch is read whole before
    its calls run (the pipe never fills while a call runs); the next is waited for (Remote.send)."""
    batch: list[tuple[str, dict[str, Any]]] = []
    with open(out, "w") as f:
        for line in itertools.chain(sys.stdin, [""]):  # the end of stdin ends a batch too
            if line.strip():
                batch.append(json.loads(line))
                continue
            for fn, kw in batch:
                print(json.dumps(encode(call_here(fn, kw))), file=f, flush=True)
            batch = []
