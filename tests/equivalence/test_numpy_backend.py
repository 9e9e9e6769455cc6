"""The numpy reference's fast paths (a full-batch chunk as one loop, a one-element parameter updated as
a scalar) do the arithmetic of the plain update ``p -= lr * g`` on arrays, to the bit."""

from __future__ import annotations

import numpy as np
import pytest

import tasks
from backends.numpy import Numpy
from tasks import Task


def model(p, x, xp):
    return p["a"][0, 0] * x**2 + p["b"] + xp.sum(p["c"]) * x


def loss(pred, y, xp):
    return 0.5 * xp.sum((pred - y) ** 2)


def loss_and_grad(p, x, y):
    r = model(p, x, np) - y
    # a (1, 1) parameter, a (1,) one whose gradient comes as a numpy scalar (not its shape), a (3,) one
    return 0.5 * r.dot(r), {"a": np.array([[r.dot(x**2)]]), "b": r.sum(), "c": np.full(3, r.dot(x))}


def odd_shapes(batch_size: int | None) -> Task:
    x = np.linspace(-1, 1, 32)
    init = {"a": np.full((1, 1), 0.3), "b": np.array([0.1]), "c": np.array([0.2, -0.1, 0.05])}
    return Task("odd", "test", x, 2 * x**2 + 0.5 * x - 1, init, model, loss, loss_and_grad,
                lr=lambda e: 0.01 / (1 + e), epochs=20, batch_size=batch_size)  # fmt: skip


def plain(t: Task, dtype: str) -> tuple[list, dict[str, np.ndarray]]:
    """The update as arrays, ``p -= lr * g``, batch by batch in data order."""
    p = {k: v.astype(dtype) for k, v in t.init.items()}
    x, y, losses = t.x.astype(dtype), t.y.astype(dtype), []
    for e in range(t.epochs):
        for i in range(0, len(x), t.batch):
            loss, grads = t.loss_and_grad(p, x[i : i + t.batch], y[i : i + t.batch])
            losses.append(loss)
            for k, g in grads.items():
                p[k] -= t.lr(e) * g
    return losses, p


CASES = {"full": odd_shapes(None), "batches": odd_shapes(8), "quadratic": tasks.get("quadratic")}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("t", CASES.values(), ids=CASES.keys())
def test_the_fast_paths_are_the_plain_update_to_the_bit(t, dtype):
    want_losses, want = plain(t, dtype)
    b = Numpy(t, dtype)
    got_losses = b.run(b.prepare(t.lrs(), t.orders()))
    assert got_losses.dtype == dtype
    assert np.array_equal(got_losses, np.array(want_losses, dtype=dtype))
    got = b.params()
    for k, v in t.init.items():
        assert got[k].shape == v.shape and got[k].dtype == dtype, k
        assert np.array_equal(got[k], want[k]), k
    assert all(not np.array_equal(got[k], t.init[k]) for k in t.init)  # it trained
