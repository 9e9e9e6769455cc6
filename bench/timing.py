"""What the speed suite times, and the figures derived from the timings."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from backends._base import Backend


class Unit:
    """A fixed slice of a task's schedule (its first epochs, about ``steps`` steps), converted into the
    framework once. Calling it trains through the slice and blocks until the work is done."""

    def __init__(self, backend: Backend, steps: int) -> None:
        task = backend.task
        epochs = min(task.epochs, -(-steps // task.steps_per_epoch))
        self.backend, self.steps = backend, epochs * task.steps_per_epoch
        self.chunk = backend.prepare(task.lrs()[:epochs], task.orders()[:epochs])

    def __call__(self) -> None:
        self.backend.wait(self.backend.run(self.chunk))

    def dispatch(self) -> object:
        """The same work without the blocking read (for the self-test: this is not a timing)."""
        return self.backend.run(self.chunk)


def seconds(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def read_bandwidth(threads: int = 1, nbytes: int = 800 * 2**20, repeats: int = 5) -> float:
    """Memory read bandwidth in bytes/s: the best of a few reads of an array far larger than any cache,
    split over ``threads`` threads. The read is BLAS's dot of each part with itself, which streams it
    once (numpy's own sum is bound by its adds at about half this speed)."""
    parts = np.array_split(np.ones(nbytes // 8), threads)
    with ThreadPoolExecutor(threads) as pool:

        def read() -> None:
            list(pool.map(lambda p: np.dot(p, p), parts))

        read()
        return nbytes / min(seconds(read) for _ in range(repeats))


def fit_overhead(n: Sequence[float], t: Sequence[float]) -> tuple[float, float]:
    """``t(N) = a + b·N`` by least squares on relative error: (a seconds, b seconds per element)."""
    n, t = np.asarray(n, dtype=float), np.asarray(t, dtype=float)
    design = np.stack([np.ones_like(n), n], axis=1) / t[:, None]
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    return float(a), float(b)
