"""``jax.jit`` over one training step, called once a step from Python, as JAX's docs teach it ("Training a
simple neural network", optax's "Getting started"): the parameters (and optax's state) in, the new ones and
the loss out, the learning rate an array argument (one trace for every rate). A task's optimiser other than
plain SGD is optax's, as in ``jax``; Newton's method is ``jax``'s step under jax.jit (the gradient, jax.hessian and
jnp.linalg.solve in the one program). The objective alone is jitted likewise, and so is each operator: jax.jit of
``jax``'s transformation, made once per ``operator`` call, compiled at its first call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from backends.jax import Jax
from tasks import operators


class JaxJit(Jax):
    name = "jax-jit"
    mode = "compiled step"
    operators = {k: f"jax.jit of {v}" for k, v in Jax.operators.items()}

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        step = self.optax_step if self.uses_optax else self.newton_step if self.newton else self.sgd_step
        self.update = jax.jit(step)  # the stateless ones alike: (p, x, y, lr) -> (p, loss)
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
        if self.uses_optax:
            (self.p, self.state), loss = self.update(self.p, self.state, x, y, lr)
        else:
            self.p, loss = self.update(self.p, x, y, lr)
        return loss

    def loss(self, x: jax.Array, y: jax.Array) -> jax.Array:
        return self.loss_jit(self.p, x, y)

    def stack(self, losses: list[jax.Array]) -> jax.Array:
        return self.stack_jit(losses)

    def gradient(self) -> dict[str, np.ndarray]:
        grads = jax.jit(jax.grad(self.objective))(self.p, self.x, self.y)
        return {k: np.asarray(g) for k, g in grads.items()}

    def operator(self, name: str, at: operators.Point) -> Callable[[], Any]:
        """``operator_function``'s function of (θ, v) under jax.jit, made once: its first call traces and compiles
        it (JAX reports both to jax.monitoring: ``compile_seconds`` counts them), each later one runs the program.
        The data it closes over are the program's constants."""
        fn, args = self.operator_function(name, at)
        compiled = jax.jit(fn)
        return lambda: compiled(*args)
