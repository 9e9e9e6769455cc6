"""Every case measured in several fresh processes: R timing processes per backend, each pinned to its own
CPU, interleaved round-robin across backends (numpy, torch, …, mxnet-gluon, then again), so that a drift
of the machine hits every backend alike; a process that timed a case while the machine was busy (its
calibration kernels slow, its CPU shared, time stolen) is replaced by one more. The last round's process
of each backend, once every one of the round has timed, trains its tasks for the correctness columns (with
several workers at a time, ``--jobs``, one more process per backend does, after every timing). A process's
figure is its fastest round per step; a case's is the median over its processes, with the interval in which
a rerun's median falls 95 % of the time, from the process-to-process spread pooled over like cases (``pool``)
and the drift of the machine between runs (``drift``; bench.core.stats.rerun_interval).

Each process is a ``bench.worker`` of the backend's own environment, answering one ``measure`` call
per case; one that crashes or runs past its time leaves its cases failed, with the reason.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import math
import os
import queue
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import backends
from bench.campaign.progress import Progress
from bench.campaign.remote import Remote
from bench.core import taskdata
from bench.core.cases import (
    OPERATOR,
    SCALING,
    SPEED,
    WIDTH,
    WIDTH_FLOPS,
    WIDTH_ROUNDS,
    WIDTH_UNIT,
    Case,
    Settings,
    flops,
    rounds_of,
    time_limit,
)
from bench.core.errors import BenchError, Unanswered, Unsupported
from bench.core.noise_model import (
    REMEASURE_AT_MOST,
    drift,
    merged,
    moved,
    noise_of,
    noisy,
    pool,
    process_joined,
    quiet_levels,
    with_intervals,
    within,
)
from bench.core.records import ProcessTiming
from bench.host import machine, procs


def cpu_sets(settings: Settings) -> list[str] | None:
    """The CPUs each of several timing workers at a time is pinned to (``threads`` of them each, from the
    last); None where the variables pin one worker alone (``environ``) or nothing is pinned (--quick)."""
    if settings.quick or settings.jobs == 1:
        return None
    cpus = procs.pinned(settings.jobs * settings.threads)
    return [",".join(map(str, cpus[i : i + settings.threads])) for i in range(0, len(cpus), settings.threads)]


def environ(settings: Settings, data: dict[str, str], caches: Path) -> dict[str, str]:
    """A worker's variables: thread counts and the CPUs it is pinned to, glibc's allocator held
    (``machine.ALLOCATOR``), the task data, and compile caches of this campaign alone (the first process of
    each backend compiles cold, as a first-time user's would; the later reuse it; TensorFlow's XLA cache by a
    flag, after any the user set)."""
    tf_cache = f"--tf_xla_persistent_cache_directory={caches / 'tensorflow'}"
    tf_xla = " ".join(filter(None, [os.environ.get("TF_XLA_FLAGS"), tf_cache]))
    return {**machine.thread_settings(settings.threads), **machine.allocator_settings(), **data,
            "PYTHONUNBUFFERED": "1", "TF_XLA_FLAGS": tf_xla,
            procs.PIN: ",".join(map(str, procs.pinned(settings.threads))) if settings.jobs == 1 else "",
            "TORCHINDUCTOR_CACHE_DIR": str(caches / "torchinductor"),
            "JAX_COMPILATION_CACHE_DIR": str(caches / "jax"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}  # fmt: skip


class Workers:
    """Worker processes run ``jobs`` at a time (``map``); every one started is stopped at once when the run is
    interrupted (Ctrl-C, SIGTERM), and none starts after that. ``remote`` makes one (bench.campaign.counting's runs it
    under valgrind). Where ``cpus`` are given (CPUs, or comma-separated sets of them), each worker runs on
    one of them alone, one worker at a time on each."""

    def __init__(self, jobs: int, remote: Callable[..., Remote] = Remote,
                 cpus: Sequence[int | str] | None = None):  # fmt: skip
        self.jobs, self.make, self.live, self.stopping = jobs, remote, [], False
        self.free: queue.Queue[int | str] | None = None
        if cpus:
            self.free = queue.Queue()
            for c in cpus:
                self.free.put(c)
        self.mine = threading.local()  # the CPU of the worker this thread runs

    def remote(self, env: str, calls: list[tuple[str, dict[str, Any]]], environ: dict[str, str],
               **options: Any) -> Remote:  # fmt: skip
        if self.stopping:
            raise KeyboardInterrupt
        cpu = getattr(self.mine, "cpu", None)
        self.live.append(self.make(env, calls, environ if cpu is None else {**environ, procs.PIN: str(cpu)}, **options))
        return self.live[-1]

    def on_a_cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.free is None:
            return fn(*args)
        self.mine.cpu = self.free.get()
        try:
            return fn(*args)
        finally:
            self.free.put(self.mine.cpu)
            self.mine.cpu = None

    def map(self, fn: Callable[..., Any], work: Iterable[tuple[Any, ...]]) -> list[Any]:
        """``fn(*w)`` for each ``w``, ``jobs`` at a time; the answers in order."""
        work = list(work)
        if self.jobs == 1:
            return [self.on_a_cpu(fn, *w) for w in work]
        threads = concurrent.futures.ThreadPoolExecutor(self.jobs)
        try:
            answers = [f.result() for f in [threads.submit(self.on_a_cpu, fn, *w) for w in work]]
        except BaseException:
            self.stopping = True
            threads.shutdown(wait=False, cancel_futures=True)
            for w in self.live:
                w.stop()
            raise
        threads.shutdown()
        return answers


class Turns:
    """One round of timing processes, a backend's each. Building a case (its data, converting it, compiling,
    warming up) times nothing, so they build ``builders`` at a time, the longest first (``hint``: a backend's
    building seconds, from an earlier round); once every one of them has built, they time one at a time,
    in ``order``, with nothing beside them; once every one has timed, those that train for the correctness
    columns train, ``builders`` at a time: building, which times nothing, then overlaps on the CPUs
    (docs/results.md, "Where the time went")."""

    def __init__(self, order: Sequence[str], builders: int, hint: dict[str, float] | None = None):
        self.order, self.builders = list(order), builders
        self.queue = sorted(slowest_first(self.order), key=lambda b: -(hint or {}).get(b, 0.0))  # stable
        self.building: set[str] = set()
        self.built: set[str] = set()
        self.done: set[str] = set()
        self.training: set[str] = set()
        self.trains_from: float | None = None  # when the first of them began training
        self.waited: dict[str, float] = dict.fromkeys(self.order, 0.0)  # seconds each spent waiting
        self.stopped, self.cond = False, threading.Condition()

    def wait(self, b: str, ready: Callable[[], bool], enter: Callable[[], Any] = lambda: None) -> None:
        """Until ``ready``; then ``enter``, at once (no other waiter sees the state between them)."""
        started = time.monotonic()
        with self.cond:
            self.cond.wait_for(lambda: self.stopped or ready())
            if not self.stopped:
                enter()
                self.cond.notify_all()  # the next in the queue may build now
        self.waited[b] += time.monotonic() - started
        if self.stopped:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def build(self, b: str) -> Iterator[None]:
        self.wait(b, lambda: self.queue[0] == b and len(self.building) < self.builders,
                  lambda: (self.queue.pop(0), self.building.add(b)))  # fmt: skip
        try:
            yield
        finally:
            self.leave(b, self.built)

    @contextlib.contextmanager
    def turn(self, b: str) -> Iterator[None]:
        self.wait(b, lambda: len(self.built) == len(self.order) and self.next() == b)
        try:
            yield
        finally:
            self.leave(b, self.done)

    @contextlib.contextmanager
    def train(self, b: str) -> Iterator[None]:
        self.wait(b, lambda: len(self.done) == len(self.order) and len(self.training) < self.builders,
                  lambda: self.trains(b))  # fmt: skip
        try:
            yield
        finally:
            with self.cond:
                self.training.discard(b)
                self.cond.notify_all()

    def trains(self, b: str) -> None:
        self.training.add(b)
        self.trains_from = self.trains_from or time.monotonic()

    def next(self) -> str | None:
        return next((b for b in self.order if b not in self.done), None)

    def leave(self, b: str, stage: set[str]) -> None:
        """``b`` past this stage (and past building, which a process that failed never finished)."""
        with self.cond:
            self.building.discard(b)
            self.built.add(b)
            stage.add(b)
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


class Campaign:
    """The processes of one run, and what each case's processes answered."""

    def __init__(self, cases: list[Case], settings: Settings, env: dict[str, str], progress: Progress | None,
                 twins: dict[Case, Case] | None = None):  # fmt: skip
        self.settings, self.env, self.progress = settings, env, progress
        self.twins = twins or {}  # a sweep's case: the task case measured for it (``twins``)
        # task cases that are also the quadratic sweep's: the hand-written loop timed beside them too
        self.beside = {task for sweep, task in self.twins.items() if sweep.kind == SCALING}
        cases = [c for c in cases if c not in self.twins]
        self.by_backend: dict[str, list[Case]] = {}
        for c in cases:
            self.by_backend.setdefault(c.backend, []).append(c)
        self.found: dict[Case, list[ProcessTiming]] = {c: [] for c in cases}
        self.errors: dict[Case, str] = {}
        self.cannot: set[Case] = set()  # of those, the cases the backend says it cannot run (Unsupported)
        self.checked: dict[Case, dict[str, Any]] = {}  # a speed case's correctness columns (``kept``)
        self.seconds: dict[str, float] = dict.fromkeys(SPENT, 0.0)  # worker-seconds, where several run at once
        self.building: dict[str, float] = {}  # a backend's building seconds in its last process (Turns' hint)
        self.startup: dict[str, float] = {}  # a backend's quickest process start-up (``within``)
        self.unreached: dict[str, list[Case]] = {}  # the cases a process ended before (``measure``), by backend
        self.workers, self.lock = Workers(settings.jobs, cpus=cpu_sets(settings)), threading.Lock()
        self.trainers = Workers(procs.cpus())  # the correctness columns' workers: they time nothing

    def measure(self, backend: str, mine: list[Case], what: str, phase: str, turns: Turns | None = None,
                workers: Workers | None = None, train: Sequence[Case] = (), again: bool = True,
                check: bool = False) -> list[ProcessTiming | None]:  # fmt: skip
        """One fresh worker times these cases, then trains those of ``train`` for the correctness columns
        (``kept``); what it answered for each case timed (None where it failed). Its wall time is counted to
        ``phase``, the part of it its calls spent building, timing and training apart, and the part it spent
        waiting (``turns``: it built its cases ahead, then waited for its turn) not at all. A worker that ends
        early (past its time, or crashed) loses the case it was on alone: the cases it timed keep what it
        answered, those it never reached are left to another process (``unreached``, where ``again``)."""
        with self.lock:  # the round's size, where an earlier process of the case chose it (its first call)
            sized = {
                c: next((p.steps_per_round for p in self.found[c] if p.first_call_s is not None), None) for c in mine
            }
        visits = range(self.settings.measure_arguments["visits"])
        called = {c: measure_call(c, self.settings, sized[c], c in self.beside, check) for c in mine}
        calls = [("measure", called[c] | {"visit": v}) for v in visits for c in mine]
        ahead = [("prepare", called[c]) for c in mine] if turns else []
        trains = [("correctness", correctness_call(c, [], self.settings)) for c in train]  # sized where timed
        started = time.monotonic()
        named = mine * len(visits) + list(train)  # the case each call is of, for the progress bar
        answered = processes(backend, calls, self.env, self.settings, self.progress, what, named,
                             (workers or self.workers).remote, turns, ahead, trains)  # fmt: skip
        answered, trained = answered[: len(calls)], answered[len(calls) :]
        out = []
        with self.lock:
            own = time.monotonic() - started - (turns.waited[backend] if turns else 0.0)
            self.seconds[phase] += own
            ended = [i for i, got in enumerate(answered) if isinstance(got, Unanswered)]
            on = next((mine[i % len(mine)] for i in ended if answered[i].on), None)  # the case it was on, if any
            by_case = [answered[i :: len(mine)] for i in range(len(mine))]  # a case's visits, in order
            for c, got in zip(mine, map(process_joined, by_case), strict=True):
                if (c == on and not isinstance(got, BenchError)) or (got is None and not again):
                    got = answered[ended[0]]
                elif got is None:  # never reached: another process times it
                    self.unreached.setdefault(backend, []).append(c)
                if isinstance(got, ProcessTiming):
                    self.seconds["setup and compile"] += got.setup_s
                    self.seconds["rounds"] += got.rounds_s
                    self.seconds[phase] -= got.setup_s + got.rounds_s
                if isinstance(got, BenchError):
                    self.failed(c, got)
                out.append(got if isinstance(got, ProcessTiming) else None)
            trained_s = self.kept(train, trained)  # after the timings: a case whose timing failed says why
            self.seconds[phase] -= trained_s
            self.seconds["correctness"] += trained_s
            own = max(0.0, own - trained_s - sum(got.setup_s + got.rounds_s for got in out if got is not None))
            self.startup[backend] = min(own, self.startup.get(backend, own))  # its quickest start-up
        return out

    def timings(self) -> None:
        """R processes per backend, round-robin (``Settings.jobs`` at a time); where they build ahead
        (``Settings.builders``), a round of them at a time (``Turns``)."""
        rounds, n = range(self.settings.repeats), self.settings.repeats
        if not self.settings.builders:  # several at a time, each building as it goes: the longest first
            work = [(b, f"[{r + 1}/{n}] {b}", r) for r in rounds for b in slowest_first(self.by_backend)]
            self.workers.map(lambda b, what, r: self.timed(b, what, r=r), work)
            return
        for r in rounds:
            self.round([(b, f"[{r + 1}/{n}] {b}") for b in self.by_backend], r)

    def round(self, work: list[tuple[str, str]], r: int = 0) -> None:
        """One process per backend, building ahead together, then timing in turn (``Turns``); the last round's
        then train (``Settings.trains_where_timed``)."""
        turns = Turns([b for b, _ in work], self.settings.builders, self.building)
        workers = Workers(len(work))
        before, started = dict(self.seconds), time.monotonic()
        try:
            workers.map(lambda b, what: self.timed(b, what, turns, workers, r), work)
        except BaseException:
            turns.stop()
            raise
        ended = time.monotonic()
        self.overlapped(before, ended - started, ended - (turns.trains_from or ended))

    def overlapped(self, before: dict[str, float], wall: float, training: float = 0.0) -> None:
        """A round's building ran several processes at once: its start-up and setup seconds, which add up
        to more than the round's wall-clock time, scaled to what of it the rounds and its ``training`` (the
        seconds from the first process's training to the round's end) did not take."""
        spent = {k: self.seconds[k] - before[k] for k in SPENT}
        building = spent["worker start-up"] + spent["setup and compile"]
        if building > 0:
            scale = max(0.0, wall - spent["rounds"] - training) / building
            for k in ("worker start-up", "setup and compile"):
                self.seconds[k] = before[k] + spent[k] * scale

    def timed(self, b: str, what: str, turns: Turns | None = None, workers: Workers | None = None,
              r: int = 0) -> None:  # fmt: skip
        """One process's timings, of the cases timed in round ``r`` (``rounds_of``), kept as it answers: a later
        process of the backend sizes its rounds by them. The backend's last, where the timing processes train
        (``Settings.trains_where_timed``), trains too; it checks its width cases' agreement with numpy."""
        last = r == self.settings.repeats - 1
        mine = [c for c in self.by_backend[b] if r in rounds_of(c, self.settings.repeats)]
        trains = last and self.settings.trains_where_timed
        train = [c for c in mine if c.kind == SPEED] if trains else []
        answers = self.measure(b, mine, what, "worker start-up", turns, workers, train, check=last)
        self.building[b] = sum(got.setup_s for got in answers if got is not None)
        with self.lock:
            for c, got in zip(mine, answers, strict=True):
                if got is not None:
                    self.found[c].append(got)

    def timed_again(self) -> None:
        """The cases that a process never reached, for it ended first (ran past its time, or crashed on another
        case), timed by one more process of their backend each; one that this one does not reach fails."""
        work, self.unreached = list(self.unreached.items()), {}
        for (_, mine), answers in zip(work, self.workers.map(self.once_more, work), strict=True):
            with self.lock:
                for c, got in zip(mine, answers, strict=True):
                    if got is not None:
                        self.found[c].append(got)

    def once_more(self, b: str, mine: list[Case]) -> list[ProcessTiming | None]:
        return self.measure(b, mine, f"[again] {b}", "remeasuring: start-up", again=False)

    def remeasure_noisy(self) -> None:
        """Each process that timed a case while the machine was busy (``noisy``) is replaced by one more
        process's timing of that case, where that one was quiet; what stays noisy is marked so. Where
        more than REMEASURE_AT_MOST of the processes were noisy, the machine was busy throughout and
        timing again would meet the same: nothing is remeasured, everything noisy is marked. The cases
        timed again are the noisiest that fit in REMEASURE_SECONDS (``within``)."""
        quiet = quiet_levels(self.found)
        flagged = {c: sum(noisy(p, quiet, c) for p in ps) for c, ps in self.found.items() if c not in self.errors}
        if sum(flagged.values()) <= REMEASURE_AT_MOST * sum(len(self.found[c]) for c in flagged):
            worst = {c: max(noise_of(p, quiet, c) for p in self.found[c]) for c, n in flagged.items() if n}
            again = within(worst, self.cost, self.startup, self.settings.remeasure_s)
            for b, mine in self.by_backend.items():
                self.replace(b, [c for c in mine if c in again], quiet)
            quiet = quiet_levels(self.found)  # a quieter process may have come
        for c, ps in self.found.items():
            for p in ps:
                p.noisy = noisy(p, quiet, c)

    def cost(self, c: Case) -> float:
        """What timing a case once more costs: its quickest building (a compiling backend's later processes
        compile from the run's caches) and its median rounds."""
        ps = self.found[c]
        return min(p.setup_s for p in ps) + statistics.median(p.rounds_s for p in ps)

    def replace(self, b: str, again: list[Case], quiet: dict[tuple[Case, str], float]) -> None:
        """One more process of backend ``b`` times these cases; each answer takes the place of the case's
        noisiest process where it is less noisy."""
        for c, got in zip(again, self.measure(b, again, f"[again] {b}", "remeasuring: start-up"), strict=True):
            worst = max(range(len(self.found[c])), key=lambda i, c=c: noise_of(self.found[c][i], quiet, c))
            replaced = self.found[c][worst]
            if got is not None and noise_of(got, quiet, c) < noise_of(replaced, quiet, c):
                cold = replaced if replaced.first_call_s is not None else got  # its first call and compile
                checked = replaced.agreement or got.agreement  # a width case's, from its last process
                judged = replaced.check or got.check  # an operator case's, likewise
                self.found[c][worst] = dataclasses.replace(got, first_call_s=cold.first_call_s,
                                                           compile_s=cold.compile_s, agreement=checked, check=judged,
                                                           replaces_pid=replaced.pid)  # fmt: skip

    def correctness(self) -> None:
        """The correctness columns of the cases not trained where they were timed, in a process per backend
        that times nothing: one per CPU at once, unpinned."""
        left = {b: [c for c in mine if c.kind == SPEED and c not in self.errors and c not in self.checked]
                for b, mine in self.by_backend.items()}  # fmt: skip
        work = [(b, speed) for b, speed in left.items() if speed]
        for (_, speed), answered in zip(work, self.trainers.map(self.trained, work), strict=True):
            with self.lock:
                self.kept(speed, answered)

    def trained(self, b: str, speed: list[Case]) -> list[Any]:
        calls = [("correctness", correctness_call(c, self.found[c], self.settings)) for c in speed]
        started = time.monotonic()
        unpinned = {**self.env, procs.PIN: ""}
        done = processes(b, calls, unpinned, self.settings, self.progress, f"[train] {b}", speed, self.trainers.remote)
        with self.lock:
            self.seconds["correctness"] += time.monotonic() - started
        return done

    def kept(self, speed: Sequence[Case], answered: list[Any]) -> float:
        """Each case's training for its correctness columns, or why it failed; the seconds they trained."""
        seconds = 0.0
        for c, out in zip(speed, answered, strict=True):
            if isinstance(out, Unanswered):  # its process ended first: one of its own trains it (correctness)
                continue
            if isinstance(out, BenchError):
                self.failed(c, out)
            else:
                seconds += out.pop("correctness_s", 0.0)
                self.checked[c] = out
        return seconds

    def failed(self, c: Case, e: BenchError) -> None:
        """The case's first error is its outcome; one its backend says it cannot run is marked so."""
        if c not in self.errors:
            self.errors[c] = str(e)
            if isinstance(e, Unsupported):
                self.cannot.add(c)

    def results(self) -> dict[Case, dict[str, Any]]:
        records = {c: merged(ps) | self.checked.get(c, {}) for c, ps in self.found.items() if c not in self.errors}
        for sweep, task in self.twins.items():  # the sweep's row: the task case's timings, not its training
            if task in self.errors:
                self.errors[sweep] = self.errors[task]
                self.cannot |= {sweep} if task in self.cannot else set()
            elif task in records:
                view = merged(self.found[task])
                records[sweep] = {k: v for k, v in view.items() if k != "objective_samples_s"}
                if sweep.kind == WIDTH:  # the width table's correctness columns: the task case's training
                    checked = self.checked.get(task, {})
                    records[sweep] |= {k: checked[k] for k in AGREEMENT if k in checked}
        pools: dict[tuple[Any, ...], list[Case]] = {}
        for c in records:
            pools.setdefault(pool(c), []).append(c)
        # as the Noise line reads it (timings.noise): the cases every round of processes timed
        run = moved([r for c, r in records.items() if c.kind not in (WIDTH, OPERATOR)])
        for mine in pools.values():
            with_intervals([records[c] for c in mine], math.hypot(drift(mine[0]), run))
        every = [*self.found, *self.twins]
        return {c: ({"error": self.errors[c]} | ({"cannot": True} if c in self.cannot else {})) if c in self.errors
                else records[c] for c in every}  # fmt: skip


AGREEMENT = ("final_loss", "max_rel_diff", "epochs_trained", "epochs", "lr_dtype", "formula")  # a width twin's
SPENT = ("worker start-up", "setup and compile", "rounds", "remeasuring: start-up", "correctness")


def time_cases(cases: list[Case], settings: Settings, progress: Progress | None = None,
        seconds: dict[str, float] | None = None) -> dict[Case, dict[str, Any]]:  # fmt: skip
    """Measure every case; returns each case's figures, or ``{"error": why}``. ``seconds``, where given,
    is filled with where the time went (SPENT: a worker's wall time beyond its calls' building and timing
    is its start-up; a remeasuring worker's building and timing count as setup and rounds)."""
    with tempfile.TemporaryDirectory(prefix="autodiff-bench-") as scratch:
        data = taskdata.ship(Path(scratch), {(c.task, c.n) for c in cases})
        same = twins(cases)
        if progress is not None:  # a twin is timed as its task case; a width case in fewer processes (``rounds_of``)
            untimed = sum(settings.repeats - len(rounds_of(c, settings.repeats)) for c in cases if c not in same)
            progress.skip((len(same) * settings.repeats + untimed) * settings.measure_arguments["visits"])
        campaign = Campaign(cases, settings, environ(settings, data, Path(scratch)), progress, same)
        campaign.timings()
        campaign.timed_again()
        if not settings.quick:
            campaign.remeasure_noisy()
        campaign.correctness()
    if seconds is not None:
        seconds.update(campaign.seconds)
    return campaign.results()


def slowest_first(names: Iterable[str]) -> list[str]:
    """Backends, those that compile first (``Spec.compiles``: building, they take the longest), the rest in
    the order given: where processes run several at a time, the last to end is then not one started late."""
    return sorted(names, key=lambda b: not backends.BACKENDS[b].compiles)


def processes(backend: str, calls: list[tuple[str, dict[str, Any]]], env: dict[str, str], settings: Settings,
              progress: Progress | None, what: str, mine: list[Case],
              remote: Callable[..., Remote] = Remote, turns: Turns | None = None,
              ahead: list[tuple[str, dict[str, Any]]] | None = None,
              after: list[tuple[str, dict[str, Any]]] | None = None) -> list[Any]:  # fmt: skip
    """The calls answered by one fresh worker of the backend's environment (``remote``: how it is run;
    bench.campaign.counting's runs it under valgrind), then the calls ``after`` them. With ``turns``, the worker first
    answers ``ahead`` (the cases built), unpinned, in its building slot; at its turn it is pinned
    (``settle``) and given ``calls``; ``after``, in its training slot, once every process has timed."""
    if not calls:
        return []
    calls, after = list(calls), list(after or [])
    if progress is not None:
        progress.process(what, len(set(mine)))
    limit = time_limit(settings, len(set(mine[: len(calls)])) + len(after))  # its cases, timed and trained
    where = backends.BACKENDS[backend].env
    environ = {**env, **machine.pinned_blas(where, settings.native_blas)}
    answered = None if progress is None else lambda i: progress.answered(mine[min(i + 1, len(mine) - 1)].params)
    if turns is None:
        worker = remote(where, calls + after, environ)
        try:
            return worker.results(limit, answered)
        finally:
            worker.stop()
    lead, worker = len(ahead or []) + 1, None

    def timings(got: list[Any]) -> list[Any]:  # the answers to ``calls``, from all (building and settling first)
        out, i = got[lead:], next((i for i, g in enumerate(got[: lead - 1]) if isinstance(g, Unanswered)), -1)
        if 0 <= i < len(out) and got[i].on:  # it ended building a case: that case's first visit is the call it was on
            out[i] = got[i]
        return out

    try:
        with turns.build(backend):
            worker = remote(where, ahead, {**environ, procs.PIN: ""}, more=True)
            worker.wait(lead - 1, limit)
        shifted = None if answered is None else lambda i: i >= lead and answered(i - lead)
        with turns.turn(backend):
            worker.send([("settle", {"cpus": procs.pinned(settings.threads)}), *calls], more=bool(after))
            if not after:
                return timings(worker.results(limit, shifted))
            if not worker.wait(lead + len(calls), limit, shifted):  # ended, or ran past its time:
                worker.send([])  # no more calls: it ends, and says how, in its turn; not trained
                got = timings(worker.results(limit, shifted))
                why = next((g for g in got if isinstance(g, BenchError)), BenchError("not timed"))
                return got + [why] * len(after)
        with turns.train(backend):
            worker.send(after)
            return timings(worker.results(limit, shifted))
    finally:
        turns.leave(backend, turns.done)
        if worker is not None:
            worker.stop()


def measure_call(c: Case, settings: Settings, size: int | None = None, sweep: bool = False,
                 check: bool = False) -> dict[str, Any]:  # fmt: skip
    """A case's ``measure`` call; ``size``, the steps of a round where an earlier process chose it; ``sweep``,
    a task case that is also a sweep's (``twins``): the hand-written loop timed beside it too. A quadratic sweep
    case trains at most 10⁷ / N steps a round; a width case about WIDTH_UNIT seconds, at most WIDTH_FLOPS of work
    (a step at least), for an eighth of the seconds of rounds (WIDTH_ROUNDS), without the objective beside it;
    where ``check`` (its last process), its first call is held against numpy's (``bench.worker.timer.agreement``).
    An operator case is timed as a width case, a round's calls about WIDTH_UNIT seconds (``steps`` unused), the loss's
    call beside it (but for the loss itself); where ``check``, its first call's value is held against the reference
    (``bench.worker.operator_timer``)."""
    arguments = settings.measure_arguments
    steps = arguments["steps"]
    if c.kind == SCALING:
        steps = max(1, min(steps, 10**7 // (c.n or 1)))
    elif c.kind == WIDTH:
        steps = max(1, min(steps, WIDTH_FLOPS // (flops(c.task, c.n) or 1)))
    if c.kind in (WIDTH, OPERATOR):
        arguments = arguments | {"round_time": arguments["round_time"] * WIDTH_ROUNDS, "unit_time": WIDTH_UNIT}
    objective = c.kind == SPEED or (c.kind == OPERATOR and c.operator != "loss")
    return {"task": c.task, "backend": c.backend, "dtype": c.dtype, "device": device(c, settings), "n": c.n,
            **arguments, "steps": steps, "objective": objective, "handwritten": sweep or c.kind == SCALING,
            "size": size, "check": check and c.kind in (WIDTH, OPERATOR), "operator": c.operator}  # fmt: skip


def twins(cases: list[Case]) -> dict[Case, Case]:
    """Each sweep case that is a task case of the run as well: quadratic at its own size (N = 10², the
    tutorial's), wide-mlp at its own width (16), the same arrays, schedule, backend and dtype. It is measured
    once, as the task case (quadratic's with the sweep's hand-written loop beside it), and its timings are the
    sweep's row too (a width case's, with the task case's correctness columns)."""
    speed = {(c.task, c.backend, c.dtype): c for c in cases if c.kind == SPEED}
    return {c: speed[(c.task, c.backend, c.dtype)] for c in cases
            if c.kind in (SCALING, WIDTH) and (c.task, c.backend, c.dtype) in speed
            and same_data(c.task, c.n)}  # fmt: skip


@functools.cache
def same_data(task: str, n: int | None) -> bool:
    """Whether the task at ``n`` points is the task itself: every array it trains on the same."""
    return taskdata.digest(taskdata.made(task)) == taskdata.digest(taskdata.made(task, n))


def correctness_call(c: Case, found: list[ProcessTiming], settings: Settings) -> dict[str, Any]:
    """A case's ``correctness`` call, its training sized by its timings (``found``: none, by the timing of
    the process it is asked of)."""
    per_step = statistics.median(statistics.median(p.step_s) for p in found) if found else None
    return {"task": c.task, "backend": c.backend, "dtype": c.dtype, "device": device(c, settings),
            "per_step": per_step, "budget": settings.budget}  # fmt: skip


def device(c: Case, settings: Settings) -> str:
    return "cpu" if c.backend == "numpy" else settings.device  # numpy stays the reference on the CPU
