"""MXNet Gluon: a hybridized ``HybridBlock`` holding the task's parameters, ``gluon.Trainer('sgd')``, or
the Trainer over MXNet's optimiser for the task's (``backends.mxnet.mx_optimizer``)."""

from __future__ import annotations

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, init, nd

from backends.mxnet import Mxnet, Namespace, mx_optimizer, task_loss


class Objective(gluon.HybridBlock):
    """The task's loss of the task's model, as one hybridizable block."""

    def __init__(self, task, dtype: str) -> None:
        super().__init__()
        self.task = task
        with self.name_scope():
            for k, v in task.init.items():
                setattr(self, k, self.params.get(k, shape=v.shape, dtype=dtype, init=init.Zero()))

    def hybrid_forward(self, F, x, y, **params):
        if F is mx.sym:  # the inputs again, with their shapes but the batch's (0: unknown), which Array reads
            x, y = (F.var(v.name, shape=(0, *a.shape[1:])) for v, a in ((x, self.task.x), (y, self.task.y)))
        return task_loss(self.task, Namespace(F), params, x, y)


class MxnetGluon(Mxnet):
    name = "mxnet-gluon"
    mode = "compiled step"
    lr_dtype = "float32"  # MXNet's SGD kernels take the learning rate as a C float
    xp = Namespace(mx.sym)  # what the model sees once hybridized (Namespace(mx.nd) before)

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.net = Objective(task, dtype)
        self.net.initialize(ctx=self.ctx)
        for k, v in self.p.items():
            getattr(self.net, k).set_data(v)
        self.net.hybridize(static_alloc=True, static_shape=True)
        if self.optimizer.plain:
            self.trainer = gluon.Trainer(self.net.collect_params(), "sgd", {"learning_rate": task.lr(0)})
        else:
            self.trainer = gluon.Trainer(self.net.collect_params(), mx_optimizer(self.optimizer, task.lr(0)))

    def step(self, x: nd.NDArray, y: nd.NDArray, lr: float) -> nd.NDArray:
        self.trainer.set_learning_rate(lr)
        with autograd.record():
            loss = self.net(x, y)
        loss.backward()
        self.trainer.step(1)  # the task's loss already averages or sums over the batch
        return loss

    def loss(self, x: nd.NDArray, y: nd.NDArray) -> nd.NDArray:
        return self.net(x, y)  # the hybridized forward, outside autograd.record()

    def params(self) -> dict[str, np.ndarray]:
        return {k: getattr(self.net, k).data().asnumpy() for k in self.task.init}

    def gradient(self) -> dict[str, np.ndarray]:
        with autograd.record():
            loss = self.net(self.x, self.y)
        loss.backward()
        return {k: getattr(self.net, k).grad().asnumpy() for k in self.task.init}
