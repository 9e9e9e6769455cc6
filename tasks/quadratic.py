"""w·x² + b by full-batch gradient descent on a summed squared error."""

from __future__ import annotations

import numpy as np

from tasks import Params, Task


def model(p, x, xp):
    return p["w"] * x**2 + p["b"]


def loss(pred, y, xp):
    return 0.5 * xp.sum((pred - y) ** 2)


def loss_and_grad(p, x, y):
    # x**2 is numpy's unary square, cheaper than the binary x * x where a step is mostly dispatch (the same
    # products); w and b as 0-d views of their (1,) arrays broadcast as scalars, cheaper at small N than a
    # (1,) array through numpy's broadcasting iterator (the same arithmetic)
    w, b = p["w"].reshape(()), p["b"].reshape(())
    x2 = x**2
    r = w * x2  # the residual, built in place: two temporaries however large N is
    r += b
    r -= y
    # a.dot(b) is BLAS's dot with less dispatch than the @ operator's matmul, which counts on small arrays
    return 0.5 * r.dot(r), {"w": np.array([r.dot(x2)]), "b": r.sum(keepdims=True)}


def hessian(p: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over θ = (w, b): AᵀA, A the columns x² and 1 (the model is linear in θ, the loss half its summed squares)."""
    a = jacobian(p, x)
    return a.T.dot(a)


def jacobian(p: Params, x: np.ndarray) -> np.ndarray:
    """The predictions over θ = (w, b): the columns x² and 1."""
    return np.stack([x**2, np.ones_like(x)], axis=1)


def make(n: int = 100) -> Task:
    rng = np.random.RandomState(100)  # the tutorial's np.random.seed(100) stream
    x = np.linspace(-1, 1, n)
    y = 3 * x**2 + 2 + 0.2 * rng.rand(n)
    init = {"w": np.array([rng.rand()]), "b": np.array([rng.rand()])}
    # The summed loss's curvature grows with N (its Hessian is about N·[[1/5, 1/3], [1/3, 1]], largest
    # eigenvalue 1.12·N), so a fixed 0.001 diverges from N ≈ 1,800 on (0.001·1.12·N > 2); scaled by
    # 100/N, every size of the sweep takes the same stable steps, and N = 100 keeps the tutorial's 0.001.
    lr = 0.001 * (100 / n)
    return Task(
        name="quadratic",
        source="numpy/torch/MXNet quadratic fit, np.random.seed(100)",
        x=x,
        y=y,
        init=init,
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        hessian=hessian,
        jacobian=jacobian,
        lr=lambda epoch: lr,
        epochs=800,
        expected={"w": 2.98927619, "b": 2.09818307} if n == 100 else {},
        expected_tol=5e-9,  # published to 8 decimals
    )
