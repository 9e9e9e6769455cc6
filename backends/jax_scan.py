"""jax.jit over a whole chunk of epochs: ``lax.scan`` over epochs, and within each over batches; a task's
optimiser other than plain SGD is optax's, as in ``jax``, its state carried through the scan."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from backends.jax import Jax


class JaxScan(Jax):
    name = "jax-scan"
    mode = "compiled loop"

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.run_jit, self.evaluate_jit = jax.jit(self.epochs), jax.jit(self.losses)

    def epochs(self, p, x, y, lrs, orders):
        def sgd_step(p, batch, lr):
            loss, grads = jax.value_and_grad(self.objective)(p, *batch)
            return jax.tree.map(lambda p, g: p - lr * g, p, grads), loss

        def optax_step(carry, batch, lr):  # carry: (parameters, optax's state)
            loss, grads = jax.value_and_grad(self.objective)(carry[0], *batch)
            return self.optax_update(*carry, grads, lr), loss

        return self.scan(sgd_step if self.optimizer.plain else optax_step, p, x, y, lrs, orders)

    def losses(self, p, x, y, lrs, orders):
        return self.scan(lambda p, batch, lr: (p, self.objective(p, *batch)), p, x, y, lrs, orders)[1]

    def scan(self, step, p, x, y, lrs, orders):
        """``step(p, batch, lr) -> (p, loss)`` over every batch of every epoch: (final p, every loss)."""
        bs = self.task.batch

        def epoch(p, lr_order):
            lr, order = lr_order
            xs, ys = (x, y) if order is None else (x[order], y[order])  # an order may be part of an epoch
            nb = xs.shape[0] // bs
            batches = (xs.reshape(nb, bs, *x.shape[1:]), ys.reshape(nb, bs, *y.shape[1:]))
            return jax.lax.scan(lambda p, b: step(p, b, lr), p, batches)

        p, losses = jax.lax.scan(epoch, p, (lrs, orders))
        return p, losses.reshape(-1)

    def prepare(self, lrs: np.ndarray, orders: list[np.ndarray | None]) -> Any:
        stacked = None if orders[0] is None else self.asindex(np.stack(orders))
        return self.asarray(lrs), stacked

    def run(self, chunk: Any) -> jax.Array:
        if self.optimizer.plain:
            self.p, losses = self.run_jit(self.p, self.x, self.y, *chunk)
        else:
            (self.p, self.state), losses = self.run_jit((self.p, self.state), self.x, self.y, *chunk)
        return losses

    def evaluate(self, chunk: Any) -> jax.Array:
        return self.evaluate_jit(self.p, self.x, self.y, *chunk)

    def gradient(self) -> dict[str, np.ndarray]:
        grads = jax.jit(jax.grad(self.objective))(self.p, self.x, self.y)
        return {k: np.asarray(g) for k, g in grads.items()}
