"""w·x through the origin, mean squared error: the smallest autodiff example."""

from __future__ import annotations

import numpy as np

from tasks import Params, Task


def model(p, x, xp):
    return p["w"] * x


def loss(pred, y, xp):
    return xp.mean((pred - y) ** 2)


def loss_and_grad(p, x, y):
    r = p["w"] * x - y
    n = len(x)
    return r.dot(r) / n, {"w": np.array([x.dot(r)]) * (2 / n)}  # scaled as an array: float32 stays float32


def hessian(p: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over θ = (w): 2·x·x / n, one entry."""
    return np.array([[x.dot(x)]]) * (2 / len(x))  # scaled as an array: float32 stays float32


def jacobian(p: Params, x: np.ndarray) -> np.ndarray:
    """The predictions over θ = (w): x, a column."""
    return x.reshape(-1, 1)


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
        hessian=hessian,
        jacobian=jacobian,
        lr=lambda epoch: 0.01,
        epochs=20,
        expected={"w": 9.612 / 5},
        expected_tol=1e-4,  # published f(5) = 9.612, to 3 decimals
    )
