"""The environment a timing was taken in, read without importing any framework."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Any

from bench.envs import ROOT, current

PACKAGES = ("numpy", "torch", "jax", "jaxlib", "mxnet", "pytest-benchmark", "matplotlib")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS")


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


def git_commit() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def thread_settings(threads: int) -> dict[str, str]:
    """Environment variables that hold every framework of a fresh process to ``threads`` threads."""
    settings = dict.fromkeys(THREAD_VARIABLES, str(threads))
    if threads == 1:  # XLA has no thread count, only on/off for its intra-op pool
        settings["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return settings


def environment(device: str = "cpu") -> dict[str, Any]:
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
    }
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info
