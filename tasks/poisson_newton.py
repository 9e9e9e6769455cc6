"""Poisson regression (log link) on seeded counts from three correlated features, by Newton's method on the whole
set: the loss is convex with a finite optimum (counts are not separable), its Hessian 4 × 4, and its curvature
spread over two orders of magnitude, so that a handful of Newton steps reach the optimum where plain gradient
descent takes hundreds (``python -m bench check poisson-newton`` says how many of each)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tasks import Newton, Params, Task

N = 200
W, B = (0.4, -0.3, 0.2), 0.3  # the rates are exp(x·W + B)


def model(p: Params, x: Any, xp: Any) -> Any:
    return x @ p["w"] + p["b"]  # the log of the rate


def loss(z: Any, y: Any, xp: Any) -> Any:
    return xp.mean(xp.exp(z) - y * z)  # the negative log-likelihood, less mean(log y!), which θ does not change


def loss_and_grad(p: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    z = x.dot(p["w"]) + p["b"]
    rate = np.exp(z)
    n = len(y)
    loss = (rate.sum() - y.dot(z)) / n
    rate -= y
    rate /= n  # d loss / d z
    return loss, {"w": rate.dot(x), "b": rate.sum(keepdims=True)}


def hessian(p: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over θ = (w₁, w₂, w₃, b): Aᵀ·diag(exp(z))·A / n, A the samples with a column of ones (for b)."""
    a = jacobian(p, x)
    return (a.T * np.exp(x.dot(p["w"]) + p["b"])).dot(a) / len(y)


def jacobian(p: Params, x: np.ndarray) -> np.ndarray:
    """The log rates over θ = (w₁, w₂, w₃, b): the samples with a column of ones."""
    return np.concatenate([x, np.ones((len(x), 1), dtype=x.dtype)], axis=1)


def data() -> tuple[np.ndarray, np.ndarray]:
    """x: three features, the second 0.95-correlated with the first, the third twice as wide; y ~ Poisson(exp(x·W
    + B)). Made elementwise and by math.exp, not by a matrix product or np.exp, whose last bits may differ between
    the environments' BLAS and numpy versions (each environment makes the task's data itself)."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(N, 3))
    x = np.stack([u[:, 0], 0.9 * u[:, 0] + 0.3 * u[:, 1], 2.0 * u[:, 2]], axis=1)
    z = W[0] * x[:, 0] + W[1] * x[:, 1] + W[2] * x[:, 2] + B
    y = rng.poisson([math.exp(v) for v in z]).astype("float64")
    return x, y


def make() -> Task:
    x, y = data()
    return Task(
        name="poisson-newton",
        source="Poisson regression (log link) on 200 seeded counts, three correlated features, by Newton's method, "
        "full batch: (∇²L) d = ∇L, θ ← θ − d",
        x=x,
        y=y,
        init={"w": np.zeros(3), "b": np.zeros(1)},  # rate 1 everywhere; the loss is smooth, zero is no tie
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        hessian=hessian,
        jacobian=jacobian,
        optimizer=Newton(),
        lr=lambda epoch: 1.0,
        epochs=6,
        # the maximum likelihood estimate by scikit-learn 1.9.1's PoissonRegressor(alpha=0, solver="newton-cholesky",
        # tol=1e-13; its gradient there is 2e-16), to 11 decimals; scipy.optimize.minimize(method="BFGS") on the
        # same loss ends within 1e-10 of it
        expected={"w": [0.52018102035, -0.28060243404, 0.24374122313], "b": 0.27428099470},
        expected_tol=1e-9,
    )
