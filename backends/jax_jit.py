"""``jax.jit`` over one training step, called once a step from Python, as JAX's docs teach it ("Training a
simple neural network", optax's "Getting started"): the parameters (and optax's state) in, the new ones and
the loss out, the learning rate an array argument (one trace for every rate). A task's optimiser other than
plain SGD is optax's, as in ``jax``. The objective alone is jitted likewise."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from backends.jax import Jax


class JaxJit(Jax):
    name = "jax-jit"
    mode = "compiled step"

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.update = jax.jit(self.sgd_step if self.optimizer.plain else self.optax_step)
        self.loss_jit = jax.jit(self.objective)
        self.stack_jit = jax.jit(jnp.stack)  # one call for the chunk's losses, not an eager op for each

    def sgd_step(self, p: dict[str, jax.Array], x: jax.Array, y: jax.Array, lr: jax.Array) -> tuple[Any, jax.Array]:
        loss, grads = jax.value_and_grad(self.objective)(p, x, y)
        return jax.tree.map(lambda p, g: p - lr * g, p, grads), loss

    def optax_step(
        self, p: dict[str, jax.Array], state: Any, x: jax.Array, y: jax.Array, lr: jax.Array
    ) -> tuple[Any, jax.Array]:
        loss, grads = jax.value_and_grad(self.objective)(p, x, y)
        return self.optax_update(p, state, grads, lr), loss

    def prepare(self, lrs: np.ndarray, orders: list[np.ndarray | None]) -> Any:
        """Each epoch's rate as a 0-d array of the run's dtype (a Python float would be a weak-typed scalar
        converted at every call), its order as an index array."""
        return [
            (self.asarray(np.asarray(lr)), None if o is None else self.asindex(o))
            for lr, o in zip(lrs, orders, strict=True)
        ]

    def step(self, x: jax.Array, y: jax.Array, lr: jax.Array) -> jax.Array:
        if self.optimizer.plain:
            self.p, loss = self.update(self.p, x, y, lr)
        else:
            (self.p, self.state), loss = self.update(self.p, self.state, x, y, lr)
        return loss

    def loss(self, x: jax.Array, y: jax.Array) -> jax.Array:
        return self.loss_jit(self.p, x, y)

    def stack(self, losses: list[jax.Array]) -> jax.Array:
        return self.stack_jit(losses)

    def gradient(self) -> dict[str, np.ndarray]:
        grads = jax.jit(jax.grad(self.objective))(self.p, self.x, self.y)
        return {k: np.asarray(g) for k, g in grads.items()}
