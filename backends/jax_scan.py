"""jax.jit over a whole chunk of epochs: ``lax.scan`` over epochs, and within each over batches; a task's
optimiser other than plain SGD is optax's, as in ``jax``, its state carried through the scan, and Newton's method is
``jax``'s Newton step (jax.hessian, jnp.linalg.solve) as the scan's body.

An operator is one call, not a loop of steps, and a loop of one call compiled is jax.jit of that call: the operators
are ``jax-jit``'s, each under jax.jit. A loop of many calls would measure nothing more: at one point (the same θ and
v each time) its body is loop-invariant, and XLA may hoist it out of the loop and compute it once."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from backends.jax import Jax
from backends.jax_jit import JaxJit


class JaxScan(Jax):
    name = "jax-scan"
    mode = "compiled loop"
    operators, operator = JaxJit.operators, JaxJit.operator

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

        def newton_step(p, batch, lr):
            return self.newton_step(p, *batch, lr)

        step = optax_step if self.uses_optax else newton_step if self.newton else sgd_step
        return self.scan(step, p, x, y, lrs, orders)

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
        if self.uses_optax:
            (self.p, self.state), losses = self.run_jit((self.p, self.state), self.x, self.y, *chunk)
        else:
            self.p, losses = self.run_jit(self.p, self.x, self.y, *chunk)
        return losses

    def evaluate(self, chunk: Any) -> jax.Array:
        return self.evaluate_jit(self.p, self.x, self.y, *chunk)

    def gradient(self) -> dict[str, np.ndarray]:
        grads = jax.jit(jax.grad(self.objective))(self.p, self.x, self.y)
        return {k: np.asarray(g) for k, g in grads.items()}
