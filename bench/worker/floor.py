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

The compute floor, beside it: the best floating-point operations a second a square matrix product reaches here
in a dtype, at a timing worker's threads and on its CPUs (``procs.pinned``), of ``a @ b`` at n = 256, 512 and
1,024 (the sizes of the width sweep's products), each the best of a few, with numpy (its BLAS, whose kernel the
record names), torch and ``jax.jit``: ``python -m bench.worker.floor --compute --threads T --dtypes float64``
prints ``{"by_dtype": {dtype: {"flop_per_s": best, "kernel": winner, "kernels": {...}}}, "blas": ..., ...}``, and
``compute_floor(T, dtypes)`` runs that (as the timing workers run: ``--native-blas`` without the BLAS variables).
A step of n·n·k multiply-adds takes at least 2·n·n·k / flop_per_s.
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
from bench.host import envs, machine, procs
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


MATMUL_SIZES = (256, 512, 1024)
MATMUL_REPEATS = 5
Product = Callable[["np.ndarray", "np.ndarray", int], Read]  # (a, b, threads) -> a call computing a @ b


def numpy_matmul(a: np.ndarray, b: np.ndarray, threads: int) -> Read:
    """numpy's BLAS, held to ``threads`` threads by ``compute`` (numpy is loaded before this module's ``main`` sets
    the variables)."""
    import numpy as np

    out = np.empty_like(a)
    return lambda: np.matmul(a, b, out=out)


def torch_matmul(a: np.ndarray, b: np.ndarray, threads: int) -> Read:
    import torch

    torch.set_num_threads(threads)
    x, y = torch.from_numpy(a), torch.from_numpy(b)
    out = torch.empty_like(x)
    return lambda: torch.mm(x, y, out=out)


def jax_jit_matmul(a: np.ndarray, b: np.ndarray, threads: int) -> Read:
    import jax

    jax.config.update("jax_enable_x64", True)  # else float64 would be multiplied as float32
    import jax.numpy as jnp

    x, y = jnp.asarray(a), jnp.asarray(b)
    product = jax.jit(jnp.matmul)
    product(x, y).block_until_ready()  # compiles
    return lambda: product(x, y).block_until_ready()


PRODUCTS: dict[str, Product] = {"numpy-matmul": numpy_matmul, "torch-matmul": torch_matmul,
                                "jax-jit-matmul": jax_jit_matmul}  # fmt: skip


def best_product(product: Read, n: int, repeats: int) -> float:
    """FLOP/s of the fastest of ``repeats`` products of two n × n matrices (2·n³ operations), after one untimed."""
    product()
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        fastest = min(fastest, time.perf_counter() - start)
    return 2 * n**3 / fastest


def compute(threads: int, dtypes: list[str], sizes: tuple[int, ...] = MATMUL_SIZES, repeats: int = MATMUL_REPEATS,
            kernels: list[str] | None = None) -> dict:  # fmt: skip
    """Every product kernel at every size in every dtype, in this process, on the CPUs a timing worker of
    ``threads`` threads is pinned to; the best per dtype is its compute floor. A kernel whose framework is
    missing or fails is an ``"error: ..."`` entry and the others go on. ``blas``: numpy and the BLAS and kernel it
    ran (``numpy_blas``)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    procs.pin(procs.pinned(threads))
    rng = np.random.default_rng(0)
    found: dict[str, dict] = {}
    with threadpool_limits(threads, user_api="blas"):
        for dtype in dtypes:
            found[dtype] = products(rng, dtype, threads, sizes, repeats, kernels)
    return {"by_dtype": found, "blas": numpy_blas(), "threads": threads, "cpus": procs.affinity(),
            "seconds": time.perf_counter() - started}  # fmt: skip


def products(rng: np.random.Generator, dtype: str, threads: int, sizes: tuple[int, ...], repeats: int,
             kernels: list[str] | None) -> dict:  # fmt: skip
    """One dtype's compute floor: every kernel at every size; the best, its kernel, and every figure."""
    figures: dict[str, float | str] = {}
    for n in sizes:
        a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
        for name in kernels or PRODUCTS:
            if isinstance(figures.get(name), str):  # failed at a smaller size already
                continue
            try:
                figures[f"{name} n={n}"] = best_product(PRODUCTS[name](a, b, threads), n, repeats)
            except Exception as e:
                figures[name] = f"error: {Failed.of(e)}"
    measured = {k: v for k, v in figures.items() if isinstance(v, float)}
    winner = max(measured, key=measured.__getitem__) if measured else None
    return {"flop_per_s": measured[winner] if winner else None, "kernel": winner, "kernels": figures}


def numpy_blas() -> str:
    """numpy and the BLAS it ran here, as the results' machine line says it (``machine.blas_summary``): ``numpy 2.4.6
    with OpenBLAS 0.3.31 (SkylakeX kernel: OPENBLAS_CORETYPE unset)``."""
    import numpy as np

    try:
        libs: list[dict[str, Any]] | str = machine.blas_libraries()
    except Exception as e:
        libs = Failed.of(e)
    return machine.blas_summary({"versions": {"numpy": np.__version__}, "blas": libs,
                                 "blas_variables": machine.blas_variables()})  # fmt: skip


def compute_command(threads: int, dtypes: list[str], kernels: list[str] | None = None,
                    sizes: tuple[int, ...] = MATMUL_SIZES, repeats: int = MATMUL_REPEATS) -> list[str]:  # fmt: skip
    return [str(envs.python("main")), "-m", "bench.worker.floor", "--compute", "--threads", str(threads),
            "--dtypes", ",".join(dtypes), "--sizes", ",".join(map(str, sizes)), "--repeats", str(repeats),
            *(["--kernels", ",".join(kernels)] if kernels else [])]  # fmt: skip


def compute_floor(threads: int, dtypes: list[str], native_blas: bool = False, timeout: float = 120,
                  **read: Any) -> dict:  # fmt: skip
    """The compute floor (``compute``) in a fresh process of the main environment, with a timing worker's thread
    settings and BLAS variables (``--native-blas``: without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE); ``read``:
    kernels, sizes and repeats other than all of them (``compute_command``). Raises BenchError where it printed no
    figure, or measured none in a dtype."""
    env = machine.environ_with(machine.pinned_blas("main", native_blas), {**os.environ, **thread_settings(threads)})
    try:
        done = subprocess.run(compute_command(threads, dtypes, **read), cwd=envs.ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BenchError(f"bench.worker.floor --compute took over {timeout:g} s") from None
    result = printed(done.stdout, "by_dtype")
    if result is None:
        last = (done.stderr.strip().splitlines() or [""])[-1].strip()
        raise BenchError(f"bench.worker.floor --compute failed: {last or how_it_ended(done.returncode)}")
    missing = [d for d, f in result["by_dtype"].items() if not f["flop_per_s"]]
    if missing:
        raise BenchError(f"bench.worker.floor --compute measured nothing in {missing[0]}: "
                         f"{result['by_dtype'][missing[0]]['kernels']}")  # fmt: skip
    return result


def compute_attempt(threads: int, dtypes: list[str], native_blas: bool = False, **read: Any) -> dict:
    """``compute_floor``, or ``{"error": why}``: a floor that cannot be measured never stops a run."""
    try:
        return compute_floor(threads, dtypes, native_blas, **read)
    except BenchError as e:
        return {"error": str(e)}


def command(threads: int, nbytes: int = NBYTES, repeats: int = REPEATS,
            kernels: list[str] | None = None) -> list[str]:  # fmt: skip
    return [str(envs.python("main")), "-m", "bench.worker.floor", "--threads", str(threads), "--bytes", str(nbytes),
            "--repeats", str(repeats), *(["--kernels", ",".join(kernels)] if kernels else [])]  # fmt: skip


def printed(stdout: str, key: str = "bytes_per_s") -> dict | None:
    """The figure bench.worker.floor printed: its last line that is a JSON object with ``key``."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            result = json.loads(line)
        except ValueError:
            continue
        if isinstance(result, dict) and key in result:
            return result
    return None


def how_it_ended(code: int) -> str:
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"


def bandwidth(threads: int, nbytes: int = NBYTES, repeats: int = REPEATS, timeout: float = 300,
              kernels: list[str] | None = None) -> dict:  # fmt: skip
    """The floor at ``threads`` threads, measured in a fresh process of the main environment (this one
    imports no framework), by ``kernels`` (default: all of KERNELS). A figure the process printed is kept even if
    the process then died (a framework's thread pool torn down at exit: the result says so under ``"exit"``).
    Raises BenchError when that process printed no figure or measured nothing."""
    env = {**os.environ, **thread_settings(threads)}
    try:
        done = subprocess.run(command(threads, nbytes, repeats, kernels), cwd=envs.ROOT, env=env, capture_output=True,
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
    parser.add_argument("--repeats", type=int, help=f"reads of each kernel, the best kept (default {REPEATS}; "
                        f"with --compute, products of each, {MATMUL_REPEATS})")  # fmt: skip
    parser.add_argument("--kernels", help=f"comma-separated, of {', '.join(KERNELS)} (default: all); with "
                        f"--compute, of {', '.join(PRODUCTS)}")  # fmt: skip
    parser.add_argument("--compute", action="store_true", help="the compute floor instead: the best FLOP/s of a "
                        "square matrix product, on the CPUs a timing worker is pinned to")  # fmt: skip
    parser.add_argument("--dtypes", default="float64", help="with --compute: comma-separated, of float64, float32")
    parser.add_argument("--sizes", default=",".join(map(str, MATMUL_SIZES)),
                        help="with --compute: the square products' sizes, comma-separated")  # fmt: skip
    a = parser.parse_args(argv)
    if not 1 <= a.threads <= (os.cpu_count() or 1):
        parser.error(f"--threads must be 1 to {os.cpu_count()}")
    known = PRODUCTS if a.compute else KERNELS
    unknown = set(a.kernels.split(",")) - set(known) if a.kernels else set()
    if unknown:
        parser.error(f"unknown kernels: {', '.join(sorted(unknown))}")
    dtypes = a.dtypes.split(",")
    if set(dtypes) - set(DTYPES):
        parser.error(f"--dtypes: comma-separated, of {', '.join(DTYPES)}, not {a.dtypes!r}")
    sizes = tuple(int(n) for n in a.sizes.split(",") if n.isdigit() and int(n) > 0)
    if len(sizes) != len(a.sizes.split(",")):
        parser.error(f"--sizes: comma-separated whole numbers above 0, not {a.sizes!r}")
    if a.repeats is not None and a.repeats < 1:
        parser.error("--repeats must be 1 or more")
    os.environ.update(thread_settings(a.threads))  # before torch or jax loads (numpy's BLAS is held by threadpoolctl)
    kernels = a.kernels.split(",") if a.kernels else None
    if a.compute:
        result = compute(a.threads, dtypes, sizes, a.repeats or MATMUL_REPEATS, kernels)
        print(json.dumps(result), flush=True)
        return 0 if all(f["flop_per_s"] for f in result["by_dtype"].values()) else 1
    result = floor(a.threads, a.bytes, a.repeats or REPEATS, kernels)
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
