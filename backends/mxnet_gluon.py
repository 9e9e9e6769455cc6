"""MXNet Gluon: a hybridized ``HybridBlock`` holding the task's parameters, ``gluon.Trainer('sgd')``, or
the Trainer over MXNet's optimiser for the task's (``backends.mxnet.mx_optimizer``).

Its operators (``tasks.operators``) are ``backends.mxnet``'s, each of a hybridized block of θ (``Flat``: the
loss, or the model flattened), compiled once into a CachedOp on its first call; MXNet differentiates the
CachedOp with the same backward operators as the eager graph, so it lacks what ``mxnet`` lacks: forward mode,
and a gradient of a gradient through sum, slice, dot and the arithmetic, so any HVP, Hessian or Newton's method."""

from __future__ import annotations

import functools
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, init, nd

from backends.mxnet import Array, Mxnet, Namespace, mx_optimizer, task_loss
from tasks import Task, operators


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


class Flat(gluon.HybridBlock):
    """An operator's function of θ as a block with no parameters: the task's loss on ``x`` and ``y``, or
    (``model``) its model's outputs on ``x``, flattened; θ and the data are its inputs, all of known shapes."""

    def __init__(self, task: Task, shapes: operators.Shapes, inputs: dict[str, tuple[int, ...]], model: bool) -> None:
        super().__init__()
        self.task, self.shapes, self.inputs, self.model = task, shapes, inputs, model

    def hybrid_forward(self, F, theta, x, y=None):
        if F is mx.sym:  # the inputs again, with their shapes, which Array reads
            theta, x = (F.var(v.name, shape=self.inputs[k]) for v, k in ((theta, "theta"), (x, "x")))
            y = None if self.model else F.var(y.name, shape=self.inputs["y"])
        xp, wrap = Namespace(F), functools.partial(Array, F)
        if self.model:
            return operators.flat_model(self.task, wrap(x), self.shapes, xp)(wrap(theta)).s
        return operators.flat_loss(self.task, wrap(x), wrap(y), self.shapes, xp)(wrap(theta)).s


class MxnetGluon(Mxnet):
    name = "mxnet-gluon"
    mode = "compiled step"
    lr_dtype = "float32"  # MXNet's SGD kernels take the learning rate as a C float
    xp = Namespace(mx.sym)  # what the model sees once hybridized (Namespace(mx.nd) before)
    operators = {"loss": "a hybridized gluon.HybridBlock of θ",
                 "vjp": "mx.autograd.grad of the hybridized block's loss, recorded under mx.autograd.record()",
                 "jacobian-rev": "mx.autograd.grad of the hybridized block's outputs recorded once, head_grads "
                                 "each row of the identity in turn, retain_graph=True"}  # fmt: skip

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

    def flat(self, name: str, at: operators.Point) -> Any:
        """``Flat``, hybridized (static memory and shapes, as the step's block), its data converted once."""
        model = name.startswith("jacobian")
        data = [self.asarray(at.batch)] if model else [self.asarray(at.x), self.asarray(at.y)]
        shapes = {"theta": at.theta.shape, "x": data[0].shape, "y": data[-1].shape}
        block = Flat(self.task, at.shapes, shapes, model)
        block.hybridize(static_alloc=True, static_shape=True)
        return lambda theta: block(theta, *data)
