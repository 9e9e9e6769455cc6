"""The counting campaign behind ``python -m bench run --count``: every case's instructions per step, each
backend in worker processes of its own environment under valgrind's callgrind (bench.worker.counter counts).

A wall-clock figure differs between hosts and between reruns; the number of instructions a step executes
does not, on the same software. The client requests are compiled once per run from valgrind's own header
(``valgrind/callgrind.h``) into a tiny shared library in the run's temporary folder, which both environments
load with ctypes.

Every thread pool is held to one thread (``machine.thread_settings(1)``, ``OMP_WAIT_POLICY=PASSIVE``,
MXNet's ``NaiveEngine``, jax's CPU client without async dispatch), so that the count is the work and no
spinning; ``PYTHONHASHSEED=0`` fixes Python's hashing. valgrind 3.19 runs no AVX-512: Inductor is told to
build its kernels for AVX2 (``ATEN_CPU_CAPABILITY=avx2``, ``TORCHINDUCTOR_CPP_MARCH=x86-64-v3``), which is
what every other framework's dispatch picks under valgrind anyway (valgrind's CPUID reports no AVX-512).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.campaign import remote, timing
from bench.campaign.progress import Progress
from bench.core import taskdata
from bench.core.cases import Case, Settings
from bench.core.errors import BenchError, Missing, Unsupported
from bench.core.records import ProcessCount
from bench.host import envs, machine, procs
from bench.worker.counter import ALLOCATOR, LOOKUP, MAX_CALLS, OUT_VARIABLE, POOL, SHIM_VARIABLE, WARMUPS, WINDOW

# seconds one count process may take by default: under valgrind everything runs about 50× slower, and eager jax's
# and TensorFlow's processes take longest
TIMEOUT = 3600.0
HEADER = "/usr/include/valgrind/callgrind.h"
INSTALL = "apt-get install valgrind"
SHIM_SOURCE = r"""
#include <valgrind/callgrind.h>
int autodiff_bench_on_valgrind(void) { return RUNNING_ON_VALGRIND; }
void autodiff_bench_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void autodiff_bench_stop(const char *label) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(label); }
"""

# What a counting worker's environment adds to a timing worker's (bench.campaign.timing.environ)
ENVIRON = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "MXNET_ENGINE_TYPE": "NaiveEngine",
    "PYTHONHASHSEED": "0",
    "MALLOC_ARENA_MAX": "1",
    "ATEN_CPU_CAPABILITY": "avx2",
    "TORCHINDUCTOR_CPP_MARCH": "x86-64-v3",
}


def valgrind_version() -> str:
    """``valgrind-3.19.0``; a Missing error naming the package where valgrind is not installed."""
    path = shutil.which("valgrind")
    if path is None:
        raise Missing(f"--count needs valgrind, which is not installed: {INSTALL}")
    out = subprocess.run([path, "--version"], capture_output=True, text=True)
    if out.returncode != 0:
        raise Missing(f"--count needs valgrind, and `valgrind --version` failed: {out.stderr.strip()[:200]}")
    return out.stdout.strip()


def build_shim(folder: Path) -> Path:
    """The client requests as a shared library, compiled with gcc into ``folder``."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise Missing("--count compiles a small C shim and needs gcc, which is not installed: apt-get install gcc")
    if not Path(HEADER).exists():
        raise Missing(f"--count needs valgrind's header {HEADER}, which is missing: {INSTALL}")
    folder.mkdir(parents=True, exist_ok=True)
    source, lib = folder / "callgrind_shim.c", folder / "callgrind_shim.so"
    source.write_text(SHIM_SOURCE)
    out = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(lib), str(source)], capture_output=True,
                         text=True)  # fmt: skip
    if out.returncode != 0:
        raise BenchError(f"the callgrind shim did not compile: {out.stderr.strip()[-300:]}")
    return lib


def valgrind_options(folder: Path) -> list[str]:
    return ["--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/callgrind.out.%p",
            "--dump-line=no"]  # fmt: skip


def no_aslr() -> list[str]:
    """``setarch -R``, which runs a command with its address space laid out the same every time (where
    setarch is missing, nothing: a count is then as reproducible as the addresses are)."""
    path = shutil.which("setarch")
    return [path, os.uname().machine, "-R"] if path else []


def project(scratch: Path) -> Path:
    """Where a counting worker sees the project: a link in the run's temporary folder, a path as long in
    every run wherever the clone is. A module's file name follows the path it was imported by, and the
    heap's layout after importing follows those names: two clones count alike where their paths are as long."""
    return scratch / "project"


class Counted(remote.Remote):
    """A worker run under valgrind's callgrind, instrumentation off until the worker switches it on, and
    without address-space randomisation (``no_aslr``), by its environment's interpreter as seen through
    ``project``; its environment (``environ``) names the folder for callgrind's files (OUT_VARIABLE)."""

    def __init__(self, env: str, calls: list[tuple[str, dict[str, Any]]], environ: dict[str, str]):
        folder = Path(environ[OUT_VARIABLE])
        self.prefix = [*no_aslr(), "valgrind", *valgrind_options(folder)]
        self.linked = project(folder.parent) / envs.ENVS[env] / "bin" / "python"
        super().__init__(env, calls, environ)

    def command(self) -> list[Any]:
        python, *rest = super().command()
        return [*self.prefix, self.linked if self.linked.exists() else python, *rest]


def count_call(c: Case, settings: Settings) -> dict[str, Any]:
    """What each count call is asked: the slice a timing round trains at most (bench.campaign.measure_call)."""
    timed = timing.measure_call(c, settings)
    return {k: timed[k] for k in ("task", "backend", "dtype", "device", "n", "steps")} | {"label": c.params}


# A timing worker's variables that a counting worker goes without: jax's persistent compilation cache, which
# the first process of a run fills and the later read from a pool thread, leaving each a heap laid out
# otherwise (glibc's memalign, which XLA's buffers take, costs what the addresses make it); TensorFlow's
# XLA cache likewise (a counting worker has the user's TF_XLA_FLAGS, if any). glibc's allocator runs by its own
# rules: the pages it is handed anew are the kernel's work, which a count does not see, and the committed count
# run was made so
UNSET = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
         "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "TF_XLA_FLAGS", *machine.ALLOCATOR)  # fmt: skip


def environ(settings: Settings, data: dict[str, str], scratch: Path, shim: Path) -> dict[str, str]:
    """A counting worker's variables: a timing worker's, less UNSET, with ENVIRON, the shim, the dumps'
    folder, and the project imported through ``project`` alone (PYTHONSAFEPATH: not from the real working
    folder, which ``-m`` would put first)."""
    (scratch / "callgrind").mkdir(exist_ok=True)
    path = os.pathsep.join(filter(None, [str(project(scratch)), os.environ.get("PYTHONPATH")]))
    timed = {k: v for k, v in timing.environ(settings, data, scratch).items() if k not in UNSET}
    return {**timed, **machine.thread_settings(1), **ENVIRON,
            procs.PIN: "",  # each worker is held to a CPU of its own by run's Workers
            SHIM_VARIABLE: str(shim), OUT_VARIABLE: str(scratch / "callgrind"), "PYTHONPATH": path,
            "PYTHONSAFEPATH": "1"}  # fmt: skip


def count_cases(cases: list[Case], settings: Settings, progress: Progress | None = None,
        jobs: int = 1) -> dict[Case, dict[str, Any]]:  # fmt: skip
    """Count every case: ``settings.repeats`` processes per backend (counts are exact: one suffices),
    ``jobs`` processes at a time, each held to one CPU of its own. A thread pool sized by the CPUs a process
    may use (XLA's intra-op pool, which jax's large elementwise loops were split over) then has one
    thread, and the work runs on the caller (an idle worker of that pool would spin in Eigen's steal loop for as
    long as the scheduler let it). A count does not depend on what else the machine does. Each case's
    record: ``instructions_per_step`` (the median over its processes) and every process's count, or
    ``{"error": why}``. A sweep's case that is a task case as well (``timing.twins``) is counted once, as
    the task case: the same computation, one figure."""
    same = timing.twins(cases)
    if progress is not None:
        progress.skip(len(same) * settings.repeats)
    by_backend: dict[str, list[Case]] = {}
    for c in cases:
        if c not in same:
            by_backend.setdefault(c.backend, []).append(c)
    found: dict[Case, list[ProcessCount]] = {c: [] for b in by_backend.values() for c in b}
    errors: dict[Case, str] = {}
    cannot: set[Case] = set()  # of those, what the backend says it cannot run (Unsupported)
    with tempfile.TemporaryDirectory(prefix="autodiff-bench-count-") as scratch:
        shim = build_shim(Path(scratch))
        project(Path(scratch)).symlink_to(envs.ROOT, target_is_directory=True)
        env = environ(settings, taskdata.ship(Path(scratch), {(c.task, c.n) for c in cases}), Path(scratch), shim)

        workers = timing.Workers(jobs, Counted, cpus=procs.pinned(max(1, jobs)))

        def one(r: int, b: str) -> list[Any]:
            calls = [("count", count_call(c, settings)) for c in by_backend[b]]
            what = f"[count {r + 1}/{settings.repeats}] {b}"
            return timing.processes(b, calls, env, settings, progress, what, by_backend[b], workers.remote)

        work = [(r, b) for r in range(settings.repeats) for b in by_backend]  # in the order given (--backends)
        for (_, b), outs in zip(work, workers.map(one, work), strict=True):
            for c, out in zip(by_backend[b], outs, strict=True):
                if isinstance(out, BenchError):
                    errors.setdefault(c, str(out))
                    cannot |= {c} if isinstance(out, Unsupported) else set()
                else:
                    found[c].append(out)
    counted = {c: ({"error": errors[c]} | ({"cannot": True} if c in cannot else {})) if c in errors
               else merged_counts(found[c]) for c in found}  # fmt: skip
    return {c: counted[same.get(c, c)] for c in cases}


def merged_counts(found: list[ProcessCount]) -> dict[str, Any]:
    """One case's counting processes in one row: the median count a step and each process's, their spread, and
    the medians of what is counted apart."""
    counts = sorted(p.instructions_per_step for p in found)
    first = found[0]
    out: dict[str, Any] = {
        "mode": first.mode,
        "device": first.device,
        "steps_counted": first.steps_counted,
        "calls_counted": first.calls_counted,
        "window_instructions": first.window_instructions,
    }
    out["instructions_per_step"] = statistics.median(counts)
    out["counts_per_step"] = [p.instructions_per_step for p in found]
    out["spread"] = (counts[-1] - counts[0]) / counts[0]
    for k in ("allocator_per_step", "allocations_per_step", "pool_per_step", "lookup_per_step", "lookups_per_step"):
        out[k] = statistics.median(getattr(p, k) for p in found)
    out["allocator_counts_per_step"] = [p.allocator_per_step for p in found]
    out["pids"] = [p.pid for p in found]
    out["cpus"] = [p.cpus for p in found]
    out["frameworks"] = sorted({f for p in found for f in p.frameworks})
    return out


def what_was_counted(version: str, o: Any) -> dict[str, Any]:
    """How a count run counts: valgrind's tool and options, the environment, what is counted apart."""
    return {"valgrind": version, "tool": "callgrind", "event": "Ir (instructions executed, all threads)",
            "options": valgrind_options(Path("DIR")), "environment": {**machine.thread_settings(1), **ENVIRON},
            "unset": list(UNSET), "prefix": no_aslr(), "pinned": "each worker to one CPU of its own",
            "project": "imported through a link in the run's temporary folder (counting.project), PYTHONSAFEPATH=1",
            "jax_config": {"jax_cpu_enable_async_dispatch": False},
            "allocator": {"functions": sorted(ALLOCATOR), "counted": "apart: instructions_per_step leaves out the"
                          " inclusive cost of every call into these from outside them, which is allocator_per_step;"
                          " allocations_per_step counts those calls"},
            "pool": {"functions": [f"{p}*" for p in POOL], "counted": "apart: instructions_per_step leaves out"
                     " the own (self) cost of these, the thread pools' search for work, which is pool_per_step"},
            "lookup": {"functions": sorted(LOOKUP), "counted": "apart: instructions_per_step leaves out the"
                       " inclusive cost of every call into CPython's type attribute cache, which is lookup_per_step;"
                       " lookups_per_step counts those calls"},
            "warmups": WARMUPS, "processes_per_backend": o.repeats,
            "window": f"calls of the slice (timer.Unit) after {WARMUPS} warm-up calls and a counted probe: one"
                      f" call, or as many as execute {WINDOW:.0e} instructions (at most {MAX_CALLS}), less an empty"
                      " window"}  # fmt: skip
