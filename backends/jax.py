"""jax.value_and_grad, called eagerly: every step traces the loss again and dispatches op by op. A task's
optimiser other than plain SGD is optax's (``optax.sgd``, ``optax.adam``, ``optax.adamw``, L2 decay as
``optax.add_decayed_weights`` before them), its rate set each step through ``optax.inject_hyperparams``. Newton's
method, which optax has not (its nearest, optax.lbfgs, is quasi-Newton), is written here with jax.hessian and
jnp.linalg.solve (``newton_step``).

The operators beyond the gradient are JAX's own transformations of the flat loss, as its autodiff cookbook
composes them (forward over reverse: jax.jvp of jax.grad), called eagerly like the step."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from backends._base import Backend
from tasks import operators
from tasks.optimizers import Optimizer

jax.config.update("jax_enable_x64", True)  # JAX is float32-only unless asked; float32 runs pass float32 arrays

# JAX's own account of its compilations (tracing to a jaxpr, lowering it, XLA compiling it), which it reports to
# listeners of jax.monitoring: also for the one-operation programs eager jax compiles as it first meets each
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")  # fmt: skip
COMPILING = {"seconds": 0.0}


def compiled_for(event: str, duration: float, **_: Any) -> None:
    if event in COMPILE_EVENTS:
        COMPILING["seconds"] += duration


jax.monitoring.register_event_duration_secs_listener(compiled_for)


def sgd_l2(learning_rate: Any, momentum: float, nesterov: bool, weight_decay: float) -> optax.GradientTransformation:
    """optax's SGD (momentum as ``optax.trace``), L2 decay added to the gradient first, as PyTorch's SGD does."""
    sgd = optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov)
    return optax.chain(optax.add_decayed_weights(weight_decay), sgd) if weight_decay else sgd


def adam_l2(
    learning_rate: Any, b1: float, b2: float, eps: float, eps_root: float, weight_decay: float
) -> optax.GradientTransformation:
    """optax's Adam, L2 decay added to the gradient first (optax.adam has no decay of its own)."""
    adam = optax.adam(learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    return optax.chain(optax.add_decayed_weights(weight_decay), adam) if weight_decay else adam


def optax_optimizer(opt: Optimizer, lr: float, dtype: str) -> optax.GradientTransformation:
    """The optax optimiser that a task's optimiser (tasks.optimizers) names. The learning rate is its one
    injected hyperparameter, an array of the run's dtype (set each step: ``with_rate``); the other settings
    stay Python numbers (optax's ``eps_root`` its default 0), weak in jax's promotion as in numpy's."""
    if opt.name == "sgd":
        factory, settings = sgd_l2, {"momentum": opt.momentum, "nesterov": opt.nesterov}
    else:
        factory = optax.adamw if opt.decoupled else adam_l2
        settings = {"b1": opt.b1, "b2": opt.b2, "eps": opt.eps, "eps_root": 0.0}
    settings["weight_decay"] = opt.weight_decay
    inject = optax.inject_hyperparams(factory, static_args=tuple(settings), hyperparam_dtype=np.dtype(dtype))
    return inject(learning_rate=lr, **settings)


def with_rate(state: Any, lr: Any) -> Any:
    """The optimiser's state with the step's learning rate (``inject_hyperparams``' hyperparameter)."""
    return state._replace(hyperparams={**state.hyperparams, "learning_rate": lr})


class Jax(Backend):
    name = "jax"
    is_async = True
    devices = ("cpu", "cuda")
    xp = jnp  # jax.numpy follows the array API: the whole contract, as it stands
    operators = {"loss": "the task's model and loss", "jvp": "jax.jvp", "vjp": "jax.vjp, its pullback of 1",
                 "hvp-fwd-rev": "jax.jvp of jax.grad", "hvp-rev-rev": "jax.grad of jnp.vdot(jax.grad(f), v)",
                 "hessian": "jax.hessian", "jacobian-fwd": "jax.jacfwd", "jacobian-rev": "jax.jacrev"}  # fmt: skip

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v) for k, v in task.init.items()}
        self.value_and_grad = jax.value_and_grad(self.objective)
        self.newton = self.optimizer.name == "newton"
        self.uses_optax = not (self.optimizer.plain or self.newton)  # optax's optimiser and its state: the rest
        if self.uses_optax:
            self.tx = optax_optimizer(self.optimizer, task.lr(0), dtype)
            self.state = self.tx.init(self.p)

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
        if self.newton:
            self.p, loss = self.newton_step(self.p, x, y, lr)
            return loss
        loss, grads = self.value_and_grad(self.p, x, y)
        if self.optimizer.plain:
            self.p = jax.tree.map(lambda p, g: p - lr * g, self.p, grads)
            return loss
        self.p, self.state = self.optax_update(self.p, self.state, grads, self.asarray(np.array(lr)))
        return loss

    def optax_update(self, p: Any, state: Any, grads: Any, lr: jax.Array) -> tuple[Any, Any]:
        """optax's step at the rate ``lr``: new parameters and state."""
        updates, state = self.tx.update(grads, with_rate(state, lr), p)
        return optax.apply_updates(p, updates), state

    def newton_step(
        self, p: dict[str, jax.Array], x: jax.Array, y: jax.Array, lr: Any
    ) -> tuple[dict[str, jax.Array], jax.Array]:
        """Damped Newton on the batch: the flat loss's gradient g (jax.value_and_grad) and Hessian H (jax.hessian,
        as the ``hessian`` operator), d solving (H + λI)·d = g (jnp.linalg.solve), θ − lr·d split back by slices.
        The new parameters and the loss before the update."""
        shapes = operators.shapes_of(p)
        f = operators.flat_loss(self.task, x, y, shapes, jnp)
        theta = jnp.concatenate([jnp.ravel(a) for a in p.values()])
        loss, g = jax.value_and_grad(f)(theta)
        h = self.hessian(f, theta)
        if self.optimizer.damping:
            h = h + self.optimizer.damping * jnp.eye(theta.shape[0], dtype=theta.dtype)
        d = jnp.linalg.solve(h, g)
        return operators.unflatten(theta - lr * d, shapes, jnp), loss

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

    def compile_seconds(self) -> float:
        return COMPILING["seconds"]

    # -- beyond the gradient: f is the flat loss (or, for the Jacobians, the flat model) of θ ------------------
    def jvp(self, f: Any, theta: jax.Array, v: jax.Array) -> jax.Array:
        return jax.jvp(f, (theta,), (v,))[1]

    def vjp(self, f: Any, theta: jax.Array) -> jax.Array:
        value, pullback = jax.vjp(f, theta)
        return pullback(jnp.ones_like(value))[0]

    def hvp_fwd_rev(self, f: Any, theta: jax.Array, v: jax.Array) -> jax.Array:
        return jax.jvp(jax.grad(f), (theta,), (v,))[1]

    def hvp_rev_rev(self, f: Any, theta: jax.Array, v: jax.Array) -> jax.Array:
        return jax.grad(lambda t: jnp.vdot(jax.grad(f)(t), v))(theta)

    def hessian(self, f: Any, theta: jax.Array) -> jax.Array:
        return jax.hessian(f)(theta)

    def jacobian_fwd(self, g: Any, theta: jax.Array) -> jax.Array:
        return jax.jacfwd(g)(theta)

    def jacobian_rev(self, g: Any, theta: jax.Array) -> jax.Array:
        return jax.jacrev(g)(theta)
