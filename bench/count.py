"""Exact instruction counts of a training step: ``python -m bench run --count``.

A wall-clock figure differs between hosts and between reruns; the number of instructions a step executes
does not, on the same software. Each backend runs in a worker process of its own environment under
valgrind's callgrind with instrumentation off (``--instr-atstart=no``), so that importing, building the
case and compiling run at valgrind's uninstrumented speed and are not counted. The worker builds the
case as ``bench.timing.measure`` does (``harness.build``, ``timing.Unit``: a fixed slice of the task's
schedule, converted into the framework once), calls the slice ``WARMUPS`` times (tracing, compiling and
hybridizing happen there), then switches instrumentation on around one more call of it: zero, start,
``unit()`` (which ends in the blocking read), stop, dump. The dump's total of instructions (``Ir``), less
what the calls into the allocators cost, glibc's and CPython's (``ALLOCATOR``: that depends on the heap's
layout, which is not the same in two processes; it is reported beside, with the number of those calls),
less the thread pools' own code (``POOL``: a worker's search for work lasts as long as the threads'
interleaving lets it; reported beside too), less what the lookups in CPython's type attribute cache cost
(``LOOKUP``: which of them collide depends on the version tags the process's history gave its types;
reported beside, with their number), less that of an empty window (the calls into the shim itself),
divided by the slice's steps is the case's instructions per step.

The client requests are compiled once per run from valgrind's own header (``valgrind/callgrind.h``) into
a tiny shared library in the run's temporary folder, which both environments load with ctypes.

Every thread pool is held to one thread (``machine.thread_settings(1)``, ``OMP_WAIT_POLICY=PASSIVE``,
MXNet's ``NaiveEngine``, jax's CPU client without async dispatch), so that the count is the work and no
spinning; ``PYTHONHASHSEED=0`` fixes Python's hashing. valgrind 3.19 runs no AVX-512: Inductor is told to
build its kernels for AVX2 (``ATEN_CPU_CAPABILITY=avx2``, ``TORCHINDUCTOR_CPP_MARCH=x86-64-v3``), which is
what every other framework's dispatch picks under valgrind anyway (valgrind's CPUID reports no AVX-512).
"""

from __future__ import annotations

import ctypes
import functools
import gc
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import backends
from bench import campaign, envs, harness, machine, outdir, procs, taskdata
from bench.campaign import Case, Settings

SHIM_VARIABLE = "AUTODIFF_BENCH_CALLGRIND_SHIM"  # the shim a worker loads
OUT_VARIABLE = "AUTODIFF_BENCH_CALLGRIND_OUT"  # the folder callgrind writes its dumps into
WARMUPS = 2  # uncounted calls of the slice before the counted ones
WINDOW = 20_000_000  # a case whose slice executes fewer instructions is counted over several calls of it, in one
MAX_CALLS = 20  # window, so that what a call costs once (its dispatch, the window's edges) weighs little
# seconds one count process may take by default (everything runs ~50× slower): two count runs side by side with
# the test suite lost 14 cases each, eager jax's and TensorFlow's processes past 1800 s (counts do not depend on load)
TIMEOUT = 3600.0
THRESHOLD = 0.005  # bench diff: a count that moved by more than this fraction is slower or faster
HEADER = "/usr/include/valgrind/callgrind.h"
INSTALL = "apt-get install valgrind"

SHIM_SOURCE = r"""
#include <valgrind/callgrind.h>
int autodiff_bench_on_valgrind(void) { return RUNNING_ON_VALGRIND; }
void autodiff_bench_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void autodiff_bench_stop(const char *label) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(label); }
"""

# What a counting worker's environment adds to a timing worker's (bench.campaign.environ)
ENVIRON = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "MXNET_ENGINE_TYPE": "NaiveEngine",
    "PYTHONHASHSEED": "0",
    "MALLOC_ARENA_MAX": "1",
    "ATEN_CPU_CAPABILITY": "avx2",
    "TORCHINDUCTOR_CPP_MARCH": "x86-64-v3",
}


class Missing(harness.BenchError):
    """What counting needs is not installed: one line naming the package."""


# The main process: valgrind, the shim, the command ---------------------------------------------------------------


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
        raise harness.BenchError(f"the callgrind shim did not compile: {out.stderr.strip()[-300:]}")
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
    heap's layout after importing follows those names: a clone at a path 5 characters longer moved
    numpy's counts by up to 0.32 %, where two clones at paths as long agreed within 0.011 % (issue 13)."""
    return scratch / "project"


class Counted(harness.Remote):
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


# The worker ------------------------------------------------------------------------------------------------------


class Shim:
    """The client requests, loaded with ctypes from SHIM_VARIABLE; its functions bound once here, so that
    a counted window holds nothing but the calls themselves."""

    def __init__(self) -> None:
        path = os.environ.get(SHIM_VARIABLE)
        if not path:
            raise harness.BenchError(f"count: no callgrind shim ({SHIM_VARIABLE} is not set): use bench run --count")
        lib = ctypes.CDLL(path)
        self.on_valgrind, self.start = lib.autodiff_bench_on_valgrind, lib.autodiff_bench_start
        self.stop = lib.autodiff_bench_stop
        self.stop.argtypes, self.stop.restype, self.start.restype = [ctypes.c_char_p], None, None
        self.folder = Path(os.environ.get(OUT_VARIABLE, "."))

    def count(self, fn: Callable[[], Any], label: str) -> Dump:
        """The instructions of one call of ``fn``, all threads together."""
        gc.collect()  # the same collector state before every window: no collection left over from before
        self.start()
        fn()
        self.stop(label.encode())
        return read_dump(self.folder, os.getpid(), label)


# The allocators: glibc's, and CPython's own for small objects (pymalloc, which takes most of an eager step's
# allocations). What one call costs depends on how the heap is laid out, and that differs between processes
# that run the same code: a thread that allocated a little earlier, a compile worker, an address that hashes
# otherwise. Between two processes of one case, every function but glibc's agreed to a few instructions, and
# glibc's moved by 0.2-2 % of jax-jit's count (issue 13); with glibc's apart, two runs still differed by up
# to 0.3 % (torch, torch-compile), and there pymalloc's _PyObject_Malloc and _PyObject_Free came first. So
# they are counted apart: a count is the rest, the allocators' instructions and the calls into them beside it.
ALLOCATOR = frozenset({"malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign",
                       "aligned_alloc", "valloc", "pvalloc", "cfree",
                       "_PyObject_Malloc", "_PyObject_Calloc", "_PyObject_Realloc", "_PyObject_Free"})  # fmt: skip


# CPython's type attribute cache (``_PyType_Lookup``): 4096 entries indexed by a type's version tag and the
# name's hash. Version tags are handed out from one counter, in the order the process first looks a type up
# after it was made or modified, so which lookups of a step collide and fall through to the type's MRO
# (find_name_in_mro, its dict lookups) is a matter of the process's history. Two processes of one run counted
# torch-nn's quadratic (float32) 0.106 % apart, all of it in these functions; with the inclusive cost of the
# calls into _PyType_Lookup apart, 0.002 % (issue 13). Counted apart as the allocators are: the calls beside.
LOOKUP = frozenset({"_PyType_Lookup"})


# The thread pools' own code: Eigen's, which XLA (jax, TensorFlow) runs its intra-op pool on. XLA's CPU runtime
# hands the independent parts of a compiled step to that pool (ThunkExecutor, by sizes fixed in its code, read
# from no flag), and a worker that finds no more work spins in MaybeGetTask before it sleeps, for as many rounds
# as valgrind's scheduler leaves it before the caller posts the next part: four processes of jax-jit's
# mlp-momentum spun 301 k, 601 k, 801 k and 801 k instructions in one window (2.9 % of the count), where every
# other function agreed to a few hundred (issue 13). So the pool's code is counted apart as the allocators are,
# by its own (self) cost: the work the pool runs is still counted, in the functions that do it.
POOL = ("Eigen::ThreadPoolTempl<", "Eigen::RunQueue<", "Eigen::EventCount::")


class Dump(NamedTuple):
    """One window's instructions (``Ir``), all threads: in all, inside the allocator, its calls into it, the
    thread pools' own (POOL), and inside the type attribute cache (LOOKUP) with the calls into it."""

    total: int
    allocator: int
    allocations: int
    pool: int = 0
    lookup: int = 0
    lookups: int = 0

    def __sub__(self, other: Dump) -> Dump:  # type: ignore[override]
        return Dump(*(a - b for a, b in zip(self, other, strict=True)))


def costs(text: str) -> Dump:
    """A callgrind dump's totals, with the inclusive cost of every call into ALLOCATOR from outside it, and into
    LOOKUP likewise, and the self cost of POOL's functions. In the format, ``fn=`` names the function whose
    lines follow, ``cfn=`` a callee, ``calls=`` the number of calls to it, and the line after that the calls'
    inclusive cost; any
    other line that starts with a position (a number, ``+``, ``-`` or ``*``) is a cost of the function
    itself; a name is given once, with its ``(id)``, and the id alone after that."""
    names: dict[str, str] = {}
    caller = callee = ""
    allocator = allocations = pool = lookup = lookups = 0
    in_pool = False
    total: int | None = None
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith(("fn=", "cfn=")):
            key, _, rest = line.partition("=")
            ref, _, name = rest.partition(" ")
            names[ref] = name = name or names.get(ref, ref)
            caller, callee = (name, "") if key == "fn" else (caller, name)
            in_pool = caller.startswith(POOL)
        elif line.startswith("calls="):
            cost = next(lines, "").split()
            calls, inclusive = int(line[6:].split()[0]), int(cost[1]) if len(cost) > 1 else 0
            if callee in ALLOCATOR and caller not in ALLOCATOR:
                allocations, allocator = allocations + calls, allocator + inclusive
            elif callee in LOOKUP and caller not in LOOKUP:
                lookups, lookup = lookups + calls, lookup + inclusive
        elif in_pool and line[:1] in "0123456789+-*":
            cost = line.split()
            pool += int(cost[1]) if len(cost) > 1 else 0
        elif line.startswith("totals:"):
            total = int(line.split()[1])
    if total is None:
        raise harness.BenchError("a callgrind dump has no totals line")
    return Dump(total, allocator, allocations, pool, lookup, lookups)


def read_dump(folder: Path, pid: int, label: str) -> Dump:
    """The costs of the dump callgrind wrote for ``label`` (the file is removed once read)."""
    trigger = f"desc: Trigger: Client Request: {label}"
    for path in sorted(folder.glob(f"callgrind.out.{pid}.*")):
        text = path.read_text(errors="replace")
        if trigger not in text.splitlines():
            continue
        path.unlink()
        return costs(text)
    raise harness.BenchError(f"callgrind wrote no dump for {label} into {folder}")


def inline_jax() -> None:
    """jax's CPU client runs each computation on the calling thread, not on a thread of its pool
    (``jax_cpu_enable_async_dispatch``, a flag jax reads from no environment variable: set here before the
    client is made; no effect once it is). Dispatched to the pool, a computation's worker went on to spin in
    Eigen's steal loop for as long as the scheduler let it, and its allocations interleaved with the
    caller's: 1-14 % between processes (issue 13)."""
    import jax

    jax.config.update("jax_cpu_enable_async_dispatch", False)


@functools.cache  # once a process
def cold_caches() -> None:
    """This process's compile caches of its own, empty (torch.compile's, which Inductor finds by
    TORCHINDUCTOR_CACHE_DIR when it first compiles: the run's timing workers share one, bench.campaign.environ):
    every counting process then compiles cold. A process that found its graphs compiled by an earlier one
    went on to count 0.2-0.9 % fewer instructions a step in torch.compile's cases than the process that
    compiled them (issue 13)."""
    shared = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or tempfile.gettempdir())
    shared.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="torchinductor-", dir=shared)


def count(task: str, backend: str, dtype: str = "float64", device: str = "cpu", n: int | None = None,
          steps: int = 100, warmups: int = WARMUPS, label: str = "") -> dict[str, Any]:  # fmt: skip
    """One case's instructions per training step, in this process (which valgrind runs)."""
    from bench.timing import FRAMEWORKS, Unit

    shim = Shim()
    if not shim.on_valgrind():
        raise harness.BenchError("count: this process is not running under valgrind")
    if backends.BACKENDS[backend].framework == "jax":
        inline_jax()
    cold_caches()
    b = harness.build(task, backend, dtype, device, n=n)
    unit = Unit(b, steps)
    for _ in range(warmups):
        unit()
    label = label or "-".join(str(p) for p in (task, n, backend, dtype) if p is not None)
    empty = shim.count(lambda: None, f"{label} (empty)")  # also the window's own first use
    probe = shim.count(unit, f"{label} (probe)").total - empty.total
    calls = min(MAX_CALLS, max(1, math.ceil(WINDOW / max(1, probe))))
    counted = shim.count(lambda: [unit() for _ in range(calls)], label) - empty
    losses = unit.losses()
    if not all(map(math.isfinite, losses)):
        raise harness.Diverged(next(i for i, v in enumerate(losses) if not math.isfinite(v)) + 1)
    steps = calls * unit.steps
    exact = counted.total - counted.allocator - counted.pool - counted.lookup
    return {"mode": b.mode, "device": b.device, "steps_counted": unit.steps, "calls_counted": calls,
            "instructions": exact, "instructions_per_step": exact / steps,
            "allocator_per_step": counted.allocator / steps, "allocations_per_step": counted.allocations / steps,
            "pool_per_step": counted.pool / steps, "lookup_per_step": counted.lookup / steps,
            "lookups_per_step": counted.lookups / steps,
            "window_instructions": empty.total, "cpus": procs.affinity(),
            "pid": os.getpid(), "frameworks": sorted(FRAMEWORKS & sys.modules.keys())}  # fmt: skip


# The campaign ----------------------------------------------------------------------------------------------------


def count_call(c: Case, settings: Settings) -> dict[str, Any]:
    """What each count call is asked: the slice a timing round trains at most (bench.campaign.measure_call)."""
    timed = campaign.measure_call(c, settings)
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
    timed = {k: v for k, v in campaign.environ(settings, data, scratch).items() if k not in UNSET}
    return {**timed, **machine.thread_settings(1), **ENVIRON,
            procs.PIN: "",  # each worker is held to a CPU of its own by run's Workers
            SHIM_VARIABLE: str(shim), OUT_VARIABLE: str(scratch / "callgrind"), "PYTHONPATH": path,
            "PYTHONSAFEPATH": "1"}  # fmt: skip


def run(cases: list[Case], settings: Settings, progress: campaign.Progress | None = None,
        jobs: int = 1) -> dict[Case, dict[str, Any]]:  # fmt: skip
    """Count every case: ``settings.repeats`` processes per backend (counts are exact: one suffices),
    ``jobs`` processes at a time, each held to one CPU of its own. A thread pool sized by the CPUs a process
    may use (XLA's intra-op pool, which jax's large elementwise loops were split over) then has one
    thread, and the work runs on the caller: unpinned, its idle worker spun in Eigen's steal loop for as
    long as the scheduler let it, 10 % of eager jax's count at N = 10⁶ and 8 % between two runs (issue 13).
    A count does not depend on what else the machine does. Each case's
    record: ``instructions_per_step`` (the median over its processes) and every process's count, or
    ``{"error": why}``. A sweep's case that is a task case as well (``campaign.twins``) is counted once, as
    the task case: the same computation, one figure."""
    same = campaign.twins(cases)
    if progress is not None:
        progress.skip(len(same) * settings.repeats)
    by_backend: dict[str, list[Case]] = {}
    for c in cases:
        if c not in same:
            by_backend.setdefault(c.backend, []).append(c)
    found: dict[Case, list[dict[str, Any]]] = {c: [] for b in by_backend.values() for c in b}
    errors: dict[Case, str] = {}
    with tempfile.TemporaryDirectory(prefix="autodiff-bench-count-") as scratch:
        shim = build_shim(Path(scratch))
        project(Path(scratch)).symlink_to(envs.ROOT, target_is_directory=True)
        env = environ(settings, taskdata.ship(Path(scratch), {(c.task, c.n) for c in cases}), Path(scratch), shim)

        workers = campaign.Workers(jobs, Counted, cpus=procs.pinned(max(1, jobs)))

        def one(r: int, b: str) -> list[Any]:
            calls = [("count", count_call(c, settings)) for c in by_backend[b]]
            what = f"[count {r + 1}/{settings.repeats}] {b}"
            return campaign.processes(b, calls, env, settings, progress, what, by_backend[b], workers.remote)

        work = [(r, b) for r in range(settings.repeats) for b in by_backend]  # in the order given (--backends)
        for (_, b), outs in zip(work, workers.map(one, work), strict=True):
            for c, out in zip(by_backend[b], outs, strict=True):
                if isinstance(out, harness.BenchError):
                    errors.setdefault(c, str(out))
                else:
                    found[c].append(out)
    counted = {c: {"error": errors[c]} if c in errors else merged(found[c]) for c in found}
    return {c: counted[same.get(c, c)] for c in cases}


def merged(found: list[dict[str, Any]]) -> dict[str, Any]:
    counts = sorted(p["instructions_per_step"] for p in found)
    out = {k: found[0][k] for k in ("mode", "device", "steps_counted", "calls_counted", "window_instructions")}
    out["instructions_per_step"] = statistics.median(counts)
    out["counts_per_step"] = [p["instructions_per_step"] for p in found]
    out["spread"] = (counts[-1] - counts[0]) / counts[0]
    for k in ("allocator_per_step", "allocations_per_step", "pool_per_step", "lookup_per_step", "lookups_per_step"):
        out[k] = statistics.median(p[k] for p in found)
    out["allocator_counts_per_step"] = [p["allocator_per_step"] for p in found]
    out["pids"] = [p["pid"] for p in found]
    out["cpus"] = [p["cpus"] for p in found]
    out["frameworks"] = sorted({f for p in found for f in p["frameworks"]})
    return out


# The results -----------------------------------------------------------------------------------------------------


def what_was_counted(version: str, o: Any) -> dict[str, Any]:
    return {"valgrind": version, "tool": "callgrind", "event": "Ir (instructions executed, all threads)",
            "options": valgrind_options(Path("DIR")), "environment": {**machine.thread_settings(1), **ENVIRON},
            "unset": list(UNSET), "prefix": no_aslr(), "pinned": "each worker to one CPU of its own",
            "project": "imported through a link in the run's temporary folder (count.project), PYTHONSAFEPATH=1",
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
            "window": f"calls of the slice (timing.Unit) after {WARMUPS} warm-up calls and a counted probe: one"
                      f" call, or as many as execute {WINDOW:.0e} instructions (at most {MAX_CALLS}), less an empty"
                      " window"}  # fmt: skip


def rows_of(cases: list[Case], found: dict[Case, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for c in cases:
        row: dict[str, Any] = {"kind": c.kind, "task": c.task, "backend": c.backend, "dtype": c.dtype}
        rows.append(row | ({} if c.n is None else {"n": c.n}) | found[c])
    return rows


TABLES = {"instructions_per_step": "Instructions per step, the allocators apart",
          "allocations_per_step": "Calls into the allocators per step"}  # fmt: skip


def tables(rows: list[dict[str, Any]], o: Any) -> list[str]:
    """The Markdown tables, for each of TABLES: per dtype, backend × task; per dtype, backend × N of the
    quadratic sweep."""
    from bench.report import instructions, markdown_table, size

    parts = []
    for value, what in TABLES.items():
        for kind in ("speed", "scaling"):
            mine = [r for r in rows if r["kind"] == kind]
            for d in [d for d in ("float64", "float32") if any(r["dtype"] == d for r in mine)]:
                here = [r for r in mine if r["dtype"] == d]
                key = "n" if kind == "scaling" else "task"
                columns = list(dict.fromkeys(r[key] for r in here))
                found = {(r["backend"], r[key]): r for r in here}

                def cell(r: dict[str, Any] | None) -> str:
                    return "—" if r is None else "failed" if "error" in r else instructions(r[value])  # noqa: B023

                body = [[b, *(cell(found.get((b, col))) for col in columns)] for b in o.backends]
                if kind == "speed":
                    title, header = f"### {what} ({d})", ["backend", *columns]
                else:
                    title, header = f"### {what}, quadratic by N ({d})", ["backend", *(size(n) for n in columns)]
                parts.append(f"{title}\n\n" + markdown_table(header, body))
    return parts


def write(out: Path, o: Any, rows: list[dict[str, Any]], wall: float, env: dict[str, Any], version: str,
          workers: dict[str, Any]) -> str:  # fmt: skip
    """results.json, counts.csv and README.md of a count run; returns the summary."""
    from bench.report import beside, origin, started, write_csv

    out.mkdir(parents=True)
    counted = what_was_counted(version, o)
    result = {"command": o.command(), "date": started(wall), "wall_s": wall, "environment": env, "count": counted,
              "threads": 1, "device": "cpu", "quick": o.quick, "repeats": o.repeats, "cases": rows,
              "workers": workers}  # fmt: skip
    (out / "results.json").write_text(json.dumps(result, indent=1))
    write_csv(out / "counts.csv", rows, ["kind", "task", "n", "backend", "dtype", "mode", "instructions_per_step",
                                         "allocator_per_step", "allocations_per_step", "pool_per_step", "steps_counted",
                                         "spread", "error"])  # fmt: skip
    summary = "\n\n".join([
        f"Instructions per training step, counted by {version} (callgrind, `Ir`, all threads), one thread per "
        f"framework; {o.repeats} process{'es' if o.repeats != 1 else ''} per backend. A count is the same on every "
        "host with the same software (not on other versions of the packages, nor across ISAs: torch.compile's "
        "kernels are built for AVX2 here); it is not a time.", *tables(rows, o)])  # fmt: skip
    said = [f"These counts were made on {origin(result)}."]
    try:
        timed = json.loads((o.out.parent / "results.json").read_text())  # a count in results/count: the timings'
    except (OSError, ValueError):
        timed = None
    if isinstance(timed, dict) and "count" not in timed and "environment" in timed:
        said.append(beside(result, timed, "The timings in", "../", "../README.md"))
    summary = " ".join(said) + "\n\n" + summary
    failed = [r for r in rows if "error" in r]
    made = f"Made by `{o.command()}` in {wall / 60:.1f} min. Do not edit: rerun it."
    readme = f"# autodiff-bench instruction counts\n\n{made}\n\n{summary}\n"
    if failed:
        from bench.report import failure_list

        readme += "\n## Failed cases\n\n" + failure_list(failed) + "\n"
    (out / "README.md").write_text(readme)
    return summary


def run_command(o: Any) -> int:
    """``python -m bench run --count``: count every case, write the results folder; 0 when every case has
    its count, else 1."""
    from bench import run as bench_run
    from bench.report import failure_list

    version = valgrind_version()
    started, env = time.time(), machine.environment("cpu")  # the commit and versions that run, read first
    settings = Settings(repeats=o.repeats, threads=1, device="cpu", quick=o.quick, timeout=o.timeout)
    cases = bench_run.cases(o)
    folder = outdir.ResultsFolder(o.out)
    progress = campaign.Progress(len(cases) * o.repeats)
    try:
        with folder:
            # The workers' files (task data, callgrind's dumps, answers) go in the system's temporary folder,
            # removed at the end, not in the results folder: the paths a worker is given are then as long
            # in every run whatever --out is, and so is its heap's layout (an --out 25 characters longer
            # moved numpy's counts by 0.1 %, through CPython's caches that hash addresses)
            try:
                found = run(cases, settings, progress, jobs=o.jobs)
            finally:
                progress.close()
            rows = rows_of(cases, found)
            failed = [r for r in rows if "error" in r]
            if len(failed) == len(rows):
                print(failure_list(failed), file=sys.stderr)
                raise harness.BenchError(f"no case was counted: {o.out} unchanged")
            summary = write(folder.staging / "results", o, rows, time.time() - started, env, version,
                            bench_run.worker_environments(o))  # fmt: skip
            folder.commit(folder.staging / "results")
    except KeyboardInterrupt:
        done = "the results were written" if folder.committed else "unchanged"
        raise bench_run.Interrupted(f"interrupted; {o.out} {done}") from None
    print(summary)
    if failed:
        print(failure_list(failed), file=sys.stderr)
        print(f"error: {len(failed)} of {len(rows)} cases failed; the results in {o.out} say why", file=sys.stderr)
        return 1
    return 0
