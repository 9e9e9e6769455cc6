"""``tf.function`` over one training step on the ``tf.Variable``s (``tf.GradientTape`` inside, then
``assign_sub``, or a Keras optimiser's ``apply_gradients``: ``tensorflow``'s step, traced into a graph),
called once a step from Python, as TensorFlow's guides write a custom training loop ("Better performance
with tf.function", "Writing a training loop from scratch"). The learning rate is a tensor argument (a
Python float would be traced again for each value); the objective alone is a ``tf.function`` likewise."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from backends.tensorflow import Tensorflow, tf  # TensorFlow as that module imports it: quietly, without jax


class TensorflowFunction(Tensorflow):
    name = "tensorflow-function"
    mode = "compiled step"
    jit_compile: ClassVar[bool] = False  # the graph run by TensorFlow's executor; True: compiled by XLA

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.compiled_step = tf.function(super().step, jit_compile=self.jit_compile)
        self.compiled_loss = tf.function(super().loss, jit_compile=self.jit_compile)

    def prepare(self, lrs: np.ndarray, orders: list[np.ndarray | None]) -> Any:
        return [
            (tf.constant(lr, self.dtype), None if o is None else self.asindex(o))
            for lr, o in zip(lrs, orders, strict=True)
        ]

    def step(self, x: tf.Tensor, y: tf.Tensor, lr: tf.Tensor) -> tf.Tensor:
        return self.compiled_step(x, y, lr)

    def loss(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return self.compiled_loss(x, y)

    def gradient(self) -> dict[str, np.ndarray]:
        grads = tf.function(self.loss_and_grads, jit_compile=self.jit_compile)(self.x, self.y)[1]
        return {k: g.numpy() for k, g in zip(self.p, grads, strict=True)}
