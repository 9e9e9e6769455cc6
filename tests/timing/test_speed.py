"""Timings, through pytest-benchmark: ``pytest --benchmark-only`` times every backend, each in fresh
processes of its own environment, interleaved (bench.campaign.timing); ``python -m bench run`` runs this file.

pytest-benchmark times what runs in its own process; these figures are measured elsewhere. So each
test hands them over through pytest-benchmark's public ``timer`` option: a clock that moves only when
a measured duration is fed to it. A round is one timing process; its figure is that process's fastest
round per step (a round there trains a slice of the schedule and ends in a blocking read). pytest-benchmark's
statistics, ``--benchmark-json``, ``--benchmark-compare`` and ``--benchmark-histogram`` then read the
isolated figures, per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from bench.core.cases import Case


class FedClock:
    """A clock that stands still until a duration is fed to it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


CLOCK = FedClock()
pytestmark = pytest.mark.benchmark(timer=CLOCK)


def feed(benchmark: Any, durations: Sequence[float]) -> None:
    """pytest-benchmark's rounds, each the next of ``durations``."""
    it = iter(durations)
    benchmark.pedantic(lambda: CLOCK.advance(next(it)), rounds=len(durations), iterations=1)


def test_speed(benchmark, measured, task, backend, dtype):
    m = measured(Case("speed", task, backend, dtype))
    benchmark.group = f"{task} {dtype}"
    benchmark.extra_info.update(kind="speed", task=task, backend=backend, dtype=dtype, **m)
    feed(benchmark, m["samples_s"])


def test_scaling(benchmark, measured, task, n, backend, dtype):
    m = measured(Case("scaling", task, backend, dtype, n))
    benchmark.group = f"scaling {dtype}"
    benchmark.extra_info.update(kind="scaling", task=task, n=n, backend=backend, dtype=dtype,
                                bytes_per_step=2 * n * np.dtype(dtype).itemsize, **m)  # fmt: skip
    feed(benchmark, m["samples_s"])
