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

__all__ = ["loss", "loss_and_grad", "make", "matmul_flops", "metrics", "model"]


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
        lr=lambda epoch: 0.5,
        epochs=10,
        batch_size=BATCH,
        shuffle_seed=4,
        metrics=metrics,
        metric_floors={"test_accuracy": 0.9} if n == WIDTH else {},  # 0.916 at width 16
        flops=matmul_flops(BATCH, layers),
    )
