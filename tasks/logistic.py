"""Binary logistic regression on two seeded Gaussian blobs, minibatch SGD on a numerically stable loss."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tasks import Params, Task

N, TEST = 400, 2000  # training samples, held-out samples
CENTRE = 1.0  # the classes are N((-1, -1), I) and N((1, 1), I)


def model(p: Params, x: Any, xp: Any) -> Any:
    return x @ p["w"] + p["b"]  # the logit of class 1


def loss(z: Any, y: Any, xp: Any) -> Any:
    # -log σ(z) for y = 1, -log(1 - σ(z)) for y = 0, that is softplus(z) - y·z, with
    # softplus(z) = max(z, 0) + log1p(exp(-|z|)), which neither overflows nor loses precision
    return xp.mean(xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z))) - y * z)


def loss_and_grad(p: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    z = x.dot(p["w"]) + p["b"]
    e = np.exp(-np.abs(z))
    n = len(y)
    loss = ((np.maximum(z, 0.0) + np.log1p(e)).sum() - y.dot(z)) / n
    r = np.where(z >= 0, 1.0, e)
    r /= 1.0 + e  # σ(z), from the same exp(-|z|)
    r -= y
    r /= n
    return loss, {"w": r.dot(x), "b": r.sum(keepdims=True)}


def hessian(p: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over θ = (w₁, w₂, b): Xᵀ·diag(σ(z)(1 − σ(z)))·X / n, X the samples with a column of ones (for b)."""
    z = x.dot(p["w"]) + p["b"]
    e = np.exp(-np.abs(z))
    s = e / (1.0 + e) ** 2  # σ(z)(1 − σ(z)), from exp(-|z|): the same for z and -z
    a = np.concatenate([x, np.ones((len(x), 1), dtype=x.dtype)], axis=1)
    return (a.T * s).dot(a) / len(y)


def jacobian(p: Params, x: np.ndarray) -> np.ndarray:
    """The logits over θ = (w₁, w₂, b): the samples with a column of ones."""
    return np.concatenate([x, np.ones((len(x), 1), dtype=x.dtype)], axis=1)


def blobs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat([0.0, 1.0], n // 2)
    return rng.normal(size=(n, 2)) + CENTRE * (2 * y[:, None] - 1), y


def metrics(p: Params) -> dict[str, float]:
    """Accuracy on a held-out sample of the same blobs: the Bayes classifier x₁ + x₂ > 0 gets
    Φ(√2·CENTRE) = 0.921 (the centres are 2√2 apart, σ = 1)."""
    x, y = blobs(np.random.default_rng(1), TEST)
    z = x @ np.asarray(p["w"]) + np.asarray(p["b"])
    return {"test_accuracy": float(np.mean((z > 0) == (y == 1)))}


def make() -> Task:
    rng = np.random.default_rng(0)
    x, y = blobs(rng, N)
    bayes = 0.5 * (1 + math.erf(CENTRE))  # Φ(√2·CENTRE) = (1 + erf(CENTRE)) / 2
    return Task(
        name="logistic",
        source="binary logistic regression on seeded Gaussian blobs (σ = 1, centres (±1, ±1))",
        x=x,
        y=y,
        # a small random start: at z = 0 exactly (a zero start) max(z, 0) and |z| have no derivative,
        # and frameworks pick different subgradients
        init={"w": 0.1 * rng.normal(size=2), "b": 0.1 * rng.normal(size=1)},
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        hessian=hessian,
        jacobian=jacobian,
        lr=lambda epoch: 0.5,
        epochs=15,
        batch_size=20,
        shuffle_seed=2,
        metrics=metrics,
        metric_floors={"test_accuracy": bayes - 0.02},  # within 2 points of the best any classifier can do
    )
