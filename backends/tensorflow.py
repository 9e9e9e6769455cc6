"""TensorFlow eager: ``tf.GradientTape`` over the task's model and loss, the update with ``assign_sub``; a
task's optimiser other than plain SGD is Keras's (``keras.optimizers.SGD``, ``Adam``, ``AdamW``, Keras 3
as TensorFlow ships it) over the ``tf.Variable``s, with ``apply_gradients``; Newton's method (which Keras
has not) is nested tapes for the Hessian and ``tf.linalg.solve``.

Operators beyond the gradient (``tasks.operators``) as TensorFlow's guide "Advanced automatic
differentiation" writes them: forward mode with ``tf.autodiff.ForwardAccumulator``, reverse mode with
``tf.GradientTape``, the Hessian-vector product forward over reverse as an accumulator around a tape, the
Hessian and the reverse-mode Jacobian with ``GradientTape.jacobian`` (vectorised by pfor, its default; in eager
mode pfor traces its loop body into a graph on every call). TensorFlow has no forward-mode Jacobian function:
that one is ``tf.vectorized_map`` (pfor again) of an accumulator's jvp over the identity's columns, a tangent a
column."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from backends._base import Backend
from tasks import operators
from tasks.optimizers import Optimizer


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
    TensorFlow process (bench.worker.timer.FRAMEWORKS). tf.lite goes without it, as it does where jax is absent."""
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


def keras_optimizer(opt: Optimizer, lr: float, dtype: str) -> Any:
    """The Keras optimiser that a task's optimiser (tasks.optimizers) names. Keras holds its learning rate
    in a variable of ``floatx`` (float32 unless set): made here with floatx the run's dtype, as a float64
    Keras model sets it (``keras.config.set_floatx``)."""
    with stderr_closed(), jax_hidden():
        import keras
    floatx = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        decay = opt.weight_decay or None  # None: no decay step at all (Keras's default)
        if opt.name == "sgd":
            return keras.optimizers.SGD(float(lr), momentum=opt.momentum, nesterov=opt.nesterov, weight_decay=decay)
        kind = keras.optimizers.AdamW if opt.decoupled else keras.optimizers.Adam
        return kind(float(lr), beta_1=opt.b1, beta_2=opt.b2, epsilon=opt.eps, weight_decay=decay)
    finally:
        keras.config.set_floatx(floatx)


def gradient_and_hessian(f: Any, theta: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """f(θ), its gradient and its Hessian: a tape's jacobian of the gradient an inner tape records, as the
    guide's Hessian section writes it (the Hessian operator and Newton's step both)."""
    with tf.GradientTape() as outer:
        outer.watch(theta)
        with tf.GradientTape() as inner:
            inner.watch(theta)
            value = f(theta)
        g = inner.gradient(value, theta)
    return value, g, outer.jacobian(g, theta)


TAPE = "tf.GradientTape"
OPERATORS = {
    "loss": "the task's model and loss on tf.experimental.numpy",
    "jvp": "tf.autodiff.ForwardAccumulator(θ, v).jvp of L",
    "vjp": f"{TAPE}.gradient of L with output_gradients 1",
    "hvp-fwd-rev": f"tf.autodiff.ForwardAccumulator(θ, v).jvp of {TAPE}.gradient",
    "hvp-rev-rev": f"{TAPE}.gradient of the dot of {TAPE}.gradient with v",
    "hessian": f"{TAPE}.jacobian of {TAPE}.gradient",
    "jacobian-fwd": "tf.vectorized_map of tf.autodiff.ForwardAccumulator.jvp over the identity's columns",
    "jacobian-rev": f"{TAPE}.jacobian (pfor)",
}


class Tensorflow(Backend):
    name = "tensorflow"
    xp = tf.experimental.numpy  # TensorFlow's NumPy API: the whole contract
    optimizer_formula = "keras"  # Keras's optimisers: tasks.formulas
    operators = OPERATORS

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: tf.Variable(self.asarray(v), name=k) for k, v in task.init.items()}
        self.newton = self.optimizer.name == "newton"
        self.shapes = operators.shapes_of(task.init)
        keras = not (self.optimizer.plain or self.newton)
        self.opt = keras_optimizer(self.optimizer, task.lr(0), dtype) if keras else None
        if self.opt is not None:
            self.opt.build(list(self.p.values()))  # its state now, not inside a compiled function

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
        if self.newton:
            loss, p = self.newton_step(self.values(), x, y, lr)
            for v, new in zip(self.p.values(), p.values(), strict=True):
                v.assign(new)
            return loss
        loss, grads = self.loss_and_grads(x, y)
        if self.opt is not None:
            self.apply(grads, lr)
            return loss
        for v, g in zip(self.p.values(), grads, strict=True):
            v.assign_sub(lr * g)
        return loss

    def apply(self, grads: list[Any], lr: Any) -> None:
        """The Keras optimiser's step at the epoch's rate, on the variables (in order)."""
        self.opt.learning_rate = lr
        self.opt.apply_gradients(zip(grads, self.p.values(), strict=True))

    def newton_step(self, p: dict[str, Any], x: tf.Tensor, y: tf.Tensor, lr: Any) -> tuple[tf.Tensor, dict[str, Any]]:
        """Damped Newton on the batch (tasks.optimizers.Newton): the loss at ``p`` and the parameters after
        θ ← θ − γ·d, (H + λI)·d = g solved by ``tf.linalg.solve``, over θ the parameters flattened in order."""
        theta = tf.concat([tf.reshape(a, (-1,)) for a in p.values()], axis=0)
        f = operators.flat_loss(self.task, x, y, self.shapes, self.xp)
        loss, g, h = gradient_and_hessian(f, theta)
        if self.optimizer.damping:
            h = h + self.optimizer.damping * tf.eye(h.shape[0], dtype=h.dtype)
        d = tf.linalg.solve(h, tf.reshape(g, (-1, 1)))
        return loss, operators.unflatten(theta - lr * tf.reshape(d, (-1,)), self.shapes, self.xp)

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

    # -- operators beyond the gradient: f is L or the model, of θ (tasks.operators) ------------------
    def jvp(self, f: Any, theta: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
        with tf.autodiff.ForwardAccumulator(theta, v) as acc:
            value = f(theta)
        return acc.jvp(value)

    def vjp(self, f: Any, theta: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(theta)
            value = f(theta)
        return tape.gradient(value, theta, output_gradients=tf.ones_like(value))

    def hvp_fwd_rev(self, f: Any, theta: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
        with tf.autodiff.ForwardAccumulator(theta, v) as acc:
            with tf.GradientTape() as tape:
                tape.watch(theta)
                value = f(theta)
            g = tape.gradient(value, theta)
        return acc.jvp(g)

    def hvp_rev_rev(self, f: Any, theta: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as outer:
            outer.watch(theta)
            with tf.GradientTape() as inner:
                inner.watch(theta)
                value = f(theta)
            gv = tf.tensordot(inner.gradient(value, theta), v, 1)
        return outer.gradient(gv, theta)

    def hessian(self, f: Any, theta: tf.Tensor) -> tf.Tensor:
        return gradient_and_hessian(f, theta)[2]

    def jacobian_fwd(self, f: Any, theta: tf.Tensor) -> tf.Tensor:
        def column(e: tf.Tensor) -> tf.Tensor:  # ∂f/∂θ·e: one jvp
            with tf.autodiff.ForwardAccumulator(theta, e) as acc:
                out = f(theta)
            return acc.jvp(out)

        return tf.transpose(tf.vectorized_map(column, tf.eye(theta.shape[0], dtype=theta.dtype)))

    def jacobian_rev(self, f: Any, theta: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(theta)
            out = f(theta)
        return tape.jacobian(out, theta)
