"""y = X·w + b on 300 noisy samples of a plane, minibatch SGD on a summed squared error."""

from __future__ import annotations

import numpy as np

from tasks import Params, Task


def model(p, x, xp):
    return xp.matmul(x, p["w"]) + p["b"]


def loss(pred, y, xp):
    return xp.sum((pred - y) ** 2)


def loss_and_grad(p, x, y):
    r = x.dot(p["w"]) + p["b"] - y
    loss = r.dot(r)
    r *= 2  # d loss / d prediction
    return loss, {"w": r.dot(x), "b": r.sum(keepdims=True)}


def hessian(p: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over θ = (w₁, w₂, b): 2·AᵀA, A the samples with a column of ones (for b)."""
    a = jacobian(p, x)
    return 2 * a.T.dot(a)


def jacobian(p: Params, x: np.ndarray) -> np.ndarray:
    """The predictions over θ = (w₁, w₂, b): the samples with a column of ones."""
    return np.concatenate([x, np.ones((len(x), 1), dtype=x.dtype)], axis=1)


def make() -> Task:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = x @ np.array([2.0, 51.0]) + 21.2 + 0.01 * rng.normal(size=300)
    init = {"w": rng.normal(size=2), "b": np.zeros(1)}
    return Task(
        name="plane",
        source="MXNet linear regression from scratch (gluon tutorial), true w = [2, 51], b = 21.2",
        x=x,
        y=y,
        init=init,
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        hessian=hessian,
        jacobian=jacobian,
        lr=lambda epoch: 0.01,
        epochs=10,
        batch_size=10,
        shuffle_seed=1,
        expected={"w": [2.0, 51.0], "b": 21.2},
        expected_tol=0.01,
    )
