"""A two-hidden-layer tanh network on the digits' 8×8 images, 64 → n → n → 10, at a batch of 256: the task of
the width sweep (``make(n)``), from a step that is mostly per-call overhead (n = 16) to one that is mostly
matrix multiplication (n = 1024: 1.7 GFLOP a step)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks import Params, Task
from tasks.digits import data, loss

BATCH = 256
TRAIN = 5 * BATCH  # the first 1,280 of digits' 1,500 training images: five batches; its 297 held out likewise
INPUTS, CLASSES = 64, 10
WIDTH = 16  # the default: the sweep's smallest width (bench.core.options.WIDTHS)

__all__ = ["hessian", "hvp", "jacobian", "loss", "loss_and_grad", "make", "matmul_flops", "metrics", "model"]


def model(p: Params, x: Any, xp: Any) -> Any:
    h = xp.tanh(x @ p["W1"] + p["b1"])  # (n, 64) -> (n, width)
    h = xp.tanh(h @ p["W2"] + p["b2"])  # -> (n, width)
    return h @ p["W3"] + p["b3"]  # logits, -> (n, 10); the loss is digits' stable softmax cross-entropy


def loss_and_grad(p: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    n, k = y.shape
    h1 = x.dot(p["W1"])
    h1 += p["b1"]
    np.tanh(h1, out=h1)
    h2 = h1.dot(p["W2"])
    h2 += p["b2"]
    np.tanh(h2, out=h2)
    z = h2.dot(p["W3"])
    z += p["b3"]
    z -= z.max(axis=1, keepdims=True)  # shifted by each row's largest logit
    e = np.exp(z)
    s = e.dot(np.ones((k, 1), dtype=e.dtype))  # row sums as a BLAS product (tasks/digits.py)
    z -= np.log(s)  # log-softmax
    loss = -np.vdot(y, z) / n
    e /= s
    e -= y
    e /= n  # d loss / d logits
    ones = np.ones(n, dtype=e.dtype)  # column sums as BLAS products
    d2 = e.dot(p["W3"].T)
    t = np.square(h2)
    d2 *= np.subtract(1.0, t, out=t)  # tanh' = 1 - h²
    d1 = d2.dot(p["W2"].T)
    t = np.square(h1, out=t)
    d1 *= np.subtract(1.0, t, out=t)
    return loss, {"W1": x.T.dot(d1), "b1": ones.dot(d1), "W2": h1.T.dot(d2), "b2": ones.dot(d2),
                  "W3": h2.T.dot(e), "b3": ones.dot(e)}  # fmt: skip


def _forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h1 = np.tanh(x.dot(p["W1"]) + p["b1"])
    h2 = np.tanh(h1.dot(p["W2"]) + p["b2"])
    return h1, h2, h2.dot(p["W3"]) + p["b3"]


def _with_ones(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a, np.ones((len(a), 1), dtype=a.dtype)], axis=1)  # (W; b) flattened is (W, b) in C order


def jacobian(p: Params, x: np.ndarray) -> np.ndarray:
    """The logits z = h2·W3 + b3, a row a sample and class, over θ = (W1, b1, W2, b2, W3, b3): with uₗ = (hₗ, 1)
    (u₀ = (x, 1)), sₗ = 1 − hₗ² (tanh's derivative), ∂zᵢc/∂(W3, b3)[a, d] = u₂ᵢₐ·δcd,
    ∂zᵢc/∂(W2, b2)[a, j] = u₁ᵢₐ·B₂ᵢⱼc with B₂ᵢⱼc = s₂ᵢⱼ·W3ⱼc, ∂zᵢc/∂(W1, b1)[a, k] = u₀ᵢₐ·B₁ᵢₖc with
    B₁ᵢₖc = s₁ᵢₖ·Σⱼ W2ₖⱼ·B₂ᵢⱼc."""
    h1, h2, _ = _forward(p, x)
    n, k = len(x), p["b3"].size
    b2 = (1 - h2 * h2)[:, :, None] * p["W3"]  # (n, width, k)
    b1 = (1 - h1 * h1)[:, :, None] * np.matmul(p["W2"], b2)
    parts = [np.einsum("ia,ijc->icaj", _with_ones(u), b).reshape(n * k, -1) for u, b in ((x, b1), (h1, b2))]
    return np.concatenate([*parts, np.kron(_with_ones(h2), np.eye(k, dtype=h2.dtype))], axis=1)


def _times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a·b[d] for each d, a (n, p) and b (d, p, q), as one 2-d product: numpy's stacked matmul of a 2-d operand
    with a 3-d one runs a few times slower."""
    d, p, q = b.shape
    return a.dot(b.transpose(1, 0, 2).reshape(p, d * q)).reshape(len(a), d, q).transpose(1, 0, 2)


class _Pass:
    """The forward and backward pass of ``loss_and_grad`` at ``p``, kept for the R-operator: with uₗ = (hₗ, 1)
    (h₀ = x), sₗ = 1 − hₗ² (tanh's derivative), e = (softmax(z) − y) / n, δ₃ = e, gₗ = δₗ₊₁·Wₗ₊₁ᵀ, δₗ = gₗ ⊙ sₗ."""

    def __init__(self, p: Params, x: np.ndarray, y: np.ndarray) -> None:
        self.h1, self.h2, z = _forward(p, x)
        prob = np.exp(z - z.max(axis=1, keepdims=True))
        self.prob = prob / prob.sum(axis=1, keepdims=True)
        self.n = len(y)
        self.e = (self.prob - y) / self.n
        self.g2 = self.e.dot(p["W3"].T)
        self.s2 = 1 - self.h2 * self.h2
        self.d2 = self.g2 * self.s2
        self.g1 = self.d2.dot(p["W2"].T)
        self.s1 = 1 - self.h1 * self.h1


def _along(
    p: Params, x: np.ndarray, f: _Pass, forward: list[np.ndarray], backward: list[np.ndarray]
) -> list[np.ndarray]:
    """R{∂L/∂θ}, the derivative of the gradient along each of d directions V = (V1, c1, V2, c2, V3, c3) (Pearlmutter's
    R-operator on the backward pass), given through ``forward`` = [uₗ₋₁·Vₗ + cₗ for l = 1, 2, 3] and ``backward`` =
    [δ₂·V2ᵀ, δ₃·V3ᵀ], each (d, n, ·): R{h₁} = s₁ ⊙ (x·V1 + c1), R{h₂} = s₂ ⊙ (R{h₁}·W2 + h₁·V2 + c2),
    R{z} = R{h₂}·W3 + h₂·V3 + c3, R{e} = p ⊙ (R{z} − Σ p ⊙ R{z}) / n,
    R{δ₂} = (R{e}·W3ᵀ + e·V3ᵀ) ⊙ s₂ − 2·g₂ ⊙ h₂ ⊙ R{h₂} (likewise R{δ₁}), and R{∂L/∂Wₗ} = R{hₗ₋₁}ᵀ·δₗ + hₗ₋₁ᵀ·R{δₗ},
    R{∂L/∂bₗ} = Σᵢ R{δₗ}: in θ's order, each (d, ...)."""
    rh1 = f.s1 * forward[0]
    rh2 = f.s2 * (np.matmul(rh1, p["W2"]) + forward[1])
    rz = np.matmul(rh2, p["W3"]) + forward[2]
    re = f.prob * (rz - (f.prob * rz).sum(axis=2, keepdims=True)) / f.n
    rd2 = (np.matmul(re, p["W3"].T) + backward[1]) * f.s2 - 2 * f.g2 * f.h2 * rh2
    rd1 = (np.matmul(rd2, p["W2"].T) + backward[0]) * f.s1 - 2 * f.g1 * f.h1 * rh1
    return [_times(x.T, rd1), rd1.sum(axis=1), np.matmul(rh1.transpose(0, 2, 1), f.d2) + _times(f.h1.T, rd2),
            rd2.sum(axis=1), np.matmul(rh2.transpose(0, 2, 1), f.e) + _times(f.h2.T, re), re.sum(axis=1)]  # fmt: skip


def hvp(p: Params, x: np.ndarray, y: np.ndarray, v: Params) -> dict[str, np.ndarray]:
    """∇²L·v, v a direction of the parameters' shapes, with one-hot y: the gradient's derivative along v (``_along``),
    a pass forward and one back, without the n × n Hessian (at width 1,024, 10¹² entries)."""
    f = _Pass(p, x, y)
    forward = [u.dot(v[f"W{i}"]) + v[f"b{i}"] for i, u in enumerate((x, f.h1, f.h2), start=1)]
    backward = [f.d2.dot(v["W2"].T), f.e.dot(v["W3"].T)]
    out = _along(p, x, f, [a[None] for a in forward], [a[None] for a in backward])
    return {k: a[0] for k, a in zip(("W1", "b1", "W2", "b2", "W3", "b3"), out, strict=True)}


def hessian(p: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over θ = (W1, b1, W2, b2, W3, b3), with one-hot y: ∇²L a row at a time, ∇²L·v for each unit vector v
    (``_along``), 128 at once. For the unit vector of (Wₗ; bₗ)[a, j], uₗ₋₁·Vₗ is uₗ₋₁[:, a] in column j and δₗ·Vₗᵀ is
    δₗ[:, j] in column a: both are written in place, not multiplied."""
    f = _Pass(p, x, y)
    n = len(y)
    units = [(_with_ones(u), w.shape[1]) for u, w in ((x, p["W1"]), (f.h1, p["W2"]), (f.h2, p["W3"]))]
    starts = np.cumsum([0] + [u.shape[1] * width for u, width in units])
    out = np.empty((starts[-1], starts[-1]), dtype=f.e.dtype)
    for first in range(0, starts[-1], 128):  # 128 directions at once: (128, n, width) arrays
        rows = np.arange(first, min(first + 128, starts[-1]))
        forward = [np.zeros((len(rows), n, width), dtype=f.e.dtype) for _, width in units]  # uₗ₋₁·Vₗ + cₗ
        backward = [np.zeros((len(rows), n, u.shape[1] - 1), dtype=f.e.dtype) for u, _ in units[1:]]  # δₗ·Vₗᵀ
        for layer, ((u, width), delta) in enumerate(zip(units, (None, f.d2, f.e), strict=True)):
            at = np.flatnonzero((rows >= starts[layer]) & (rows < starts[layer + 1]))
            a, j = np.divmod(rows[at] - starts[layer], width)
            forward[layer][at, :, j] = u[:, a].T
            if delta is not None:
                weight = a < u.shape[1] - 1  # not the bias
                backward[layer - 1][at[weight], :, a[weight]] = delta[:, j[weight]].T
        out[rows] = np.concatenate([r.reshape(len(rows), -1) for r in _along(p, x, f, forward, backward)], axis=1)
    return out


def metrics(p: Params) -> dict[str, float]:
    """Accuracy on digits' 297 held-out images (and on the training ones)."""
    x, y, x_test, y_test = data()
    q = {k: np.asarray(v) for k, v in p.items()}
    accuracy = lambda x, y: float(np.mean(np.argmax(model(q, x, np), axis=1) == np.argmax(y, axis=1)))  # noqa: E731
    return {"test_accuracy": accuracy(x_test, y_test), "train_accuracy": accuracy(x[:TRAIN], y[:TRAIN])}


def matmul_flops(batch: int, layers: list[int]) -> int:
    """The floating-point operations of one training step's matrix products, 2·m·k·n each, for a network of
    these layer sizes: each layer's forward product and its weight's gradient, and for every layer but the
    first the gradient of its input (the data need none). Bias additions, tanh, the softmax and the update are
    elementwise: under 1 % of a step at the sweep's largest width, and not counted."""
    total = 0
    for i, (a, b) in enumerate(zip(layers, layers[1:], strict=False)):
        products = 2 if i == 0 else 3
        total += products * 2 * batch * a * b
    return total


def make(n: int = WIDTH) -> Task:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"wide-mlp: width {n!r} is not a whole number of 1 or more")
    x, y, _, _ = data()
    rng = np.random.default_rng(3)
    layers = [INPUTS, n, n, CLASSES]
    init: dict[str, np.ndarray] = {}
    for i, (a, b) in enumerate(zip(layers, layers[1:], strict=False), start=1):
        # Glorot's normal scaling: the tanh layers neither saturate nor vanish at any width
        init[f"W{i}"] = rng.normal(scale=np.sqrt(2.0 / (a + b)), size=(a, b))
        init[f"b{i}"] = np.zeros(b)
    return Task(
        name="wide-mlp",
        source=f"two-hidden-layer tanh network 64-{n}-{n}-10 (Glorot init, seeded) on sklearn.datasets.load_digits, "
        "1,280 to train, batches of 256",
        x=x[:TRAIN],
        y=y[:TRAIN],
        init=init,
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        hessian=hessian,
        hvp=hvp,
        jacobian=jacobian,
        lr=lambda epoch: 0.5,
        epochs=10,
        batch_size=BATCH,
        shuffle_seed=4,
        metrics=metrics,
        metric_floors={"test_accuracy": 0.9} if n == WIDTH else {},  # 0.916 at width 16
        flops=matmul_flops(BATCH, layers),
    )
