"""``python -m bench run``: time every backend, each in a fresh process of its own environment, one
after another, through pytest-benchmark (tests/test_speed.py), then merge and write results/.

A worker that crashes, hangs past its timeout, or fails a case leaves rows with the reason; the run goes
on, and ends with exit status 1, the failed cases listed last. The results are staged and moved into
the results folder only when the run is complete (bench/outdir.py: nothing there but the tool's own
files is ever replaced or deleted); an interrupted run leaves the folder as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backends
import tasks
from bench import envs, machine, outdir, procs, taskdata, timing
from bench.harness import DTYPES, BenchError

SIZES = [10**k for k in range(2, 8)]
QUICK_SIZES = [10**2, 10**4]
QUICK_STEPS = 1000  # --quick times the tasks shorter than this


def default_tasks(quick: bool) -> list[str]:
    return [t for t in tasks.TASKS if not quick or tasks.get(t).steps < QUICK_STEPS]


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

    @property
    def sizes(self) -> list[int]:
        return QUICK_SIZES if self.quick else SIZES

    def command(self) -> str:
        """The command line that makes this run, leaving out what is the default."""
        words = ["python -m bench run"] + (["--quick"] if self.quick else [])
        for flag, value, default in [
            ("--tasks", self.tasks, default_tasks(self.quick)),
            ("--backends", self.backends, list(backends.BACKENDS)),
            ("--dtype", self.dtypes, ["float64"] if self.quick else list(DTYPES)),
        ]:
            words += [] if value == default else [flag, ",".join(value)]
        words += [] if self.threads == os.cpu_count() else ["--threads", str(self.threads)]
        words += [] if self.device == "cpu" else ["--device", self.device]
        return " ".join(words + ([] if self.out == envs.ROOT / "results" else ["--out", str(self.out)]))


@dataclass
class Worker:
    """One backend's process: what it was asked, what came back, and how it ended."""

    backend: str
    cases: dict[str, dict[str, Any]]  # test id -> what it times
    done: int = 0
    status: str = ""  # "" when it exited cleanly
    seconds: float = 0.0
    benchmarks: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # test id -> reason
    machine_info: dict[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> set[str]:
        return {b["name"] for b in self.benchmarks}


def cases(o: Options, backend: str) -> dict[str, dict[str, Any]]:
    """The test ids a backend's worker should produce (as tests/conftest.py names them), and what each is."""
    speed = {
        f"test_speed[{t}-{backend}-{d}]": {"kind": "speed", "task": t, "dtype": d} for t in o.tasks for d in o.dtypes
    }
    return speed | {
        f"test_scaling[quadratic-{n}-{backend}-{d}]": {"kind": "scaling", "task": "quadratic", "n": n, "dtype": d}
        for n in o.sizes
        for d in o.dtypes
    }


def worker_command(o: Options, backend: str, raw: Path) -> list[str]:
    spec = backends.BACKENDS[backend]
    device = "cpu" if backend == "numpy" else o.device  # numpy stays the reference on the CPU
    cmd = [str(envs.python(spec.env)), "-m", "pytest", "tests/test_speed.py", "--benchmark-only", "-v",
           "-p", "no:cacheprovider", f"--benchmark-json={raw / backend}.json", f"--junitxml={raw / backend}.xml",
           f"--bench-backends={backend}", f"--bench-tasks={','.join(o.tasks)}", f"--bench-dtypes={','.join(o.dtypes)}",
           f"--bench-device={device}", f"--bench-sizes={','.join(map(str, o.sizes))}"]  # fmt: skip
    return cmd + (["--bench-quick"] if o.quick else [])


class Progress:
    """A tqdm bar over every case of the run, naming the backend and the case in progress, with the
    elapsed time and an estimate of what is left; on a non-terminal (a CI log), a plain line per case."""

    def __init__(self, workers: list[Worker]) -> None:
        self.count, self.total = len(workers), sum(len(w.cases) for w in workers)
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="case", file=sys.stderr, dynamic_ncols=True, leave=False)
        self.start = time.monotonic()

    def running(self, index: int, w: Worker, case: str = "") -> None:
        if self.bar is not None:
            self.bar.set_description_str(f"[{index}/{self.count}] {w.backend}", refresh=False)
            self.bar.set_postfix_str(case, refresh=True)
        elif not case:
            print(f"[{index}/{self.count}] {w.backend}: {len(w.cases)} cases", file=sys.stderr, flush=True)

    def finished(self, index: int, w: Worker, case: str, outcome: str) -> None:
        if self.bar is not None:
            self.bar.update(1)
        else:
            elapsed = time.monotonic() - self.start
            line = f"[{index}/{self.count}] {w.backend} {w.done}/{len(w.cases)} {case} {outcome} ({elapsed:.0f} s)"
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def case_of(line: str) -> str:
    """``tests/test_speed.py::test_speed[a-b-c] PASSED [ 50%]`` -> ``test_speed[a-b-c]``."""
    return line.split("::", 1)[1].split()[0] if "::test_" in line else ""


def run_worker(o: Options, index: int, w: Worker, raw: Path, progress: Progress, data: dict[str, str]) -> Worker:
    spec = backends.BACKENDS[w.backend]
    reason = envs.missing(spec.framework, spec.env)
    if reason:
        w.status = reason
        return w
    env = {**os.environ, **machine.thread_settings(o.threads), **data, "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    proc = procs.start(worker_command(o, w.backend, raw), cwd=envs.ROOT, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)  # fmt: skip
    tail: list[str] = []

    def line(text: str) -> None:
        tail[:] = [*tail[-20:], text]
        outcome = next((s for s in ("PASSED", "FAILED", "ERROR") if s in text), "")
        if case_of(text) and outcome:
            w.done += 1
            progress.finished(index, w, case_of(text), outcome)

    def read() -> None:  # pytest -v names a case before running it: a partial line is the case in progress
        pending = b""
        while chunk := os.read(proc.stdout.fileno(), 1 << 16):
            *lines, pending = (pending + chunk).split(b"\n")
            for text in lines:
                line(text.decode(errors="replace").rstrip())
            if b"::test_" in pending:
                progress.running(index, w, case_of(pending.decode(errors="replace")))
        if pending:
            line(pending.decode(errors="replace").rstrip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    progress.running(index, w)
    code: int | None = None
    try:
        code = proc.wait(timeout=o.timeout)
    except subprocess.TimeoutExpired:
        pass
    finally:
        procs.stop(proc)  # its whole process group: on a timeout, Ctrl-C, or stray children
        reader.join(timeout=5)  # after the process ends, so that its last lines are in the tail
        proc.stdout.close()
    w.seconds = time.monotonic() - start
    collect(w, raw)
    if code not in (0, 1) or any(c not in w.failures and c not in w.measured for c in w.cases):
        w.status = procs.ended(code, tail, o.timeout)
    return w


def collect(w: Worker, raw: Path) -> None:
    """Read the worker's pytest-benchmark JSON and JUnit XML, whatever of them it managed to write."""
    try:
        data = json.loads((raw / f"{w.backend}.json").read_text())
        w.benchmarks, w.machine_info = data["benchmarks"], data["machine_info"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        for case in ET.parse(raw / f"{w.backend}.xml").iter("testcase"):
            problem = next(iter([*case.iter("failure"), *case.iter("error"), *case.iter("skipped")]), None)
            if problem is not None:
                w.failures.setdefault(
                    case.get("name", ""), one_line(problem.get("message") or problem.text or "failed")
                )
    except (OSError, ET.ParseError):
        pass


def one_line(message: str) -> str:
    """The reason an exception gives, without its module path: 'bench.harness.Diverged: x' -> 'x'."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    head, sep, rest = first.partition(": ")
    return rest if sep and "." in head and " " not in head else first


def check_device(device: str) -> None:
    if device != "cuda":
        return
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"
    if subprocess.run([envs.python("main"), "-c", probe], cwd=envs.ROOT, capture_output=True).returncode:
        raise BenchError("--device cuda: no CUDA GPU is visible to torch here (torch.cuda.is_available() is False)")


def run(o: Options) -> int:
    """Time every backend, write the results folder; 0 when every case has its figures, else 1."""
    from bench import report

    check_device(o.device)
    started = time.time()
    workers = [Worker(b, cases(o, b)) for b in o.backends]
    folder = outdir.ResultsFolder(o.out)
    try:
        with folder:
            raw = folder.staging / "raw"
            (raw / "data").mkdir(parents=True)
            data = taskdata.ship(raw / "data", {(t, None) for t in o.tasks} | {("quadratic", n) for n in o.sizes})
            bandwidth = timing.read_bandwidth(o.threads)
            progress = Progress(workers)
            try:
                for i, w in enumerate(workers, 1):
                    run_worker(o, i, w, raw, progress, data)
            finally:
                progress.close()
            rows = report.rows_of(workers)
            failed = [r for r in rows if "error" in r]
            if len(failed) == len(rows):
                print(report.failure_list(failed), file=sys.stderr)
                raise BenchError(f"no case was measured: {o.out} unchanged")
            summary = report.write(folder.staging / "results", o, workers, bandwidth, time.time() - started,
                                   machine.environment(o.device))  # fmt: skip
            folder.commit(folder.staging / "results")
    except KeyboardInterrupt:
        done = "the results were written" if folder.committed else "unchanged"
        raise Interrupted(f"interrupted; {o.out} {done}") from None
    if o.out == envs.ROOT / "results" and o.device == "cpu" and not o.quick:
        report.update_readme(summary)
    print(summary)
    if failed:
        print(report.failure_list(failed), file=sys.stderr)
        print(f"error: {len(failed)} of {len(rows)} cases failed; the results in {o.out} say why", file=sys.stderr)
        return 1
    return 0


class Interrupted(BenchError):
    exit_status = 130
