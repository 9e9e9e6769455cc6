"""jax.value_and_grad, called eagerly: every step traces the loss again and dispatches op by op."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from backends._base import Backend

jax.config.update("jax_enable_x64", True)  # JAX is float32-only unless asked; float32 runs pass float32 arrays


class Jax(Backend):
    name = "jax"
    is_async = True
    devices = ("cpu", "cuda")
    xp = jnp  # jax.numpy follows the array API: the whole contract, as it stands

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v) for k, v in task.init.items()}
        self.value_and_grad = jax.value_and_grad(self.objective)

    @property
    def jax_device(self) -> jax.Device:
        return jax.devices({"cuda": "gpu"}.get(self.device, self.device))[0]

    def asarray(self, a: np.ndarray) -> jax.Array:
        return jax.device_put(np.asarray(a, dtype=self.dtype), self.jax_device)

    def asindex(self, order: np.ndarray) -> jax.Array:
        return jax.device_put(order, self.jax_device)

    def objective(self, p: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
        return self.task.loss(self.task.model(p, x, self.xp), y, self.xp)

    def step(self, x: jax.Array, y: jax.Array, lr: float) -> jax.Array:
        loss, grads = self.value_and_grad(self.p, x, y)
        self.p = jax.tree.map(lambda p, g: p - lr * g, self.p, grads)
        return loss

    def loss(self, x: jax.Array, y: jax.Array) -> jax.Array:
        return self.objective(self.p, x, y)

    def stack(self, losses: list[jax.Array]) -> jax.Array:
        return jnp.stack(losses)

    def wait(self, out: Any) -> None:
        jax.block_until_ready((out, self.p))

    def params(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.p.items()}

    def gradient(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(g) for k, g in jax.grad(self.objective)(self.p, self.x, self.y).items()}
