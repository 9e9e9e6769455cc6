"""Softmax regression on scikit-learn's handwritten digits (8×8 images, 10 classes), minibatch SGD with a
numerically stable log-softmax, and its accuracy on a held-out split."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tasks import Params, Task

TRAIN = 1500  # of the 1,797 images; the other 297 are held out


@functools.cache
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, one-hot y) for training, then for the held-out test, split by a seeded permutation; pixels
    scaled from 0..16 to 0..1. The images ship inside scikit-learn (no download)."""
    from sklearn.datasets import load_digits  # only the main environment has scikit-learn

    images, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(labels))
    x, y = images[order] / 16.0, np.eye(10)[labels[order]]
    parts = x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]
    for a in parts:
        a.flags.writeable = False  # shared by every Task made
    return parts


def model(p: Params, x: Any, xp: Any) -> Any:
    return x @ p["W"] + p["b"]  # logits, (n, 64) -> (n, 10)


def loss(z: Any, y: Any, xp: Any) -> Any:
    # log-softmax shifted by each row's largest logit: exp never overflows, and log never sees 0
    zc = z - xp.max(z, axis=1, keepdims=True)
    log_p = zc - xp.log(xp.sum(xp.exp(zc), axis=1, keepdims=True))
    return -xp.mean(xp.sum(y * log_p, axis=1))  # cross-entropy with one-hot labels


def loss_and_grad(p: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    n, k = y.shape
    z = x.dot(p["W"])
    z += p["b"]
    z -= z.max(axis=1, keepdims=True)  # shifted by each row's largest logit
    e = np.exp(z)
    s = e.dot(np.ones((k, 1), dtype=e.dtype))  # row sums as a BLAS product: a few times faster than .sum(axis=1)
    z -= np.log(s)  # log-softmax
    loss = -np.vdot(y, z) / n
    e /= s  # softmax
    e -= y
    e /= n  # d loss / d logits
    return loss, {"W": x.T.dot(e), "b": np.ones(n, dtype=e.dtype).dot(e)}


def jacobian(p: Params, x: np.ndarray) -> np.ndarray:
    """The logits, a row a sample and class, over θ = (W, b): z ⊗ I, z the samples with a column of ones
    (∂ logit_ic / ∂(W, b)[a, d] = z_ia·δ_cd, and (W; b) flattened is (W, b) in C order)."""
    z = np.concatenate([x, np.ones((len(x), 1), dtype=x.dtype)], axis=1)
    return np.kron(z, np.eye(p["b"].size, dtype=x.dtype))


def hessian(p: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over θ = (W, b), with one-hot y: Σᵢ zᵢzᵢᵀ ⊗ (diag(pᵢ) − pᵢpᵢᵀ) / n, pᵢ the softmax of sample i's logits and
    zᵢ the sample with a 1 (for b)."""
    n, k = y.shape
    z = np.concatenate([x, np.ones((n, 1), dtype=x.dtype)], axis=1)
    logits = z[:, :-1].dot(p["W"]) + p["b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    zp = (z[:, :, None] * prob[:, None, :]).reshape(n, -1)  # zᵢ ⊗ pᵢ
    out = -zp.T.dot(zp)
    c = np.arange(k)
    m = z.shape[1]
    diag = np.zeros((m, k, m, k), dtype=out.dtype)
    diag[:, c, :, c] = np.stack([(z.T * prob[:, j]).dot(z) for j in c])  # Σᵢ pᵢc·zᵢzᵢᵀ, in class c's block
    out += diag.reshape(m * k, m * k)
    out /= n
    return out


def metrics(p: Params) -> dict[str, float]:
    """Accuracy on the held-out images (and on the training ones)."""
    x, y, x_test, y_test = data()
    w, b = np.asarray(p["W"]), np.asarray(p["b"])
    accuracy = lambda x, y: float(np.mean(np.argmax(x @ w + b, axis=1) == np.argmax(y, axis=1)))  # noqa: E731
    return {"test_accuracy": accuracy(x_test, y_test), "train_accuracy": accuracy(x, y)}


def make() -> Task:
    x, y, _, _ = data()
    rng = np.random.default_rng(1)
    return Task(
        name="digits",
        source="softmax regression on sklearn.datasets.load_digits (1,797 8×8 images), 1,500 to train",
        x=x,
        y=y,
        # a small random start, not zeros: at equal logits the row max is a tie, where frameworks pick
        # different subgradients (they cancel in the loss, to rounding)
        init={"W": 0.01 * rng.normal(size=(64, 10)), "b": np.zeros(10)},
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        hessian=hessian,
        jacobian=jacobian,
        lr=lambda epoch: 0.5,
        epochs=20,
        batch_size=100,
        shuffle_seed=2,
        metrics=metrics,
        # linear classifiers reach about 95 % on these images (scikit-learn's own examples)
        metric_floors={"test_accuracy": 0.9},
    )
