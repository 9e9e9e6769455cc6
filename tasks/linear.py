"""w·x through the origin, mean squared error: the smallest autodiff example."""

from __future__ import annotations

import numpy as np

from tasks import Task


def model(p, x, xp):
    return p["w"] * x


def loss(pred, y, xp):
    return xp.mean((pred - y) ** 2)


def loss_and_grad(p, x, y):
    r = p["w"] * x - y
    n = len(x)
    return r.dot(r) / n, {"w": np.array([x.dot(r)]) * (2 / n)}  # scaled as an array: float32 stays float32


def make() -> Task:
    return Task(
        name="linear",
        source="torch gradient-descent tutorial (numpy, then autograd), float32",
        x=np.array([1.0, 2.0, 3.0, 4.0]),
        y=np.array([2.0, 4.0, 6.0, 8.0]),
        init={"w": np.zeros(1)},
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        lr=lambda epoch: 0.01,
        epochs=20,
        expected={"w": 9.612 / 5},
        expected_tol=1e-4,  # published f(5) = 9.612, to 3 decimals
    )
