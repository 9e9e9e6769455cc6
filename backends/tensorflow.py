"""TensorFlow eager: ``tf.GradientTape`` over the task's model and loss, the update with ``assign_sub``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from backends._base import Backend


@contextlib.contextmanager
def stderr_closed() -> Iterator[None]:
    """File descriptor 2 onto /dev/null for the moment: TensorFlow's C++ start-up writes its notices there
    ("oneDNN custom operations are on", "All log messages before absl::InitializeLog()") before any log
    level applies. A Python exception still comes through: it is printed after, by the interpreter."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def jax_hidden() -> Iterator[None]:
    """jax unimportable for the moment, where it is not loaded yet: TensorFlow's own import (tf.lite's
    converter) imports jax wherever it is installed, which would load a second framework into every
    TensorFlow process (bench.timing.FRAMEWORKS). tf.lite goes without it, as it does where jax is absent."""
    if "jax" in sys.modules:
        yield
        return
    sys.modules["jax"] = None  # type: ignore[assignment]  # import jax now raises ImportError
    try:
        yield
    finally:
        del sys.modules["jax"]


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # its notices later on, not its warnings and errors
with stderr_closed(), jax_hidden():
    import tensorflow as tf

# tf.Tensor with NumPy's methods (``.T``), indexing and type promotion, which the array contract
# (tasks.contract) asks for; a Python float stays weak, as NEP 50 has it: float32 * 0.5 is float32.
tf.experimental.numpy.experimental_enable_numpy_behavior(prefer_float32=True)


class Tensorflow(Backend):
    name = "tensorflow"
    xp = tf.experimental.numpy  # TensorFlow's NumPy API: the whole contract

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: tf.Variable(self.asarray(v), name=k) for k, v in task.init.items()}

    def asarray(self, a: np.ndarray) -> tf.Tensor:
        return tf.constant(np.asarray(a, dtype=self.dtype))

    def asindex(self, order: np.ndarray) -> tf.Tensor:
        return tf.constant(order)

    def take(self, a: tf.Tensor, order: tf.Tensor) -> tf.Tensor:
        return tf.gather(a, order)

    def objective(self, p: dict[str, Any], x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return self.task.loss(self.task.model(p, x, self.xp), y, self.xp)

    def values(self) -> dict[str, tf.Tensor]:
        """The variables read as tensors, which have NumPy's methods (a ``tf.Variable`` has no ``.T``)."""
        return {k: v.value() for k, v in self.p.items()}

    def loss_and_grads(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """The loss and its gradient for each variable, in order (0 for one the loss does not reach)."""
        with tf.GradientTape() as tape:
            loss = self.objective(self.values(), x, y)
        return loss, tape.gradient(loss, list(self.p.values()), unconnected_gradients=tf.UnconnectedGradients.ZERO)

    def step(self, x: tf.Tensor, y: tf.Tensor, lr: float) -> tf.Tensor:
        loss, grads = self.loss_and_grads(x, y)
        for v, g in zip(self.p.values(), grads, strict=True):
            v.assign_sub(lr * g)
        return loss

    def loss(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return self.objective(self.values(), x, y)

    def stack(self, losses: list[tf.Tensor]) -> tf.Tensor:
        return tf.stack(losses)

    def to_numpy(self, a: tf.Tensor) -> np.ndarray:
        return a.numpy()

    def params(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.p.items()}

    def gradient(self) -> dict[str, np.ndarray]:
        grads = self.loss_and_grads(self.x, self.y)[1]
        return {k: g.numpy() for k, g in zip(self.p, grads, strict=True)}
