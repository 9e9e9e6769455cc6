"""Hand-written training loops for quadratic, one per backend name: the yardsticks the adapters in
``backends/`` are measured against (``python -m bench run``: × hand-written).

Each is the loop that framework's own documentation or tutorials would write for full-batch gradient descent
on ``w·x² + b`` with the loss ``0.5·sum((pred − y)²)``, of its mode's kind (``backends.MODES``: a compiled
step's loop calls one compiled step a step from Python, a compiled loop's runs every step in one compiled
call): data, initial values and learning rate from the task, every step's loss kept (a framework scalar a
step, or a compiled loop's one array of them, as the adapters keep them), ``x²`` computed every step (the
adapters compute the model every step), and ``run`` ending in the framework's blocking read. numpy's loop
holds its parameters as Python floats, where the adapter keeps them in the task's (1,) arrays, so that its ×
hand-written is what the adapter costs over a numpy user's loop. Each framework is imported inside its
class: importing this module imports none.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import numpy as np

from tasks import Task


class Loop(Protocol):
    def run(self, steps: int) -> None: ...

    def params(self) -> dict[str, np.ndarray]: ...


class Numpy:
    """A numpy user's loop, as the numpy warm-up of PyTorch's "Learning PyTorch with examples" writes
    one: the gradient by hand, the parameters as Python floats (numpy scalars after the first update),
    the reductions as ``@`` and ``.sum()``, new arrays every step and no in-place tricks."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        self.x, self.y, self.dtype = task.x.astype(dtype), task.y.astype(dtype), dtype
        self.w, self.b = (float(task.init[k].astype(dtype)[0]) for k in "wb")
        self.lr, self.losses = task.lr(0), []

    def run(self, steps: int) -> None:
        x, y, w, b, lr = self.x, self.y, self.w, self.b, self.lr
        losses = []
        for _ in range(steps):
            x2 = x**2
            r = w * x2 + b - y
            losses.append(0.5 * (r @ r))
            w -= lr * (r @ x2)
            b -= lr * r.sum()
        self.w, self.b, self.losses = w, b, losses

    def params(self) -> dict[str, np.ndarray]:
        return {"w": np.array([self.w], self.dtype), "b": np.array([self.b], self.dtype)}


class Torch:
    """Tensors with ``requires_grad``, ``loss.backward()``, the update in place under ``no_grad``
    (PyTorch's "Learning PyTorch with examples", autograd section)."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        import torch

        self.torch, self.device, self.lr, self.losses = torch, device, task.lr(0), []
        tensor = functools.partial(torch.tensor, dtype=getattr(torch, dtype), device=device)
        self.x, self.y = tensor(task.x), tensor(task.y)
        self.w, self.b = tensor(task.init["w"], requires_grad=True), tensor(task.init["b"], requires_grad=True)

    def run(self, steps: int) -> None:
        self.losses = []
        for _ in range(steps):
            loss = 0.5 * ((self.w * self.x**2 + self.b - self.y) ** 2).sum()
            loss.backward()
            with self.torch.no_grad():
                self.w -= self.lr * self.w.grad
                self.b -= self.lr * self.b.grad
                self.w.grad, self.b.grad = None, None
            self.losses.append(loss.detach())
        synchronize(self.torch, self.device)

    def params(self) -> dict[str, np.ndarray]:
        return {"w": self.w.detach().cpu().numpy(), "b": self.b.detach().cpu().numpy()}


def synchronize(torch: Any, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def torch_module(torch: Any, task: Task, dtype: str, device: str) -> Any:
    """quadratic as an ``nn.Module`` with its two ``nn.Parameter``s."""

    class Quadratic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w, self.b = (torch.nn.Parameter(torch.tensor(task.init[k], dtype=getattr(torch, dtype))) for k in "wb")

        def forward(self, x: Any) -> Any:
            return self.w * x**2 + self.b

    return Quadratic().to(device)


class TorchNN:
    """An ``nn.Module``, ``torch.optim.SGD``: ``zero_grad``, ``backward``, ``step``."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        import torch

        self.torch, self.device, self.losses = torch, device, []
        self.x, self.y = (torch.tensor(a, dtype=getattr(torch, dtype), device=device) for a in (task.x, task.y))
        self.model = torch_module(torch, task, dtype, device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=task.lr(0))

    def step(self) -> Any:
        self.opt.zero_grad()
        loss = 0.5 * ((self.model(self.x) - self.y) ** 2).sum()
        loss.backward()
        self.opt.step()
        return loss.detach()

    def run(self, steps: int) -> None:
        self.losses = [self.step() for _ in range(steps)]
        synchronize(self.torch, self.device)

    def params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.model.named_parameters()}


class TorchCompile(Torch):
    """``torch.compile`` over a function that calls ``torch.func.grad_and_value`` of the loss and returns the
    updated parameters and the loss, the compile outside the transform as PyTorch's "torch.func interaction with
    torch.compile" writes it, called once a step from a Python loop."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        super().__init__(task, dtype, device)
        from backends.torch_compile import own  # a function of this loop's own, as the adapter compiles

        self.w, self.b = self.w.detach(), self.b.detach()
        self.grad_and_value = self.torch.func.grad_and_value(torch_quadratic_loss, argnums=(0, 1))
        self.update = self.torch.compile(own(self.update))

    def update(self, w: Any, b: Any, x: Any, y: Any) -> Any:
        (gw, gb), loss = self.grad_and_value(w, b, x, y)
        return w - self.lr * gw, b - self.lr * gb, loss

    def run(self, steps: int) -> None:
        losses = []
        for _ in range(steps):
            self.w, self.b, loss = self.update(self.w, self.b, self.x, self.y)
            losses.append(loss)
        self.losses = losses
        synchronize(self.torch, self.device)


def torch_quadratic_loss(w: Any, b: Any, x: Any, y: Any) -> Any:
    return 0.5 * ((w * x**2 + b - y) ** 2).sum()


class TorchNNCompile(TorchNN):
    """torch-nn's training step under ``torch.compile``, as PyTorch's "Where to apply torch.compile?" writes a
    compiled train step: ``train(mod, data)`` with ``opt.zero_grad(True)``, the module's forward, the loss,
    ``loss.backward()``, ``opt.step()``, here also returning the loss. The batch is its argument, as there: the
    code after a graph break is a frame of its own, which Dynamo leaves eager where it holds no tensor (the loss
    would be, with the batch read from ``self``). Compiled by two warm-up steps here, after which the
    parameters are set back."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        super().__init__(task, dtype, device)
        from backends.torch_compile import own  # functions of this loop's own, as the adapter compiles
        from backends.torch_nn_compile import own_step

        self.opt.step = own_step(self.opt)
        self.train = self.torch.compile(own(self.train))
        start = {k: v.detach().clone() for k, v in self.model.named_parameters()}
        self.run(2)
        with self.torch.no_grad():
            for k, v in self.model.named_parameters():
                v.copy_(start[k])

    def train(self, mod: Any, x: Any, y: Any) -> Any:
        self.opt.zero_grad(True)
        loss = 0.5 * ((mod(x) - y) ** 2).sum()
        value = loss.detach()  # read before the graph break at backward(), as the adapter reads it
        loss.backward()
        self.opt.step()
        return value

    def step(self) -> Any:
        return self.train(self.model, self.x, self.y)


class Jax:
    """``jax.value_and_grad`` called eagerly in a Python loop."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        import jax

        jax.config.update("jax_enable_x64", True)
        self.jax, self.lr, self.losses = jax, task.lr(0), []
        put = lambda a: jax.device_put(a.astype(dtype), jax.devices({"cuda": "gpu"}.get(device, device))[0])  # noqa: E731
        self.x, self.y, self.w, self.b = (put(a) for a in (task.x, task.y, task.init["w"], task.init["b"]))
        self.value_and_grad = jax.value_and_grad(quadratic_loss, argnums=(0, 1))

    def step(self) -> Any:
        loss, (gw, gb) = self.value_and_grad(self.w, self.b, self.x, self.y)
        self.w, self.b = self.w - self.lr * gw, self.b - self.lr * gb
        return loss

    def run(self, steps: int) -> None:
        self.losses = [self.step() for _ in range(steps)]
        self.jax.block_until_ready((self.losses, self.w, self.b))

    def params(self) -> dict[str, np.ndarray]:
        return {"w": np.asarray(self.w), "b": np.asarray(self.b)}


def quadratic_loss(w: Any, b: Any, x: Any, y: Any) -> Any:
    import jax.numpy as jnp

    return 0.5 * jnp.sum((w * x**2 + b - y) ** 2)


class JaxJit(Jax):
    """The JAX docs' training loop: a ``@jax.jit`` update function called in a Python loop."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        super().__init__(task, dtype, device)
        lr, value_and_grad = self.lr, self.value_and_grad

        @self.jax.jit
        def update(w: Any, b: Any, x: Any, y: Any) -> Any:
            loss, (gw, gb) = value_and_grad(w, b, x, y)
            return w - lr * gw, b - lr * gb, loss

        self.update = update

    def step(self) -> Any:
        self.w, self.b, loss = self.update(self.w, self.b, self.x, self.y)
        return loss


class JaxScan(Jax):
    """The steps as a ``jax.lax.scan`` inside one ``jax.jit`` (the docs of ``jax.lax.scan`` and JAX's "Control
    flow and logical operators with JIT"): the parameters carried, every step's loss stacked by the scan."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        super().__init__(task, dtype, device)
        jax, lr, value_and_grad = self.jax, self.lr, self.value_and_grad

        @functools.partial(jax.jit, static_argnames="steps")
        def train(w: Any, b: Any, x: Any, y: Any, steps: int) -> Any:
            def step(wb: Any, _: None) -> Any:
                loss, (gw, gb) = value_and_grad(*wb, x, y)
                return (wb[0] - lr * gw, wb[1] - lr * gb), loss

            (w, b), losses = jax.lax.scan(step, (w, b), length=steps)
            return w, b, losses

        self.train = train

    def run(self, steps: int) -> None:
        self.w, self.b, self.losses = self.train(self.w, self.b, self.x, self.y, steps=steps)
        self.jax.block_until_ready((self.losses, self.w, self.b))


class Tensorflow:
    """``tf.Variable``s, ``tf.GradientTape``, ``assign_sub`` (TensorFlow's "Introduction to gradients and
    automatic differentiation" and its custom training loop), the step given the batch, ``step(x, y)``, as
    that loop gives it each batch."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        from backends.tensorflow import tf  # with the project's TensorFlow settings (NumPy behaviour, quiet logs)

        self.tf, self.lr, self.losses = tf, task.lr(0), []
        self.x, self.y = (tf.constant(a.astype(dtype)) for a in (task.x, task.y))
        self.w, self.b = (tf.Variable(task.init[k].astype(dtype)) for k in "wb")

    def step(self, x: Any, y: Any) -> Any:
        with self.tf.GradientTape() as tape:
            loss = 0.5 * self.tf.reduce_sum((self.w * x**2 + self.b - y) ** 2)
        gw, gb = tape.gradient(loss, [self.w, self.b])
        self.w.assign_sub(self.lr * gw)
        self.b.assign_sub(self.lr * gb)
        return loss

    def run(self, steps: int) -> None:
        # eager, or a tf.function, on the CPU: each op, or call, is done when it returns
        self.losses = [self.step(self.x, self.y) for _ in range(steps)]

    def params(self) -> dict[str, np.ndarray]:
        return {"w": self.w.numpy(), "b": self.b.numpy()}


class TensorflowFunction(Tensorflow):
    """The training step as ``@tf.function``, called in a Python loop with the batch as its arguments, as
    TensorFlow's guides write it ("Better performance with tf.function"; "Writing a training loop from
    scratch": ``train_step(x, y)`` as a ``tf.function``); traced by its first call here, after which the
    parameters are set back."""

    jit_compile = False

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        super().__init__(task, dtype, device)
        self.step = self.tf.function(self.step, jit_compile=self.jit_compile)
        start = self.params()
        self.run(1)
        self.w.assign(start["w"])
        self.b.assign(start["b"])


class TensorflowXla(TensorflowFunction):
    """The same step as ``@tf.function(jit_compile=True)``, compiled by XLA, as TensorFlow's XLA guide
    ("XLA: Optimizing Compiler for Machine Learning", explicit compilation) writes it."""

    jit_compile = True


class TensorflowXlaLoop(Tensorflow):
    """The loop inside one ``tf.function(jit_compile=True)``: a Python ``for`` over ``tf.range``, which
    AutoGraph makes a ``tf.while_loop``, the same step on the ``tf.Variable``s in its body and every step's
    loss written to a ``tf.TensorArray`` (TensorFlow's "Better performance with tf.function": AutoGraph's
    loops, accumulating values in a loop; its XLA guide for ``jit_compile``), the data its arguments as the
    guide's ``train(dataset)`` takes its data."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        super().__init__(task, dtype, device)
        self.train = self.tf.function(self.steps, jit_compile=True)

    def steps(self, x: Any, y: Any, steps: int) -> Any:
        losses = self.tf.TensorArray(x.dtype, size=steps)
        for i in self.tf.range(steps):
            losses = losses.write(i, self.step(x, y))
        return losses.stack()

    def run(self, steps: int) -> None:
        self.losses = self.train(self.x, self.y, steps)  # one trace, and one XLA program, per number of steps


class Autograd:
    """``autograd.value_and_grad`` of a loss written with ``autograd.numpy``, the parameters updated as new
    arrays (HIPS autograd's tutorial)."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        import autograd

        self.x, self.y, self.lr, self.losses = task.x.astype(dtype), task.y.astype(dtype), task.lr(0), []
        self.w, self.b = (task.init[k].astype(dtype) for k in "wb")
        self.value_and_grad = autograd.value_and_grad(autograd_quadratic_loss, argnum=(0, 1))

    def run(self, steps: int) -> None:
        losses = []
        for _ in range(steps):
            loss, (gw, gb) = self.value_and_grad(self.w, self.b, self.x, self.y)
            self.w, self.b = self.w - self.lr * gw, self.b - self.lr * gb
            losses.append(loss)
        self.losses = losses

    def params(self) -> dict[str, np.ndarray]:
        return {"w": np.asarray(self.w), "b": np.asarray(self.b)}


def autograd_quadratic_loss(w: Any, b: Any, x: Any, y: Any) -> Any:
    import autograd.numpy as anp

    return 0.5 * anp.sum((w * x**2 + b - y) ** 2)


class Mxnet:
    """NDArrays with ``attach_grad``, ``autograd.record()``, ``backward()``, ``param[:] = param - lr * grad``
    (the MXNet straight-dope linear regression from scratch)."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        import mxnet as mx

        self.mx, self.lr, self.losses = mx, task.lr(0), []
        ctx = mx.gpu() if device == "cuda" else mx.cpu()
        self.x, self.y = (mx.nd.array(a, dtype=dtype, ctx=ctx) for a in (task.x, task.y))
        self.w, self.b = (mx.nd.array(task.init[k], dtype=dtype, ctx=ctx) for k in "wb")
        self.w.attach_grad()
        self.b.attach_grad()

    def step(self) -> Any:
        nd = self.mx.nd
        with self.mx.autograd.record():
            loss = 0.5 * nd.sum(nd.square(self.w * nd.square(self.x) + self.b - self.y))
        loss.backward()
        self.w[:] = self.w - self.lr * self.w.grad
        self.b[:] = self.b - self.lr * self.b.grad
        return loss

    def run(self, steps: int) -> None:
        self.losses = [self.step() for _ in range(steps)]
        self.mx.nd.waitall()

    def params(self) -> dict[str, np.ndarray]:
        return {"w": self.w.asnumpy(), "b": self.b.asnumpy()}


def gluon_block(mx: Any, dtype: str) -> Any:
    """quadratic's loss as a ``HybridBlock`` holding ``w`` and ``b``."""

    class QuadraticLoss(mx.gluon.HybridBlock):
        def __init__(self) -> None:
            super().__init__()
            with self.name_scope():
                self.w = self.params.get("w", shape=(1,), dtype=dtype)
                self.b = self.params.get("b", shape=(1,), dtype=dtype)

        def hybrid_forward(self, F: Any, x: Any, y: Any, w: Any, b: Any) -> Any:
            return 0.5 * F.sum(F.square(F.broadcast_add(F.broadcast_mul(w, F.square(x)), b) - y))

    return QuadraticLoss()


class MxnetGluon(Mxnet):
    """A hybridized ``HybridBlock`` (``static_alloc``, ``static_shape``) and ``gluon.Trainer('sgd')``."""

    def __init__(self, task: Task, dtype: str, device: str = "cpu") -> None:
        super().__init__(task, dtype, device)
        self.net = gluon_block(self.mx, dtype)
        self.net.initialize(ctx=self.x.context)
        self.net.w.set_data(self.w)
        self.net.b.set_data(self.b)
        self.net.hybridize(static_alloc=True, static_shape=True)
        self.trainer = self.mx.gluon.Trainer(self.net.collect_params(), "sgd", {"learning_rate": self.lr})

    def step(self) -> Any:
        with self.mx.autograd.record():
            loss = self.net(self.x, self.y)
        loss.backward()
        self.trainer.step(1)  # the loss is a sum already: no division by a batch size
        return loss

    def params(self) -> dict[str, np.ndarray]:
        return {"w": self.net.w.data().asnumpy(), "b": self.net.b.data().asnumpy()}


LOOPS: dict[str, type] = {
    "numpy": Numpy,
    "torch": Torch,
    "torch-nn": TorchNN,
    "torch-compile": TorchCompile,
    "torch-nn-compile": TorchNNCompile,
    "jax": Jax,
    "jax-jit": JaxJit,
    "jax-scan": JaxScan,
    "tensorflow": Tensorflow,
    "tensorflow-function": TensorflowFunction,
    "tensorflow-xla": TensorflowXla,
    "tensorflow-xla-loop": TensorflowXlaLoop,
    "autograd": Autograd,
    "mxnet": Mxnet,
    "mxnet-gluon": MxnetGluon,
}


def make(backend: str, task: Task, dtype: str, device: str = "cpu") -> Loop:
    """The hand-written loop of that backend's framework for the quadratic ``task``."""
    if task.name != "quadratic":
        raise ValueError(f"the hand-written loops train quadratic only, not {task.name}")
    return LOOPS[backend](task, dtype, device)
