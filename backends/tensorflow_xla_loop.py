"""TensorFlow's compiled loop: ``tf.function(jit_compile=True)`` over a whole chunk of epochs, the loop
inside the graph (``tf.while_loop`` over epochs and, within each, over batches), compiled by XLA, as
``jax-scan`` scans. The parameters are tensors carried through the loop; the chunk's losses come back in
one ``tf.TensorArray``. A task's optimiser other than plain SGD is Keras's, as in ``tensorflow``: its
``apply_gradients`` on the ``tf.Variable``s inside the compiled loop (Keras's TensorFlow backend has no
stateless form), the loop carrying no parameters. Newton's method is ``tensorflow``'s step on the carried
parameters (nested tapes for the Hessian, ``tf.linalg.solve``), inside the loop.

Its operators beyond the gradient are ``tensorflow-xla``'s: each operator's function under
``tf.function(jit_compile=True)``, one compiled call. An operator is one evaluation at one point, not a
schedule of steps: there is no loop to put inside the program, and a loop of one call would compile the
same computation inside a ``tf.while_loop`` that runs once."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.tensorflow import OPERATORS, Tensorflow, tf  # TensorFlow as that module imports it: quietly
from backends.tensorflow_function import TensorflowFunction


class TensorflowXlaLoop(Tensorflow):
    name = "tensorflow-xla-loop"
    mode = "compiled loop"
    jit_compile = True  # for the operators: tensorflow-xla's compiled form (``TensorflowFunction.operator``)
    operators = {k: f"tf.function(jit_compile=True) of {v}, as tensorflow-xla" for k, v in OPERATORS.items()}
    operator = TensorflowFunction.operator

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        if self.opt is None:  # plain SGD: the parameters as tensors, carried through the loop
            self.p = {k: v.value() for k, v in self.p.items()}
        # one trace per chunk shape and per kind of order (None or a tensor): the schedule's values are tensors
        self.run_jit = tf.function(self.epochs, jit_compile=True)
        self.evaluate_jit = tf.function(self.losses, jit_compile=True)

    def values(self) -> dict[str, tf.Tensor]:
        return self.p if self.opt is None else super().values()

    def carried(self) -> dict[str, tf.Tensor]:
        """What the loop carries: the parameters, or nothing where Keras updates them as variables."""
        return self.p if self.opt is None else {}

    def value_and_grad(self, p: dict[str, tf.Tensor], x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, list[Any]]:
        with tf.GradientTape() as tape:
            tape.watch(p)
            loss = self.objective(p, x, y)
        return loss, tape.gradient(loss, p, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    def epochs(self, p, x, y, lrs, orders):
        def sgd_step(p, xb, yb, lr):
            loss, grads = self.value_and_grad(p, xb, yb)
            return {k: p[k] - lr * grads[k] for k in p}, loss

        def keras_step(p, xb, yb, lr):  # p is empty: Keras updates the variables
            loss, grads = self.value_and_grad(self.values(), xb, yb)
            self.apply([grads[k] for k in self.p], lr)
            return p, loss

        def newton_step(p, xb, yb, lr):
            loss, p = self.newton_step(p, xb, yb, lr)
            return p, loss

        step = newton_step if self.newton else sgd_step if self.opt is None else keras_step
        return self.scan(step, p, x, y, lrs, orders)

    def losses(self, p, x, y, lrs, orders):
        return self.scan(lambda p, xb, yb, lr: (p, self.objective(p or self.values(), xb, yb)), p, x, y, lrs, orders)[1]

    def scan(self, step, p, x, y, lrs, orders):
        """``step(p, xb, yb, lr) -> (p, loss)`` over every batch of every epoch: (final p, every loss)."""
        bs, epochs = self.task.batch, lrs.shape[0]
        rows = x.shape[0] if orders is None else orders.shape[1]  # an order may be part of an epoch
        nb = rows // bs
        losses = tf.TensorArray(x.dtype, size=epochs * nb)

        def epoch(e, p, losses):
            xs, ys = (x, y) if orders is None else (tf.gather(x, orders[e]), tf.gather(y, orders[e]))
            xs, ys = tf.reshape(xs, (nb, bs, *x.shape[1:])), tf.reshape(ys, (nb, bs, *y.shape[1:]))

            def batch(b, p, losses):
                p, loss = step(p, xs[b], ys[b], lrs[e])
                return b + 1, p, losses.write(e * nb + b, loss)

            _, p, losses = tf.while_loop(lambda b, *_: b < nb, batch, (tf.constant(0), p, losses))
            return e + 1, p, losses

        _, p, losses = tf.while_loop(lambda e, *_: e < epochs, epoch, (tf.constant(0), p, losses))
        return p, losses.stack()

    def prepare(self, lrs: np.ndarray, orders: list[np.ndarray | None]) -> Any:
        stacked = None if orders[0] is None else self.asindex(np.stack(orders))
        return self.asarray(lrs), stacked

    def run(self, chunk: Any) -> tf.Tensor:
        p, losses = self.run_jit(self.carried(), self.x, self.y, *chunk)
        if self.opt is None:
            self.p = p
        return losses

    def evaluate(self, chunk: Any) -> tf.Tensor:
        return self.evaluate_jit(self.carried(), self.x, self.y, *chunk)

    def params(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.p.items()}

    def gradient(self) -> dict[str, np.ndarray]:
        grads = tf.function(self.value_and_grad, jit_compile=True)(self.values(), self.x, self.y)[1]
        return {k: g.numpy() for k, g in grads.items()}
