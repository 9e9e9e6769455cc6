"""Exact instruction counts of a training step, inside a worker that valgrind's callgrind runs with
instrumentation off (``--instr-atstart=no``; bench.campaign.counting starts it): importing, building the
case and compiling run at valgrind's uninstrumented speed and are not counted.

``count`` builds the case as the timer does (``training.build``, ``timer.Unit``: a fixed slice of the task's
schedule, converted into the framework once), calls the slice ``WARMUPS`` times (tracing, compiling and
hybridizing happen there), then switches instrumentation on around more calls of it: zero, start,
``unit()`` (which ends in the blocking read), stop, dump. The dump's total of instructions (``Ir``), less
what the calls into the allocators cost, glibc's and CPython's (``ALLOCATOR``: that depends on the heap's
layout, which is not the same in two processes; it is reported beside, with the number of those calls),
less the thread pools' own code (``POOL``: a worker's search for work lasts as long as the threads'
interleaving lets it; reported beside too), less what the lookups in CPython's type attribute cache cost
(``LOOKUP``: which of them collide depends on the version tags the process's history gave its types;
reported beside, with their number), less that of an empty window (the calls into the shim itself),
divided by the slice's steps is the case's instructions per step.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import backends
from bench.core.errors import BenchError
from bench.core.records import ProcessCount
from bench.host import procs
from bench.worker import timer, training

SHIM_VARIABLE = "AUTODIFF_BENCH_CALLGRIND_SHIM"  # the shim a worker loads
OUT_VARIABLE = "AUTODIFF_BENCH_CALLGRIND_OUT"  # the folder callgrind writes its dumps into
WARMUPS = 2  # uncounted calls of the slice before the counted ones
WINDOW = 20_000_000  # a case whose slice executes fewer instructions is counted over several calls of it, in one
MAX_CALLS = 20  # window, so that what a call costs once (its dispatch, the window's edges) weighs little


class Shim:
    """The client requests, loaded with ctypes from SHIM_VARIABLE; its functions bound once here, so that
    a counted window holds nothing but the calls themselves."""

    def __init__(self) -> None:
        path = os.environ.get(SHIM_VARIABLE)
        if not path:
            raise BenchError(f"count: no callgrind shim ({SHIM_VARIABLE} is not set): use bench run --count")
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
# otherwise. Between two processes of one case the allocators' functions (glibc's, then pymalloc's
# _PyObject_Malloc and _PyObject_Free) are what moves while every other function agrees to a few instructions.
# So they are counted apart: a count is the rest, the allocators' instructions and the calls into them beside it.
ALLOCATOR = frozenset({"malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign",
                       "aligned_alloc", "valloc", "pvalloc", "cfree",
                       "_PyObject_Malloc", "_PyObject_Calloc", "_PyObject_Realloc", "_PyObject_Free"})  # fmt: skip
# CPython's type attribute cache (``_PyType_Lookup``): 4096 entries indexed by a type's version tag and the
# name's hash. Version tags are handed out from one counter, in the order the process first looks a type up
# after it was made or modified, so which lookups of a step collide and fall through to the type's MRO
# (find_name_in_mro, its dict lookups) is a matter of the process's history, and two processes of one run part
# there and almost nowhere else. Counted apart as the allocators are: the calls beside.
LOOKUP = frozenset({"_PyType_Lookup"})
# The thread pools' own code: Eigen's, which XLA (jax, TensorFlow) runs its intra-op pool on. XLA's CPU runtime
# hands the independent parts of a compiled step to that pool (ThunkExecutor, by sizes fixed in its code, read
# from no flag), and a worker that finds no more work spins in MaybeGetTask before it sleeps, for as many rounds
# as valgrind's scheduler leaves it before the caller posts the next part: a count of a few percent that differs
# from process to process. So the pool's code is counted apart as the allocators are, by its own (self) cost:
# the work the pool runs is still counted, in the functions that do it.
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
        raise BenchError("a callgrind dump has no totals line")
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
    raise BenchError(f"callgrind wrote no dump for {label} into {folder}")


def inline_jax() -> None:
    """jax's CPU client runs each computation on the calling thread, not on a thread of its pool
    (``jax_cpu_enable_async_dispatch``, a flag jax reads from no environment variable: set here before the
    client is made; no effect once it is). Dispatched to the pool, a computation's worker went on to spin in
    Eigen's steal loop for as long as the scheduler let it, and its allocations interleaved with the
    caller's: a count that differed from process to process."""
    import jax

    jax.config.update("jax_cpu_enable_async_dispatch", False)


@functools.cache  # once a process
def cold_caches() -> None:
    """This process's compile caches of its own, empty (torch.compile's, which Inductor finds by
    TORCHINDUCTOR_CACHE_DIR when it first compiles: the run's timing workers share one, bench.campaign.environ):
    every counting process then compiles cold: a process that finds its graphs compiled by an earlier one counts
    fewer instructions a step in torch.compile's cases than the process that compiled them."""
    shared = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or tempfile.gettempdir())
    shared.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="torchinductor-", dir=shared)


def count(task: str, backend: str, dtype: str = "float64", device: str = "cpu", n: int | None = None,
          steps: int = 100, warmups: int = WARMUPS, label: str = "") -> dict[str, Any]:  # fmt: skip
    """One case's instructions per training step, in this process (which valgrind runs)."""
    shim = Shim()
    if not shim.on_valgrind():
        raise BenchError("count: this process is not running under valgrind")
    if backends.BACKENDS[backend].framework == "jax":
        inline_jax()
    cold_caches()
    b = training.build(task, backend, dtype, device, n=n)
    unit = timer.Unit(b, steps)
    for i in range(warmups):
        unit()
        if i == 0:  # from the initial parameters: the schedule's own first steps
            timer.on_schedule(unit)
    label = label or "-".join(str(p) for p in (task, n, backend, dtype) if p is not None)
    empty = shim.count(lambda: None, f"{label} (empty)")  # also the window's own first use
    probe = shim.count(unit, f"{label} (probe)").total - empty.total
    calls = min(MAX_CALLS, max(1, math.ceil(WINDOW / max(1, probe))))
    counted = shim.count(lambda: [unit() for _ in range(calls)], label) - empty
    if not all(map(math.isfinite, unit.losses())):  # the task's own step, where its schedule diverges
        raise timer.divergence((task, backend, dtype, device, n), unit, (warmups + 1 + calls) * unit.steps)
    steps = calls * unit.steps
    exact = counted.total - counted.allocator - counted.pool - counted.lookup
    return ProcessCount(mode=b.mode, device=b.device, steps_counted=unit.steps, calls_counted=calls,
                        instructions=exact, instructions_per_step=exact / steps,
                        allocator_per_step=counted.allocator / steps,
                        allocations_per_step=counted.allocations / steps, pool_per_step=counted.pool / steps,
                        lookup_per_step=counted.lookup / steps, lookups_per_step=counted.lookups / steps,
                        window_instructions=empty.total, cpus=procs.affinity(), pid=os.getpid(),
                        frameworks=sorted(timer.FRAMEWORKS & sys.modules.keys()))  # fmt: skip
