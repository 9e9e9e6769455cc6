"""A one-hidden-layer tanh network (matrix parameters) fitting a smooth curve, minibatch SGD."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks import Params, Task

N, HIDDEN, NOISE = 256, 16, 0.05


def curve(x: np.ndarray) -> np.ndarray:
    # only + * / (correctly rounded everywhere): np.sin differs by an ulp between numpy 1.23.5 (MXNet's
    # environment) and 2.x, and each environment makes the task's data itself
    return 3 * x / (1 + x * x)


def model(p: Params, x: Any, xp: Any) -> Any:
    return xp.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]  # (n, 1) -> (n, 16) -> (n, 1)


def loss(pred: Any, y: Any, xp: Any) -> Any:
    return xp.mean((pred - y) ** 2)


def loss_and_grad(p: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    h = x.dot(p["W1"])
    h += p["b1"]
    np.tanh(h, out=h)
    r = h.dot(p["W2"]) + p["b2"] - y
    n = len(y)
    loss = np.vdot(r, r) / n
    r *= 2 / n  # d loss / d prediction
    dh = r.dot(p["W2"].T)
    t = h * h
    dh *= np.subtract(1.0, t, out=t)  # tanh' = 1 - h²
    ones = np.ones(n, dtype=r.dtype)  # column sums as BLAS products: a few times faster than .sum(axis=0)
    return loss, {"W1": x.T.dot(dh), "b1": ones.dot(dh), "W2": h.T.dot(r), "b2": ones.dot(r)}


def jacobian(p: Params, x: np.ndarray) -> np.ndarray:
    """The predictions f = tanh(x·W1 + b1)·W2 + b2 over θ = (W1, b1, W2, b2), a row a sample: x ⊗ (W2 ⊙ s),
    W2 ⊙ s, h, 1, with h = tanh(x·W1 + b1) and s = 1 − h² (tanh's derivative)."""
    h = np.tanh(x.dot(p["W1"]) + p["b1"])  # (n, H)
    g = (1 - h * h) * p["W2"][:, 0]  # ∂f/∂b1
    gw = (x[:, :, None] * g[:, None, :]).reshape(len(x), -1)  # ∂f/∂W1[a, j] = x_a·g_j, in W1's C order
    return np.concatenate([gw, g, h, np.ones((len(x), 1), dtype=h.dtype)], axis=1)


def hessian(p: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over θ = (W1, b1, W2, b2), of L = Σ r² / n with r = f − y: (2/n)·(JᵀJ + Σᵢ rᵢ ∇²fᵢ) (Gauss–Newton plus the
    residual-weighted curvature of the network). ∇²fᵢ is zero but for hidden unit j's own weights
    v_j = (W1[:, j], b1[j]), with zᵢ = (xᵢ, 1): ∂²f/∂v_j² = −2·W2_j·h_j·s_j·zᵢzᵢᵀ, ∂²f/∂v_j∂W2_j = s_j·zᵢ."""
    n, d = x.shape
    hidden = p["b1"].size
    jac = jacobian(p, x)
    out = jac.T.dot(jac)
    h = np.tanh(x.dot(p["W1"]) + p["b1"])
    s = 1 - h * h
    r = h.dot(p["W2"]) + p["b2"] - y  # (n, 1)
    z = np.concatenate([x, np.ones((n, 1), dtype=x.dtype)], axis=1)  # (W1, b1) flattened is (W1; b1) in C order
    q = (-2 * r) * p["W2"][:, 0] * h * s  # rᵢ·∂²f/∂u_j² (u = x·W1 + b1), (n, H)
    t = r * s  # rᵢ·∂²f/∂u_j∂W2_j
    j = np.arange(hidden)
    vv = np.zeros((d + 1, hidden, d + 1, hidden), dtype=out.dtype)
    vv[:, j, :, j] = np.einsum("ij,ia,ib->jab", q, z, z)  # unit j's block, only
    vw = np.zeros((d + 1, hidden, hidden), dtype=out.dtype)
    vw[:, j, j] = z.T.dot(t)
    m = (d + 1) * hidden
    out[:m, :m] += vv.reshape(m, m)
    out[:m, m : m + hidden] += vw.reshape(m, hidden)
    out[m : m + hidden, :m] += vw.reshape(m, hidden).T
    out *= 2 / n
    return out


def metrics(p: Params) -> dict[str, float]:
    """R² of the fitted curve against the noiseless one, on 401 points across [-3, 3] (held out)."""
    grid = np.linspace(-3, 3, 401)[:, None]
    truth = curve(grid)
    fit = model({k: np.asarray(v) for k, v in p.items()}, grid, np)
    return {"test_r2": float(1 - np.sum((fit - truth) ** 2) / np.sum((truth - truth.mean()) ** 2))}


def make() -> Task:
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(N, 1))
    y = curve(x) + NOISE * rng.normal(size=(N, 1))
    init = {
        "W1": rng.normal(size=(1, HIDDEN)),
        "b1": rng.normal(size=HIDDEN),
        "W2": rng.normal(size=(HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": np.zeros(1),
    }
    return Task(
        name="mlp",
        source="one-hidden-layer tanh network (1-16-1) on 3x / (1 + x²) + N(0, 0.05²), x in [-3, 3], seeded",
        x=x,
        y=y,
        init=init,
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        hessian=hessian,
        jacobian=jacobian,
        lr=lambda epoch: 0.05,  # 0.2 diverges
        epochs=60,
        batch_size=32,
        shuffle_seed=1,
        metrics=metrics,
        metric_floors={"test_r2": 0.98},  # the curve, not a straight line (R² 0.72)
    )
