"""What the tasks promise on their own, before any backend or timing."""

from __future__ import annotations

import numpy as np
import pytest

import tasks
from bench.campaign.timing import measure_call
from bench.core.cases import Case, Settings


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [10**k for k in range(2, 8)])
def test_quadratic_trains_at_every_size_of_the_sweep(n, dtype):
    """One round of the size sweep (tests/timing/test_speed.py::test_scaling) trains quadratic for at most
    min(100, 10⁷ // N) full-batch steps, each lowering the loss: with one learning rate of 0.001 at every N
    the summed loss would diverge from N ≈ 1,800 on (tasks/quadratic.py), and the sweep would time arithmetic
    on inf and NaN."""
    t = tasks.get("quadratic", n=n)
    x, y = t.x.astype(dtype), t.y.astype(dtype)
    p = {k: v.astype(dtype) for k, v in t.init.items()}
    steps = measure_call(Case("scaling", "quadratic", "numpy", dtype, n), Settings())["steps"]
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
