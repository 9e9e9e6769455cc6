"""The memory-read floor: the fastest this machine reads an array far larger than any cache.

A step that reads B bytes from memory takes at least B / bandwidth, so the bandwidth must be the best
any code here reaches, not one kernel's: a framework's compiled step can read memory faster than a given
kernel does, and would then come out under 1× a floor that kernel measured. So the floor is the best of
several kernels, thread counts and dtypes on one 800 MiB array (float64, then float32):

- ``numpy-dot``: BLAS's dot of each part with itself, the array split over t threads, t = 1..T;
- ``numpy-sum``: numpy's ``add.reduce`` of each part, split the same way;
- ``torch-sum``: ``x.sum()`` under ``torch.set_num_threads(t)``, t = 1..T;
- ``torch-compile-sum``: a ``torch.compile``'d sum at T threads (compiled before the clock);
- ``jax-jit-sum``: ``jax.jit(jnp.sum)`` (then ``block_until_ready``), XLA's threads as the environment sets them.

Each is the best of a few reads. A kernel whose framework is missing or fails
is an ``"error: ..."`` entry and the others go on.

It runs as its own process of the main environment, so that torch and jax load there and the caller
stays free of them: ``python -m bench.worker.floor --threads T`` prints one JSON line,
``{"bytes_per_s": best, "kernel": winner, "kernels": {name: bytes_per_s or "error: ..."}, ...}``, and
``bandwidth(T)`` runs that with the thread settings of a timing worker and returns the dict.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from bench.core.cases import DTYPES
from bench.core.errors import BenchError, Failed
from bench.host import envs
from bench.host.machine import thread_settings

if TYPE_CHECKING:
    import numpy as np

NBYTES = 800 * 2**20  # far larger than any cache
REPEATS = 5

Read = Callable[[], object]
Kernel = Callable[["np.ndarray", int], Iterator[tuple[int, Read]]]  # (array, T) -> (threads, read) for each count


def split(reduce: Callable[[Any], object], a: np.ndarray, threads: int) -> Iterator[tuple[int, Read]]:
    """``reduce`` of each of t parts of ``a`` on its own thread, for t = 1..T, with BLAS held to one
    thread of its own (OpenBLAS threads a long dot: two parts would run four threads on two cores)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        for t in range(1, threads + 1):
            parts = np.array_split(a, t)
            with ThreadPoolExecutor(t) as pool:
                yield t, lambda pool=pool, parts=parts: list(pool.map(reduce, parts))


def numpy_dot(a: np.ndarray, threads: int) -> Iterator[tuple[int, Read]]:
    import numpy as np

    return split(lambda p: np.dot(p, p), a, threads)


def numpy_sum(a: np.ndarray, threads: int) -> Iterator[tuple[int, Read]]:
    import numpy as np

    return split(np.add.reduce, a, threads)


def torch_sum(a: np.ndarray, threads: int) -> Iterator[tuple[int, Read]]:
    import torch

    x = torch.from_numpy(a)  # the same memory
    try:
        for t in range(1, threads + 1):
            torch.set_num_threads(t)
            yield t, x.sum
    finally:
        torch.set_num_threads(threads)


def torch_compile_sum(a: np.ndarray, threads: int) -> Iterator[tuple[int, Read]]:
    import torch

    torch.set_num_threads(threads)
    x = torch.from_numpy(a)
    total = torch.compile(torch.sum)
    total(x)  # compiles
    yield threads, lambda: total(x)


def jax_jit_sum(a: np.ndarray, threads: int) -> Iterator[tuple[int, Read]]:
    import jax

    jax.config.update("jax_enable_x64", True)  # else float64 would be read as float32
    import jax.numpy as jnp

    x = jnp.from_dlpack(a)  # the same memory (``aligned`` makes it 64-byte aligned, as XLA needs); a copy else
    total = jax.jit(jnp.sum)
    total(x).block_until_ready()  # compiles
    yield threads, lambda: total(x).block_until_ready()


KERNELS: dict[str, Kernel] = {
    "numpy-dot": numpy_dot,
    "numpy-sum": numpy_sum,
    "torch-sum": torch_sum,
    "torch-compile-sum": torch_compile_sum,
    "jax-jit-sum": jax_jit_sum,
}


def aligned(nbytes: int, alignment: int = 64) -> np.ndarray:
    """``nbytes`` of float64 ones, starting at a multiple of ``alignment`` bytes: written once, so that
    every page is real memory (a fresh np.zeros would read the kernel's shared zero page)."""
    import numpy as np

    buffer = np.empty(nbytes // 8 + alignment // 8)
    start = (-buffer.ctypes.data % alignment) // 8
    a = buffer[start : start + nbytes // 8]
    a.fill(1.0)
    return a


def best_read(read: Read, nbytes: int, repeats: int) -> float:
    """Bytes/s of the fastest of ``repeats`` reads (compiling is done by then, and the memory paged in:
    a slow first read is simply not the best)."""
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        read()
        fastest = min(fastest, time.perf_counter() - start)
    return nbytes / fastest


def floor(threads: int, nbytes: int = NBYTES, repeats: int = REPEATS, kernels: list[str] | None = None) -> dict:
    """Every kernel at every thread count and dtype, in this process; the best is the floor.
    Thread settings must be in the environment before numpy loads: ``bandwidth`` and ``main`` see to it."""
    started = time.perf_counter()
    figures: dict[str, float | str] = {}
    memory = aligned(nbytes)  # made once (paging 800 MiB in takes seconds); float32 reads the same bytes
    for dtype in DTYPES:
        a = memory.view(dtype)
        for name in kernels or KERNELS:
            try:
                for t, read in KERNELS[name](a, threads):
                    figures[f"{name} {dtype} t={t}"] = best_read(read, a.nbytes, repeats)
            except Exception as e:  # a missing or failing framework: that kernel's entry says why
                figures[f"{name} {dtype}"] = f"error: {Failed.of(e)}"
    measured = {k: v for k, v in figures.items() if isinstance(v, float)}
    winner = max(measured, key=measured.__getitem__) if measured else None
    return {
        "bytes_per_s": measured[winner] if winner else None,
        "kernel": winner,
        "kernels": figures,
        "threads": threads,
        "nbytes": nbytes,
        "seconds": time.perf_counter() - started,
    }


def command(threads: int, nbytes: int = NBYTES, repeats: int = REPEATS) -> list[str]:
    return [str(envs.python("main")), "-m", "bench.worker.floor", "--threads", str(threads), "--bytes", str(nbytes),
            "--repeats", str(repeats)]  # fmt: skip


def printed(stdout: str) -> dict | None:
    """The figure bench.worker.floor printed: its last line that is a JSON object with a ``bytes_per_s``."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            result = json.loads(line)
        except ValueError:
            continue
        if isinstance(result, dict) and "bytes_per_s" in result:
            return result
    return None


def how_it_ended(code: int) -> str:
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"


def bandwidth(threads: int, nbytes: int = NBYTES, repeats: int = REPEATS, timeout: float = 300) -> dict:
    """The floor at ``threads`` threads, measured in a fresh process of the main environment (this one
    imports no framework). A figure the process printed is kept even if the process then died (a
    framework's thread pool torn down at exit: the result says so under ``"exit"``). Raises BenchError
    when that process printed no figure or measured nothing."""
    env = {**os.environ, **thread_settings(threads)}
    try:
        done = subprocess.run(command(threads, nbytes, repeats), cwd=envs.ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BenchError(f"bench.worker.floor took over {timeout:g} s") from None
    result = printed(done.stdout)
    last = (done.stderr.strip().splitlines() or [""])[-1].strip()
    if result is None:
        raise BenchError(f"bench.worker.floor failed: {last or how_it_ended(done.returncode)}")
    if not result["bytes_per_s"]:
        raise BenchError(f"bench.worker.floor measured nothing: {result['kernels']}")
    if done.returncode:
        result["exit"] = f"{how_it_ended(done.returncode)} after printing its figure" + (f": {last}" if last else "")
    return result


def attempt(threads: int, **read: Any) -> dict:
    """``bandwidth(threads, **read)``, or ``{"error": why}``: a floor that cannot be measured never stops a run."""
    try:
        return bandwidth(threads, **read)
    except BenchError as e:
        return {"error": str(e)}


def best(*tries: dict) -> dict:
    """The best of several ``attempt``s (a busy moment lowers one of them), with every figure in
    ``measured_gb_s`` and every failure in ``errors``; ``{"error": why, ...}`` when none measured."""
    good = [f for f in tries if f.get("bytes_per_s")]
    errors = list(dict.fromkeys(f["error"] for f in tries if "error" in f))
    if not good:
        return {"error": "; ".join(errors) or "not measured", "measured_gb_s": []}
    found = max(good, key=lambda f: f["bytes_per_s"]) | {"measured_gb_s": [
        round(f["bytes_per_s"] / 1e9, 2) for f in good]}  # fmt: skip
    return found | ({"errors": errors} if errors else {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker.floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--bytes", type=int, default=NBYTES, help="size of the array read (default 800 MiB)")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="reads of each kernel, the best kept")
    parser.add_argument("--kernels", help=f"comma-separated, of {', '.join(KERNELS)} (default: all)")
    a = parser.parse_args(argv)
    if not 1 <= a.threads <= (os.cpu_count() or 1):
        parser.error(f"--threads must be 1 to {os.cpu_count()}")
    unknown = set(a.kernels.split(",")) - set(KERNELS) if a.kernels else set()
    if unknown:
        parser.error(f"unknown kernels: {', '.join(sorted(unknown))}")
    os.environ.update(thread_settings(a.threads))  # before numpy, torch or jax loads
    result = floor(a.threads, a.bytes, a.repeats, a.kernels.split(",") if a.kernels else None)
    print(json.dumps(result), flush=True)
    return 0 if result["bytes_per_s"] else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without Python's finalisation and C++'s static destructors: torch's, XLA's and OpenBLAS's
    # thread pools are torn down there, and one destroyed while its thread still runs aborts the process
    # ("terminate called without an active exception") after the figure was printed. Nothing is left to do.
    os._exit(code)
