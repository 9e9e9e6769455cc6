"""a·x² + b·x + c from a far-off start, minibatch SGD with a halving learning rate."""

from __future__ import annotations

import numpy as np

from tasks import Params, Task


def model(p, x, xp):
    return p["a"] * x**2 + p["b"] * x + p["c"]


def loss(pred, y, xp):
    return 0.5 * xp.mean((pred - y) ** 2)


def loss_and_grad(p, x, y):
    x2 = x * x
    r = p["a"] * x2 + p["b"] * x + p["c"] - y
    n = len(x)
    g = np.array([r.dot(x2), r.dot(x), r.sum()]) / n  # the three means at once, in the run's dtype
    return 0.5 * r.dot(r) / n, {"a": g[0:1], "b": g[1:2], "c": g[2:3]}


def hessian(p: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over θ = (a, b, c): AᵀA / n, A the columns x², x and 1."""
    a = jacobian(p, x)
    return a.T.dot(a) / len(x)


def jacobian(p: Params, x: np.ndarray) -> np.ndarray:
    """The predictions over θ = (a, b, c): the columns x², x and 1."""
    return np.stack([x * x, x, np.ones_like(x)], axis=1)


def lr(epoch: int) -> float:
    return 0.5 / 2 ** ((epoch + 1) // 10)


def make(name: str = "parabola", batch_size: int = 16, shuffle_seed: int | None = 0) -> Task:
    x = np.arange(-400, 400) / 400
    return Task(
        name=name,
        source="MXNet/torch parabola fit by SGD",
        x=x,
        y=2 * x**2 - 4 * x + 3,
        init={"a": np.array([-11 / 6]), "b": np.array([-395 / 3]), "c": np.array([-2400.0])},
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        hessian=hessian,
        jacobian=jacobian,
        lr=lr,
        epochs=100,
        batch_size=batch_size,
        shuffle_seed=shuffle_seed,
        expected={"a": 2.0, "b": -4.0, "c": 3.0},
        expected_tol=1e-9,
    )
