"""Timings, through pytest-benchmark: ``pytest --benchmark-only`` (``python -m bench run`` runs this
file once per backend, each in a fresh process of that backend's environment).

Each case is built and converted into its framework first (untimed); its first call, which includes
tracing, compiling or hybridizing, is timed on its own; one more call warms up; then the rounds. A
round trains through a fixed slice of the task's schedule and ends in a blocking read.
"""

from __future__ import annotations

import numpy as np

from bench import harness
from bench.compare import run_diff
from bench.timing import Unit, seconds


def rounds(warm: float, options) -> int:
    return int(np.clip(options.round_time / warm, options.min_rounds, 1000))


def sample(losses: list[float], points: int = 1000) -> dict[str, list]:
    """A trajectory thinned for storage: every early step, then evenly spaced ones, and the last."""
    n = len(losses)
    steps = np.unique(np.concatenate([np.arange(min(n, 100)), np.linspace(0, n - 1, points).astype(int)]))
    return {"step": (steps + 1).tolist(), "loss": [losses[i] for i in steps]}


def test_speed(benchmark, task, backend, dtype, bench_options):
    b = harness.build(task, backend, dtype, bench_options.device)
    unit = Unit(b, bench_options.unit_steps)
    first, warm = seconds(unit), seconds(unit)
    benchmark.group = f"{task} {dtype}"
    benchmark.pedantic(unit, rounds=rounds(warm, bench_options), iterations=1)
    # then the same backend trains in the same process, for the correctness columns: the whole
    # schedule where it fits the budget, else the whole epochs that do
    t = b.task
    per_epoch = warm / unit.steps * t.steps_per_epoch
    epochs = t.epochs if per_epoch * t.epochs <= bench_options.budget else max(1, int(bench_options.budget / per_epoch))
    run = harness.train_here(task, backend, dtype, bench_options.device, epochs=epochs)
    ref = harness.train_here(task, "numpy", dtype, epochs=epochs, lr_dtype=run.lr_dtype)
    benchmark.extra_info.update(
        kind="task", task=task, backend=backend, dtype=dtype, mode=b.mode, device=b.device,
        steps_per_round=unit.steps, first_call_s=first, epochs_trained=epochs, epochs=t.epochs,
        final_loss=run.losses[-1], max_rel_diff=run_diff(run, ref), params=run.params, lr_dtype=run.lr_dtype,
        losses=sample(run.losses),
    )  # fmt: skip


def test_scaling(benchmark, task, n, backend, dtype, bench_options):
    b = harness.build(task, backend, dtype, bench_options.device, n=n)
    unit = Unit(b, max(1, min(bench_options.unit_steps, 10**7 // n)))
    first, warm = seconds(unit), seconds(unit)
    benchmark.group = f"scaling {dtype}"
    benchmark.extra_info.update(
        kind="scaling", task=task, n=n, backend=backend, dtype=dtype, mode=b.mode, device=b.device,
        steps_per_round=unit.steps, first_call_s=first, bytes_per_step=2 * n * np.dtype(dtype).itemsize,
    )  # fmt: skip
    benchmark.pedantic(unit, rounds=rounds(warm, bench_options), iterations=1)
