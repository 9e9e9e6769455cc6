"""``python -m bench run``: time every backend, each in a fresh process of its own environment, one
after another, through pytest-benchmark (tests/test_speed.py), then merge and write results/.

A worker that crashes, hangs past its timeout, or fails a case leaves rows with the reason; the run goes
on. The results folder is written aside and swapped in only when the run is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backends
import tasks
from bench import envs, machine, timing
from bench.harness import DTYPES, BenchError, UsageError

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
    """One status line, rewritten in place on a terminal; a line per finished case otherwise."""

    def __init__(self, total_workers: int) -> None:
        self.tty, self.total, self.start = sys.stderr.isatty(), total_workers, time.monotonic()

    def show(self, index: int, w: Worker, case: str = "") -> None:
        elapsed = time.monotonic() - self.start
        line = f"[{index}/{self.total}] {w.backend:<14} {w.done:>3}/{len(w.cases)} cases  {elapsed:5.0f}s  {case}"
        print(("\r" + line.ljust(100)) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def run_worker(o: Options, index: int, backend: str, raw: Path, progress: Progress) -> Worker:
    w = Worker(backend, cases(o, backend))
    spec = backends.BACKENDS[backend]
    reason = envs.missing(spec.framework, spec.env)
    if reason:
        w.status = reason
        return w
    env = {**os.environ, **machine.thread_settings(o.threads), "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    proc = subprocess.Popen(
        worker_command(o, backend, raw),
        cwd=envs.ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    tail: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            tail[:] = [*tail[-20:], line.rstrip()]
            if "::test_" in line and any(s in line for s in ("PASSED", "FAILED", "ERROR")):
                w.done += 1
                progress.show(index, w, line.split("::")[1].split()[0])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    progress.show(index, w)
    try:
        code = proc.wait(timeout=o.timeout)
        w.status = "" if code in (0, 1) else f"worker exited with status {code}: {tail[-1] if tail else ''}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        w.status = f"timed out after {o.timeout:g} s"
    reader.join(timeout=5)
    w.seconds = time.monotonic() - start
    collect(w, raw)
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
    from bench import report  # matplotlib is needed only now

    if o.threads < 1:
        raise UsageError(f"--threads must be at least 1, not {o.threads}")
    check_device(o.device)
    o.out = o.out.resolve()
    o.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tempfile.TemporaryDirectory(dir=o.out.parent, prefix=f".{o.out.name}.") as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        bandwidth = timing.read_bandwidth(o.threads)
        progress = Progress(len(o.backends))
        workers = [run_worker(o, i, b, raw, progress) for i, b in enumerate(o.backends, 1)]
        progress.end()
        staged = Path(tmp) / "results"
        summary = report.write(staged, o, workers, bandwidth, time.time() - started, machine.environment(o.device))
        swap(staged, o.out)
    print(summary)
    return 0


def swap(staged: Path, out: Path) -> None:
    """Replace ``out`` by ``staged``, keeping result sets nested in the old one (results/gpu/)."""
    if out.exists():
        for nested in out.iterdir():
            if nested.is_dir() and (nested / "results.json").exists() and not (staged / nested.name).exists():
                shutil.move(str(nested), staged / nested.name)
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staged.rename(out)
        shutil.rmtree(old)
    else:
        staged.rename(out)
