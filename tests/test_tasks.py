"""What the tasks promise on their own, before any backend or timing."""

from __future__ import annotations

import numpy as np
import pytest

import tasks
from bench.run import SIZES
from conftest import BenchOptions

FULL_RUN = BenchOptions(backends=[], tasks=[], dtypes=[], device="cpu", sizes=SIZES, quick=False)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", SIZES)
def test_quadratic_trains_at_every_size_of_the_sweep(n, dtype):
    """One round of the size sweep (tests/test_speed.py::test_scaling) trains quadratic for
    min(200, 10⁷ // N) full-batch steps. With a learning rate of 0.001 at every N the summed loss
    diverged from N ≈ 1,800 on, and the sweep timed arithmetic on inf and NaN."""
    t = tasks.get("quadratic", n=n)
    x, y = t.x.astype(dtype), t.y.astype(dtype)
    p = {k: v.astype(dtype) for k, v in t.init.items()}
    steps = max(1, min(FULL_RUN.unit_steps, 10**7 // n))
    losses = []
    for epoch in range(steps):
        loss, grads = t.loss_and_grad(p, x, y)
        losses.append(float(loss))
        for k, g in grads.items():
            p[k] -= t.lr(epoch) * g
    losses.append(float(t.loss_and_grad(p, x, y)[0]))  # after the last step: N = 10⁷ takes only one
    assert np.isfinite(losses).all()
    assert (np.diff(losses) < 0).all(), losses
    assert p["w"].dtype == dtype
