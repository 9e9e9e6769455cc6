"""``tf.function`` over one training step on the ``tf.Variable``s (``tf.GradientTape`` inside, then
``assign_sub``, or a Keras optimiser's ``apply_gradients``: ``tensorflow``'s step, traced into a graph),
called once a step from Python, as TensorFlow's guides write a custom training loop ("Better performance
with tf.function", "Writing a training loop from scratch"). The learning rate is a tensor argument (a
Python float would be traced again for each value); the objective alone is a ``tf.function`` likewise, and
so is each operator beyond the gradient (``tensorflow``'s, traced once, on the first call), and Newton's step."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from backends.tensorflow import OPERATORS, Tensorflow, tf  # TensorFlow as that module imports it: quietly
from tasks import operators


class TensorflowFunction(Tensorflow):
    name = "tensorflow-function"
    mode = "compiled step"
    jit_compile: ClassVar[bool] = False  # the graph run by TensorFlow's executor; True: compiled by XLA
    operators = {k: f"tf.function of {v}" for k, v in OPERATORS.items()}

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

    def operator(self, name: str, at: operators.Point) -> Callable[[], Any]:
        """The operator's function under ``tf.function`` (``jit_compile`` as the mode's), traced and compiled on
        the first call; θ, v and the data are its arguments or captured tensors, not constants in the graph."""
        fn, args = self.operator_function(name, at)
        # a partial of its own: tf.function tallies traces by the Python function's code, which every operator's
        # function shares (one lambda of operator_function), and warns of "retracing" at the fifth operator
        compiled = tf.function(functools.partial(fn), jit_compile=self.jit_compile)
        return lambda: compiled(*args)
