"""The environment a timing was taken in: versions, CPU and its flags, the BLAS numpy loaded and the kernel
it runs, and the variables that choose them. Read without importing any framework (numpy, and the
frameworks ``environment(load=...)`` names, are loaded only when it is called)."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.host.envs import ROOT, current

PACKAGES = ("numpy", "torch", "jax", "jaxlib", "tensorflow-cpu", "tensorflow", "autograd", "mxnet", "pytest-benchmark",
            "matplotlib")  # fmt: skip
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")  # fmt: skip
# glibc's allocator, held in one state in a timing worker (docs/fair-timing.md). By default it moves the size
# from which an array gets fresh pages of its own (mmap) between 128 KiB and 32 MiB as the process frees memory,
# and gives back the top of its heap: whether an eager step at N = 10⁶ is handed its temporaries' pages anew
# every time then follows the process's history, and so does the step's time, which differs from one process
# to the next. Held at glibc's own ceiling, with the heap's top given back only past 1 GiB, memory under
# 32 MiB is reused.
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**30)}
# What chooses a BLAS's kernel and threads, a framework's instruction set, or how glibc's allocator reuses memory:
# recorded as set, None where unset (with any other OPENBLAS_*, GOTO_*, MKL_*, KMP_*, OMP_* and MALLOC_* variable
# that is set).
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OPENBLAS_VERBOSE",
                  "GOTO_NUM_THREADS", "MKL_NUM_THREADS", "MKL_DEBUG_CPU_TYPE", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR",
                  "MKL_THREADING_LAYER", "OMP_NUM_THREADS", "OMP_PROC_BIND", "KMP_AFFINITY", "XLA_FLAGS",
                  "ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "NPY_DISABLE_CPU_FEATURES",
                  "MXNET_CPU_WORKER_NTHREADS", "MXNET_USE_OPERATOR_TUNING", *ALLOCATOR)  # fmt: skip
BLAS_PREFIXES = ("OPENBLAS_", "GOTO_", "MKL_", "KMP_", "OMP_", "MALLOC_")
# Set on some machines for older OpenBLAS builds, which crash or compute wrong results without them on a CPU
# they do not know. Under ``bench run --native-blas`` the main environment's timing workers run without them
# (numpy 2's OpenBLAS then picks its own kernel for the CPU, as on a user's machine); the MXNet environment's
# keep them.
PINNED_BLAS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
NATIVE_BLAS_ENVS = ("main",)
# The SIMD flags of /proc/cpuinfo a summary names, where the CPU has them
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
              "amx_tile", "amx_bf16", "amx_int8")  # fmt: skip


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The CPU's flags, as /proc/cpuinfo lists them (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].split() for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return []


def simd_summary(flags: list[str]) -> str:
    """``avx2, fma, avx512f, …, amx_int8``: the SIMD flags of SIMD_FLAGS the CPU has."""
    have = set(flags)
    return ", ".join(f for f in SIMD_FLAGS if f in have) or "no SIMD flags listed"


def blas_variables(environ: dict[str, str] | None = None) -> dict[str, str | None]:
    """Every BLAS_VARIABLES as set (None where unset), then any other OpenBLAS, MKL or OpenMP variable set."""
    environ = os.environ if environ is None else environ
    found: dict[str, str | None] = {name: environ.get(name) for name in BLAS_VARIABLES}
    found |= {k: v for k, v in sorted(environ.items()) if k.startswith(BLAS_PREFIXES) and k not in found}
    return found


def blas_libraries() -> list[dict[str, Any]]:
    """The BLAS and OpenMP libraries loaded in this process once numpy is: threadpoolctl's view
    (internal_api, version, architecture: the kernel, num_threads, the file's name); where threadpoolctl is
    not installed (the MXNet environment), OpenBLAS's own answers, asked through ctypes."""
    import numpy  # noqa: F401  (loads its BLAS)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return openblas_libraries()
    keep = ("user_api", "internal_api", "version", "architecture", "threading_layer", "num_threads")
    return [{k: lib.get(k) for k in keep} | library_file(lib.get("filepath") or "") for lib in threadpool_info()]


def library_file(path: str) -> dict[str, str | None]:
    """A library's file name, and the package that ships it (``numpy.libs/…`` → numpy, ``mxnet/…`` → mxnet)."""
    parts = path.split(os.sep)
    owner = parts[parts.index("site-packages") + 1].removesuffix(".libs") if "site-packages" in parts[:-2] else None
    return {"file": os.path.basename(path), "package": owner}


def openblas_libraries() -> list[dict[str, Any]]:
    """Each OpenBLAS mapped into this process, asked its version, kernel and threads (its symbols may carry
    numpy's ILP64 suffix ``64_``)."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in os.path.basename(line.split()[-1]).lower()})
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same library, not a second copy
        except OSError:
            continue
        for suffix in ("", "64_"):
            config, core, threads = (getattr(lib, f"openblas_get_{n}{suffix}", None)
                                     for n in ("config", "corename", "num_threads"))  # fmt: skip
            if config is None or core is None:
                continue
            config.restype = core.restype = ctypes.c_char_p
            words = (config() or b"").decode().split()
            found.append({"user_api": "blas", "internal_api": "openblas",
                          "version": words[1] if len(words) > 1 else None,
                          "architecture": (core() or b"").decode() or None, "threading_layer": None,
                          "num_threads": threads() if threads is not None else None, **library_file(path),
                          "config": " ".join(words)})  # fmt: skip
            break
    return found


def blas_summary(info: dict[str, Any]) -> str:
    """One environment's numpy and the BLAS it ran: ``numpy 2.4.6 with OpenBLAS 0.3.31 (Haswell kernel:
    OPENBLAS_CORETYPE=Haswell set)``, then the BLAS other packages brought (``mxnet's OpenBLAS 0.3.13 (…)``),
    from what ``environment()`` recorded."""
    numpy = f"numpy {(info.get('versions') or {}).get('numpy', '?')}"
    libs = info.get("blas")
    if not isinstance(libs, list):
        return numpy + (f" (its BLAS not read: {libs})" if libs else " (its BLAS not read)")
    blas = [lib for lib in libs if lib.get("user_api") == "blas"]
    if not blas:
        return numpy + " (no BLAS library found)"
    core = (info.get("blas_variables") or {}).get("OPENBLAS_CORETYPE")

    def said(lib: dict[str, Any]) -> str:
        api = lib.get("internal_api")
        text = {"openblas": "OpenBLAS", "mkl": "MKL", "blis": "BLIS"}.get(api, str(api))
        text += " " + ".".join(str(lib.get("version") or "?").split(".")[:3])
        if lib.get("architecture"):
            why = f": OPENBLAS_CORETYPE={core} set" if core else ": OPENBLAS_CORETYPE unset"
            why = why if api == "openblas" else ""
            text += f" ({lib['architecture']} kernel{why})"
        return text

    mine = [said(lib) for lib in blas if lib.get("package") in ("numpy", "scipy_openblas64", None)]
    others = [
        f"{lib['package']}'s {said(lib)}"
        for lib in blas
        if lib.get("package") not in ("numpy", "scipy_openblas64", None)
    ]
    return ", ".join([f"{numpy} with {' and '.join(mine)}" if mine else numpy, *others])


def pinned_blas(env: str, native: bool) -> dict[str, str | None]:
    """The variables a worker of ``env`` runs without (None: unset) under ``--native-blas``."""
    return dict.fromkeys(PINNED_BLAS) if native and env in NATIVE_BLAS_ENVS else {}


def environ_with(changes: dict[str, str | None], base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (this process's environment) with ``changes``: a value None removes that variable."""
    merged = {**(os.environ if base is None else base), **changes}
    return {k: v for k, v in merged.items() if v is not None}


def git_commit() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def caches() -> dict[int, int]:
    """The data caches CPU 0 has, level -> bytes, from sysfs (empty where the kernel does not say)."""
    found = {}
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            if (index / "type").read_text().strip() != "Instruction":
                size = (index / "size").read_text().strip()
                found[int((index / "level").read_text())] = (
                    int(size[:-1]) * {"K": 1 << 10, "M": 1 << 20}[size[-1]] if size[-1] in "KM" else int(size)
                )
    return found


def l2_bytes(default: int = 2 << 20) -> int:
    """The size of one core's level-2 cache (``default`` where the kernel does not say)."""
    return caches().get(2, default)


def llc_bytes() -> int | None:
    """The size of the last-level cache CPU 0 reads through (None where the kernel does not say): arrays that
    fit in it may be read faster than the memory floor (bench.worker.floor), which reads from memory."""
    found = caches()
    return found[max(found)] if found else None


def allocator_settings() -> dict[str, str]:
    """ALLOCATOR, where the user has not set a variable of it: theirs is kept."""
    return {k: os.environ.get(k, v) for k, v in ALLOCATOR.items()}


def allocator_summary(info: dict[str, Any]) -> str:
    """How a worker's glibc allocator ran, from the variables ``environment()`` recorded."""
    held = {k: v for k in ALLOCATOR if (v := (info.get("blas_variables") or {}).get(k)) is not None}
    said = ", ".join(f"{k}={v}" for k, v in held.items())
    return f"glibc's allocator held ({said})" if held else "glibc's allocator by its own rules"


def thread_settings(threads: int) -> dict[str, str]:
    """Environment variables that hold every framework of a fresh process to ``threads`` threads."""
    settings = dict.fromkeys(THREAD_VARIABLES, str(threads))
    if threads == 1:  # XLA has no thread count, only on/off for its intra-op pool
        settings["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return settings


def environment(device: str = "cpu", load: tuple[str, ...] = ()) -> dict[str, Any]:
    """This process's environment; ``load`` names frameworks to import first, so that the BLAS they
    bring (MXNet's own OpenBLAS) is read too. A framework that fails to import is said, not raised."""
    loaded: dict[str, str] = {}
    for name in load:
        try:
            importlib.import_module(name)
        except Exception as e:  # the probe reports what it can
            loaded[name] = f"error: {type(e).__name__}: {e}"
    try:
        blas: list[dict[str, Any]] | str = blas_libraries()
    except Exception as e:
        blas = f"error: {type(e).__name__}: {e}"
    info: dict[str, Any] = {
        "environment": current(),
        "python": sys.version.split()[0],
        "versions": versions(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)),
        "device": device,
        "platform": platform.platform(),
        "commit": git_commit(),
        "cpu_flags": cpu_flags(),
        "llc_bytes": llc_bytes(),
        "blas": blas,
        "blas_variables": blas_variables(),
    }
    if loaded:
        info["load_errors"] = loaded
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info
