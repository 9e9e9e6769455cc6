"""Child processes: started so that they die with this one, and described in one line when they end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

# Run before the command itself, in the child: on Linux the kernel then sends it SIGKILL when this
# process dies, even by SIGKILL; the setting survives exec. (A preexec_fn would do the same, but makes
# subprocess run Python's fork hooks, and JAX's warns that forking a multithreaded process may deadlock.)
# Where PIN names CPUs, the child runs on those alone (its threads too, and whatever it starts).
PIN = "AUTODIFF_BENCH_CPUS"
LAUNCHER = f"""import ctypes, os, signal, sys
if sys.platform == "linux":
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[1]):  # the parent died before that: follow it
        sys.exit(1)
    if os.environ.get("{PIN}"):
        os.sched_setaffinity(0, {{int(c) for c in os.environ["{PIN}"].split(",")}})
os.execvp(sys.argv[2], sys.argv[2:])
"""


def start(cmd: Sequence[Any], **kwargs: Any) -> subprocess.Popen:
    """A child in a process group of its own (``stop`` ends the group), killed if this process dies, and
    held to the CPUs that its environment's PIN names, if any."""
    launch = [sys.executable, "-S", "-c", LAUNCHER, str(os.getpid())]
    return subprocess.Popen([*launch, *(str(c) for c in cmd)], start_new_session=True, **kwargs)


def affinity() -> list[int]:
    """The CPUs this process may run on, in order."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def pin(cpus: list[int]) -> None:
    """This process onto these CPUs, every thread it has (a thread started later runs where its starter does)."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that has ended since
            os.sched_setaffinity(int(tid), cpus)


def cpus() -> int:
    """How many CPUs this process may run on."""
    return len(affinity())


def pinned(threads: int) -> list[int]:
    """The CPUs a timing worker of ``threads`` threads runs on: the last ``threads`` this process may use
    (the first stay for this process and the rest of the machine); all of them where it asks for all."""
    cpus = affinity()
    return cpus[-threads:] if threads < len(cpus) else cpus


def stop(proc: subprocess.Popen) -> None:
    """End the child's whole process group (its own children too), and reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def ended(code: int | None, output: Sequence[str] = (), timeout: float | None = None) -> str:
    """How a child ended, with its last lines of output: one line for a table."""
    if code is None:
        how = f"timed out after {timeout:g} s"
    elif code < 0:
        how = f"was killed by {signal.Signals(-code).name}"
    else:
        how = f"exited with status {code}"
    last = last_lines(output)
    return f"the worker {how}" + (f"; its last output: {last}" if last else "")


def last_lines(output: Sequence[str], count: int = 3, width: int = 300) -> str:
    lines = [line.strip() for line in output if line.strip()][-count:]
    text = " | ".join(lines)
    return text if len(text) <= width else "…" + text[-width:]


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block is done (a few renames must not stop halfway)."""
    pending: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for s in pending:
            signal.raise_signal(s)
