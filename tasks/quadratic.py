"""w·x² + b by full-batch gradient descent on a summed squared error."""

from __future__ import annotations

import numpy as np

from tasks import Task


def model(p, x, xp):
    return p["w"] * x**2 + p["b"]


def loss(pred, y, xp):
    return 0.5 * xp.sum((pred - y) ** 2)


def loss_and_grad(p, x, y):
    x2 = x**2
    r = p["w"] * x2 + p["b"] - y
    return 0.5 * (r @ r), {"w": r @ x2[:, None], "b": r.sum(keepdims=True)}  # (n,) @ (n, 1) is (1,)


def make(n: int = 100) -> Task:
    rng = np.random.RandomState(100)  # the tutorial's np.random.seed(100) stream
    x = np.linspace(-1, 1, n)
    y = 3 * x**2 + 2 + 0.2 * rng.rand(n)
    init = {"w": np.array([rng.rand()]), "b": np.array([rng.rand()])}
    return Task(
        name="quadratic",
        source="numpy/torch/MXNet quadratic fit, np.random.seed(100)",
        x=x,
        y=y,
        init=init,
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        lr=lambda epoch: 0.001,
        epochs=800,
        expected={"w": 2.98927619, "b": 2.09818307} if n == 100 else {},
        expected_tol=5e-9,  # published to 8 decimals
    )
