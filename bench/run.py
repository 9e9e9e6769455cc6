"""``python -m bench run``: time every backend through pytest-benchmark (tests/test_speed.py, the path
``pytest --benchmark-only`` takes: each backend measured in R fresh processes of its own environment,
interleaved round-robin, bench.campaign), then write results/.

A worker that crashes, hangs past its timeout, or fails a case leaves rows with the reason; the run goes
on, and ends with exit status 1, the failed cases listed last. The results are staged and moved into
the results folder only when the run is complete (bench/outdir.py: nothing there but the tool's own
files is ever replaced or deleted); an interrupted run leaves the folder as it was.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backends
import tasks
from bench import envs, machine, outdir, procs
from bench import floor as bench_floor
from bench.campaign import Case
from bench.harness import BenchError

# The quadratic sweep of a timing run: from a core's cache to beyond it. 10⁷ is left to --sizes: there a step
# of an eager framework is mostly the kernel handing it fresh pages for its 80 MB temporaries, which is the
# host's figure, and it cost a quarter of a default run (README, "What a default run covers").
SIZES = [10**2, 10**4, 10**6]
COUNT_SIZES = [*SIZES, 10**7]  # a count does not depend on how fast the host hands out pages
REPEATS = 3  # timing processes per backend in a default run (README: "How the timing is kept fair")
JOBS = 1  # timing workers at a time, each pinned to a CPU of its own (README: "How the timing is kept fair")
QUICK_SIZES = [10**2, 10**4]
QUICK_TASKS = ["linear", "digits"]  # --quick's smoke run: a vector task and a matrix task with its own figures
QUICK_REPEATS = 1
QUICK_FLOOR_BYTES = 64 * 2**20  # --quick reads a smaller array, once: its floor is not to be read either
# A default run times float64, the reference precision: a step of these small tasks is per-call overhead,
# which float32 leaves about as it is; `--dtype both` adds float32 (about twice as long).
DEFAULT_DTYPES = ["float64"]


def default_tasks(quick: bool) -> list[str]:
    return [t for t in tasks.TASKS if not quick or t in QUICK_TASKS]


def default_dtypes(quick: bool) -> list[str]:
    return ["float64"] if quick else DEFAULT_DTYPES


def default_jobs(quick: bool, count: bool) -> int:
    """Workers at a time: a count's and a smoke run's one per CPU (neither depends on the machine's load),
    a timing's JOBS."""
    return procs.cpus() if quick or count else JOBS


def default_sizes(quick: bool, count: bool) -> list[int]:
    return QUICK_SIZES if quick else COUNT_SIZES if count else SIZES


@dataclass
class Options:
    out: Path
    tasks: list[str]
    backends: list[str]
    dtypes: list[str]
    threads: int
    device: str
    quick: bool
    timeout: float
    repeats: int = REPEATS
    native_blas: bool = False  # the main environment's workers without machine.PINNED_BLAS: OpenBLAS picks its kernel
    count: bool = False  # count instructions under valgrind instead of timing (bench.count)
    sweep_dtypes: list[str] | None = None  # the quadratic sweep's dtypes, where they differ from ``dtypes``
    jobs: int = 1  # workers at a time, each on CPUs of its own (a count's: one per CPU; --quick's: unpinned)
    sizes: list[int] | None = None  # the quadratic sweep's N; None: default_sizes

    def __post_init__(self) -> None:
        if self.sizes is None:
            self.sizes = default_sizes(self.quick, self.count)

    def command(self) -> str:
        """The command line that makes this run, leaving out what is the default."""
        words = ["python -m bench run"] + (["--quick"] if self.quick else []) + (["--count"] if self.count else [])
        dtypes = default_dtypes(self.quick)
        if self.count and not self.quick:  # a count's default (sweep_dtypes set): float64, the sweep in both
            dtypes = self.dtypes if self.sweep_dtypes is not None else []
        for flag, value, default in [
            ("--tasks", self.tasks, default_tasks(self.quick)),
            ("--backends", self.backends, list(backends.BACKENDS)),
            ("--dtype", self.dtypes, dtypes),
            ("--sizes", list(map(str, self.sizes)), list(map(str, default_sizes(self.quick, self.count)))),
        ]:
            words += [] if value == default else [flag, ",".join(value)]
        words += [] if self.threads == 1 or self.count else ["--threads", str(self.threads)]
        words += [] if self.jobs == default_jobs(self.quick, self.count) else ["--jobs", str(self.jobs)]
        words += [] if self.device == "cpu" else ["--device", self.device]
        repeats = 1 if self.count else QUICK_REPEATS if self.quick else REPEATS
        words += [] if self.repeats == repeats else ["--repeats", str(self.repeats)]
        words += ["--native-blas"] if self.native_blas else []
        out = self.out.relative_to(envs.ROOT) if self.out.is_relative_to(envs.ROOT) else self.out  # as in any clone
        return " ".join(words + ([] if out == Path("results") else ["--out", str(out)]))


def cases(o: Options) -> list[Case]:
    """Every case the run asks for, in the order of its tables."""
    speed = [Case("speed", t, b, d) for t in o.tasks for b in o.backends for d in o.dtypes]
    sweep = o.dtypes if o.sweep_dtypes is None else o.sweep_dtypes
    return speed + [Case("scaling", "quadratic", b, d, n) for n in o.sizes for b in o.backends for d in sweep]


def pytest_args(o: Options, raw: Path) -> list[str]:
    """``pytest --benchmark-only`` over tests/test_speed.py for this run, its figures into ``raw``."""
    return [str(envs.ROOT / "tests" / "test_speed.py"), f"--rootdir={envs.ROOT}", "--benchmark-only", "-q",
            "-p", "no:cacheprovider", f"--benchmark-json={raw / 'timings.json'}",
            f"--junitxml={raw / 'timings.xml'}", f"--bench-backends={','.join(o.backends)}",
            f"--bench-tasks={','.join(o.tasks)}", f"--bench-dtypes={','.join(o.dtypes)}", f"--bench-device={o.device}",
            f"--bench-sizes={','.join(map(str, o.sizes))}", f"--bench-repeats={o.repeats}",
            f"--bench-threads={o.threads}", f"--bench-timeout={o.timeout}", f"--bench-jobs={o.jobs}",
            *(["--bench-quick"] if o.quick else []), *(["--bench-native-blas"] if o.native_blas else [])]  # fmt: skip


@dataclass
class Timings:
    """What the timing session wrote: pytest-benchmark's benchmarks, and why each failed case failed."""

    benchmarks: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # test id -> reason
    machine_info: dict[str, Any] = field(default_factory=dict)


def timings(o: Options, raw: Path) -> Timings:
    """Run the timing session in this process (pytest-benchmark's path, the one ``pytest --benchmark-only``
    takes: every case measured in isolated processes of its backend's environment), and read what it wrote."""
    import pytest

    said = io.StringIO()  # pytest's own report and pytest-benchmark's notes: the run prints its tables instead
    temporary, tempfile.tempdir = tempfile.tempdir, str(raw)  # the workers' files too: staged, then gone
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            code = pytest.main(pytest_args(o, raw))
    finally:
        tempfile.tempdir = temporary
    if code == pytest.ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    found = Timings()
    try:
        data = json.loads((raw / "timings.json").read_text())
        found.benchmarks, found.machine_info = data["benchmarks"], data["machine_info"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        for case in ET.parse(raw / "timings.xml").iter("testcase"):
            problem = next(iter([*case.iter("failure"), *case.iter("error"), *case.iter("skipped")]), None)
            if problem is not None:
                found.failures.setdefault(case.get("name", ""), one_line(problem.get("message") or problem.text or ""))
    except (OSError, ET.ParseError):
        pass
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not found.benchmarks:
        last = procs.last_lines(said.getvalue().splitlines())
        raise BenchError(f"the timing session ended with pytest's exit status {int(code)}; its last output: {last}")
    return found


def one_line(message: str) -> str:
    """The reason an exception gives, without its module path: 'bench.harness.Diverged: x' -> 'x'."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    head, sep, rest = first.partition(": ")
    return rest if sep and "." in head and " " not in head else first


PROBE_LOADS = {"mxnet": ("mxnet",)}  # frameworks that bring a BLAS of their own (MXNet's OpenBLAS)


def worker_environments(o: Options) -> dict[str, Any]:
    """Each backend's environment as its workers see it (the versions differ between environments; so do
    the BLAS each loads and its kernel, and under --native-blas the variables that choose it)."""
    seen: dict[str, Any] = {}
    for env in {backends.BACKENDS[b].env for b in o.backends}:
        load = PROBE_LOADS.get(env, ())
        probe = f"import json; from bench.machine import environment; print(json.dumps(environment(load={load!r})))"
        variables = {**machine.thread_settings(o.threads), **machine.allocator_settings(),
                     **machine.pinned_blas(env, o.native_blas)}  # fmt: skip
        out = subprocess.run([envs.python(env), "-c", probe], cwd=envs.ROOT, capture_output=True, text=True,
                             env=machine.environ_with(variables))  # fmt: skip
        seen[env] = json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr.strip()[-300:]}
    return {b: {"machine_info": {"autodiff_bench": seen[backends.BACKENDS[b].env]}} for b in o.backends}


def check_device(device: str) -> None:
    if device != "cuda":
        return
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"
    if subprocess.run([envs.python("main"), "-c", probe], cwd=envs.ROOT, capture_output=True).returncode:
        raise BenchError("--device cuda: no CUDA GPU is visible to torch here (torch.cuda.is_available() is False)")


def run(o: Options) -> int:
    """Time every backend, write the results folder; 0 when every case has its figures, else 1."""
    from bench import report

    if o.count:  # instructions under valgrind instead of times
        from bench import count

        return count.run_command(o)
    check_device(o.device)
    started, env = time.time(), machine.environment(o.device)  # the commit and versions that run, read first
    folder = outdir.ResultsFolder(o.out)
    try:
        with folder:
            raw = folder.staging / "raw"
            raw.mkdir()
            found = timings(o, raw)
            read = {"nbytes": QUICK_FLOOR_BYTES, "repeats": 2} if o.quick else {}
            floor_started = time.time()  # once, after the timings: the 800 MiB alone take 9 s to page in here
            floor = bench_floor.best(bench_floor.attempt(o.threads, **read))  # a failure is a line, not a lost run
            floor["wall_s"] = time.time() - floor_started
            rows = report.rows_of(cases(o), found)
            failed = [r for r in rows if "error" in r]
            if len(failed) == len(rows):
                print(report.failure_list(failed), file=sys.stderr)
                raise BenchError(f"no case was measured: {o.out} unchanged")
            summary = report.write(folder.staging / "results", o, rows, found, floor, time.time() - started, env,
                                   worker_environments(o))  # fmt: skip
            folder.commit(folder.staging / "results")
    except KeyboardInterrupt:
        done = "the results were written" if folder.committed else "unchanged"
        raise Interrupted(f"interrupted; {o.out} {done}") from None
    if o.out == envs.ROOT / "results" and o.device == "cpu" and not o.quick:
        report.update_readme(summary)
    print(summary)
    written = json.loads((o.out / "results.json").read_text())
    print(report.time_line(written["time_s"], written["jobs"]))
    if failed:
        print(report.failure_list(failed), file=sys.stderr)
        print(f"error: {len(failed)} of {len(rows)} cases failed; the results in {o.out} say why", file=sys.stderr)
        return 1
    return 0


class Interrupted(BenchError):
    exit_status = 130
