"""MXNet Gluon: a hybridized ``HybridBlock`` holding the task's parameters, ``gluon.Trainer('sgd')``."""

from __future__ import annotations

import operator

import numpy as np
from mxnet import autograd, gluon, init, nd

from backends.mxnet import Mxnet


class Broadcasting:
    """A symbol whose operators broadcast. Inside a hybridized block the model sees ``mx.sym``,
    and MXNet 1.x Symbol arithmetic does not broadcast (``(1,) * (n,)`` fails): route it to
    ``broadcast_*``. ``F`` is ``mx.sym`` (hybridized) or ``mx.nd``."""

    __slots__ = ("F", "s")

    def __init__(self, F, s) -> None:
        self.F, self.s = F, s

    def _apply(self, other, broadcast: str, scalar, reflected: bool = False) -> Broadcasting:
        if isinstance(other, Broadcasting):
            a, b = (other.s, self.s) if reflected else (self.s, other.s)
            return Broadcasting(self.F, getattr(self.F, broadcast)(a, b))
        return Broadcasting(self.F, scalar(other, self.s) if reflected else scalar(self.s, other))

    def __add__(self, o):
        return self._apply(o, "broadcast_add", operator.add)

    def __radd__(self, o):
        return self._apply(o, "broadcast_add", operator.add, True)

    def __sub__(self, o):
        return self._apply(o, "broadcast_sub", operator.sub)

    def __rsub__(self, o):
        return self._apply(o, "broadcast_sub", operator.sub, True)

    def __mul__(self, o):
        return self._apply(o, "broadcast_mul", operator.mul)

    def __rmul__(self, o):
        return self._apply(o, "broadcast_mul", operator.mul, True)

    def __truediv__(self, o):
        return self._apply(o, "broadcast_div", operator.truediv)

    def __rtruediv__(self, o):
        return self._apply(o, "broadcast_div", operator.truediv, True)

    def __pow__(self, o):
        return self._apply(o, "broadcast_power", operator.pow)

    def __neg__(self):
        return Broadcasting(self.F, -self.s)


class Namespace:
    """The array namespace the tasks' models use, over ``F`` and ``Broadcasting`` symbols."""

    def __init__(self, F) -> None:
        self.F = F

    def __getattr__(self, name: str):
        fn = getattr(self.F, {"matmul": "dot"}.get(name, name))
        return lambda *args: Broadcasting(self.F, fn(*(a.s for a in args)))


class Objective(gluon.HybridBlock):
    """The task's loss of the task's model, as one hybridizable block."""

    def __init__(self, task, dtype: str) -> None:
        super().__init__()
        self.task = task
        with self.name_scope():
            for k, v in task.init.items():
                setattr(self, k, self.params.get(k, shape=v.shape, dtype=dtype, init=init.Zero()))

    def hybrid_forward(self, F, x, y, **params):
        xp = Namespace(F)
        p = {k: Broadcasting(F, v) for k, v in params.items()}
        return self.task.loss(self.task.model(p, Broadcasting(F, x), xp), Broadcasting(F, y), xp).s


class MxnetGluon(Mxnet):
    name = "mxnet-gluon"
    mode = "compiled"
    lr_dtype = "float32"  # MXNet's SGD kernels take the learning rate as a C float

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.net = Objective(task, dtype)
        self.net.initialize(ctx=self.ctx)
        for k, v in self.p.items():
            getattr(self.net, k).set_data(v)
        self.net.hybridize(static_alloc=True, static_shape=True)
        self.trainer = gluon.Trainer(self.net.collect_params(), "sgd", {"learning_rate": task.lr(0)})

    def step(self, x: nd.NDArray, y: nd.NDArray, lr: float) -> nd.NDArray:
        self.trainer.set_learning_rate(lr)
        with autograd.record():
            loss = self.net(x, y)
        loss.backward()
        self.trainer.step(1)  # the task's loss already averages or sums over the batch
        return loss

    def params(self) -> dict[str, np.ndarray]:
        return {k: getattr(self.net, k).data().asnumpy() for k in self.task.init}

    def gradient(self) -> dict[str, np.ndarray]:
        with autograd.record():
            loss = self.net(self.x, self.y)
        loss.backward()
        return {k: getattr(self.net, k).grad().asnumpy() for k in self.task.init}
