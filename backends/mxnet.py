"""MXNet autograd on NDArrays: ``autograd.record()``, ``backward()``, then ``param[:] = ...``; a task's
optimiser other than plain SGD is MXNet's own (``mx.optimizer.SGD``, ``NAG``, ``Adam``, through
``mx.optimizer.get_updater``), and AdamW, which MXNet 1.9.1 has as a kernel only
(``nd.contrib.adamw_update``), an ``mx.optimizer.Optimizer`` here that drives it as ``Adam`` drives
``adam_update``.

Beyond the gradient (``tasks.operators``), MXNet 1.x has reverse mode only, and a gradient it can differentiate
again only where every operator's backward has a gradient of its own (an ``FGradient``): in 1.9.1 the
elementwise math (tanh, exp, log, log1p, abs, sin, cos, sqrt, square, negative) has one, but the backward of
sum, mean, max, slice, reshape, dot, maximum and the arithmetic (``_backward_sum``, ``_backward_dot``,
``_backward_mul``, ...) has not, in ``mx.nd`` and ``mx.np`` alike, and every task's loss uses them: so it has
the loss, vjp and the reverse Jacobian, and neither HVP, nor a Hessian, nor Newton's method."""

from __future__ import annotations

import functools
import math
import operator
from typing import Any, TypeAlias

import mxnet as mx
import numpy as np
from mxnet import autograd, nd

from backends._base import Backend, Lacks
from tasks import Task, operators
from tasks.optimizers import Optimizer

Operand: TypeAlias = "Array | float"  # an array, or a Python scalar
Axis = int | tuple[int, ...] | None


ELEMWISE = {"broadcast_add": "elemwise_add", "broadcast_sub": "elemwise_sub", "broadcast_mul": "elemwise_mul"}
ELEMWISE["broadcast_div"] = "elemwise_div"


class Array:
    """An NDArray (``F`` is ``mx.nd``) or a Symbol (``F`` is ``mx.sym``, in a hybridized Gluon block) with
    the contract's operators. MXNet 1.x Symbol arithmetic does not broadcast (``(1,) * (n,)`` fails), so
    two arrays meet in ``broadcast_*``, as NDArray's operators do, except two symbols of one known shape,
    which meet in ``elemwise_*`` as in a hand-written graph; an array and a Python scalar meet in the scalar
    kernels (``_mul_scalar``, ...), which is what the operators of both NDArray and Symbol call."""

    __slots__ = ("F", "s")

    def __init__(self, F: Any, s: Any) -> None:
        self.F, self.s = F, s

    def _apply(self, other: Operand, broadcast: str, scalar: Any, reflected: bool = False) -> Array:
        if isinstance(other, Array):
            a, b = (other.s, self.s) if reflected else (self.s, other.s)
            return Array(self.F, getattr(self.F, self._kernel(other, broadcast))(a, b))
        return Array(self.F, scalar(other, self.s) if reflected else scalar(self.s, other))

    def _kernel(self, other: Array, broadcast: str) -> str:
        same = self.F is mx.sym and broadcast in ELEMWISE and self.shape and self.shape == other.shape
        return ELEMWISE[broadcast] if same else broadcast

    def __add__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_add", operator.add)

    def __radd__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_add", operator.add, True)

    def __sub__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_sub", operator.sub)

    def __rsub__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_sub", operator.sub, True)

    def __mul__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_mul", operator.mul)

    def __rmul__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_mul", operator.mul, True)

    def __truediv__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_div", operator.truediv)

    def __rtruediv__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_div", operator.truediv, True)

    def __pow__(self, o: Operand) -> Array:
        if not isinstance(o, Array) and o == 2:  # MXNet's power kernel is generic: square is the fast one
            return Array(self.F, self.F.square(self.s))
        return self._apply(o, "broadcast_power", operator.pow)

    def __rpow__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_power", operator.pow, True)

    def __matmul__(self, o: Operand) -> Array:
        return Array(self.F, self.F.dot(self.s, o.s))

    def __neg__(self) -> Array:
        return Array(self.F, self.F.negative(self.s))

    def __lt__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_lesser", operator.lt)

    def __le__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_lesser_equal", operator.le)

    def __gt__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_greater", operator.gt)

    def __ge__(self, o: Operand) -> Array:
        return self._apply(o, "broadcast_greater_equal", operator.ge)

    @property
    def shape(self) -> tuple[int, ...]:
        """A Symbol's is inferred from what is known: its parameters' shapes and its inputs' (whose batch
        dimension is 0, MXNet's unknown, and the same in every input); () where nothing is."""
        return self.s.shape if hasattr(self.s, "shape") else self.s.infer_shape_partial()[1][0]

    @property
    def T(self) -> Array:
        return Array(self.F, self.F.transpose(self.s))

    def __getitem__(self, key: Any) -> Array:
        # a Symbol's [i] picks an output of a group: slice instead, then drop the integer-indexed axes
        key = key if isinstance(key, tuple) else (key,)
        if not all(isinstance(k, int | slice) for k in key):
            raise TypeError(f"index {key!r} is outside the array contract (integers and slices only)")
        begin = tuple(k.start if isinstance(k, slice) else k for k in key)
        end = tuple(k.stop if isinstance(k, slice) else k + 1 or None for k in key)
        step = tuple(k.step if isinstance(k, slice) else None for k in key)
        out = self.F.slice(self.s, begin=begin, end=end, step=step)
        ints = tuple(i for i, k in enumerate(key) if isinstance(k, int))
        return Array(self.F, self.F.squeeze(out, axis=ints) if ints else out)


def _unary(name: str) -> Any:
    return lambda self, x: Array(self.F, getattr(self.F, name)(x.s))


class Namespace:
    """The array contract (tasks.contract) over ``Array``s of ``F``: ``mx.nd`` or ``mx.sym``. MXNet 1.x
    calls matmul ``dot``; its ``maximum`` and ``minimum`` broadcast only as ``broadcast_maximum``."""

    exp, log, log1p, tanh, sin, cos, sqrt, square, abs = map(
        _unary, ["exp", "log", "log1p", "tanh", "sin", "cos", "sqrt", "square", "abs"]
    )

    def __init__(self, F: Any) -> None:
        self.F = F

    def sum(self, x: Array, axis: Axis = None, keepdims: bool = False) -> Array:
        return Array(self.F, self.F.sum(x.s, axis=axis, keepdims=keepdims))

    def mean(self, x: Array, axis: Axis = None, keepdims: bool = False) -> Array:
        return Array(self.F, self.F.mean(x.s, axis=axis, keepdims=keepdims))

    def max(self, x: Array, axis: Axis = None, keepdims: bool = False) -> Array:
        return Array(self.F, self.F.max(x.s, axis=axis, keepdims=keepdims))

    def min(self, x: Array, axis: Axis = None, keepdims: bool = False) -> Array:
        return Array(self.F, self.F.min(x.s, axis=axis, keepdims=keepdims))

    def reshape(self, x: Array, shape: tuple[int, ...]) -> Array:
        return Array(self.F, self.F.reshape(x.s, shape=shape))

    def matmul(self, x1: Array, x2: Array) -> Array:
        return x1 @ x2

    def maximum(self, x1: Operand, x2: Operand) -> Array:
        return self._either(x1, x2, "broadcast_maximum", "maximum")

    def minimum(self, x1: Operand, x2: Operand) -> Array:
        return self._either(x1, x2, "broadcast_minimum", "minimum")

    def _either(self, x1: Operand, x2: Operand, broadcast: str, scalar: str) -> Array:
        if isinstance(x1, Array) and isinstance(x2, Array):
            return Array(self.F, getattr(self.F, broadcast)(x1.s, x2.s))
        x, c = (x1, x2) if isinstance(x1, Array) else (x2, x1)  # maximum and minimum are symmetric
        return Array(self.F, getattr(self.F, scalar)(x.s, c))  # F.maximum(x, scalar) is _maximum_scalar

    def where(self, condition: Array, x1: Operand, x2: Operand) -> Array:
        # MXNet's where neither broadcasts nor takes scalars: bring all three to one shape first, through
        # zeros_like (no gradient), which costs a few operators; where is rare in a model
        F, parts = self.F, (condition, x1, x2)
        zero = functools.reduce(F.broadcast_add, [F.zeros_like(v.s) for v in parts if isinstance(v, Array)])
        c, a, b = (F.broadcast_add(v.s, zero) if isinstance(v, Array) else zero + v for v in parts)
        return Array(F, F.where(c, a, b))


def task_loss(task: Task, xp: Namespace, params: dict[str, Any], x: Any, y: Any) -> Any:
    """The task's loss of the task's model on bare NDArrays or Symbols (of ``xp.F``); returns the bare one."""
    wrap = functools.partial(Array, xp.F)
    return task.loss(task.model({k: wrap(v) for k, v in params.items()}, wrap(x), xp), wrap(y), xp).s


class AdamW(mx.optimizer.Optimizer):
    """AdamW (Loshchilov & Hutter) on MXNet's own kernel, ``nd.contrib.adamw_update``:
    ``w -= eta * (lr * m / (sqrt(v) + epsilon) + wd * w)``, which leaves the bias corrections to its caller.
    Driven as ``mx.optimizer.Adam`` drives ``adam_update``: the corrections folded into the kernel's rate
    (``lr = sqrt(1 - beta2**t) / (1 - beta1**t)``, in double), and ``eta`` the schedule's rate."""

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.rescale = {}  # context -> rescale_grad as the kernel takes it, a float32 NDArray

    def create_state(self, index: int, weight: nd.NDArray) -> tuple[nd.NDArray, nd.NDArray]:
        return nd.zeros(weight.shape, weight.context, dtype=weight.dtype), nd.zeros(weight.shape, weight.context,
                                                                                       dtype=weight.dtype)  # fmt: skip

    def update(self, index: int, weight: nd.NDArray, grad: nd.NDArray, state: Any) -> None:
        self._update_count(index)
        lr, wd, t = self._get_lr(index), self._get_wd(index), self._index_update_count[index]
        factor = math.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        if weight.context not in self.rescale:
            self.rescale[weight.context] = nd.full((1,), self.rescale_grad, ctx=weight.context, dtype="float32")
        mean, var = state
        nd.contrib.adamw_update(weight, grad, mean, var, self.rescale[weight.context], out=weight, lr=factor,
                                eta=lr, wd=wd, beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon)  # fmt: skip


def mx_optimizer(opt: Optimizer, lr: float) -> mx.optimizer.Optimizer:
    """MXNet's optimiser for a task's optimiser (tasks.optimizers), as a user makes it."""
    if opt.name == "sgd":
        kind = mx.optimizer.NAG if opt.nesterov else mx.optimizer.SGD
        return kind(learning_rate=lr, momentum=opt.momentum, wd=opt.weight_decay)
    kind = AdamW if opt.decoupled else mx.optimizer.Adam
    return kind(learning_rate=lr, beta1=opt.b1, beta2=opt.b2, epsilon=opt.eps, wd=opt.weight_decay)


FORWARD = "MXNet 1.x's autograd is reverse mode only: it has no forward mode to push a tangent through"
SECOND = ("MXNet 1.9.1 cannot differentiate a gradient (autograd.grad, create_graph=True) through sum, mean, "
          "slice, reshape, dot or the arithmetic, whose backward operators register no gradient (FGradient), "
          "and every task's loss uses them")  # fmt: skip
LACKS = {"jvp": FORWARD, "hvp-fwd-rev": FORWARD, "jacobian-fwd": FORWARD, "hvp-rev-rev": SECOND, "hessian": SECOND,
         "newton": "it has no Hessian: " + SECOND}  # fmt: skip


class Mxnet(Backend):
    name = "mxnet"
    is_async = True
    xp = Namespace(nd)
    optimizer_formula = "mxnet"  # its optimisers: tasks.formulas
    operators = {"loss": "the task's model and loss on NDArrays",
                 "vjp": "mx.autograd.grad of the loss recorded under mx.autograd.record()",
                 "jacobian-rev": "mx.autograd.grad of the outputs recorded once, head_grads each row of the "
                                 "identity in turn, retain_graph=True"}  # fmt: skip
    lacks = LACKS

    def __init__(self, task, dtype="float64", device="cpu"):
        super().__init__(task, dtype, device)
        self.p = {k: self.asarray(v) for k, v in task.init.items()}
        for p in self.p.values():
            p.attach_grad()
        if not self.optimizer.plain:
            self.opt = mx_optimizer(self.optimizer, task.lr(0))
            self.updater = mx.optimizer.get_updater(self.opt)

    @property
    def ctx(self) -> mx.Context:
        return mx.gpu() if self.device == "cuda" else mx.cpu()

    def asarray(self, a: np.ndarray) -> nd.NDArray:
        return nd.array(a, dtype=self.dtype, ctx=self.ctx)

    def asindex(self, order: np.ndarray) -> nd.NDArray:
        return nd.array(order, dtype="int64", ctx=self.ctx)

    def take(self, a: nd.NDArray, order: nd.NDArray) -> nd.NDArray:
        return nd.take(a, order)

    def objective(self, x: nd.NDArray, y: nd.NDArray) -> nd.NDArray:
        return task_loss(self.task, self.xp, self.p, x, y)

    def step(self, x: nd.NDArray, y: nd.NDArray, lr: float) -> nd.NDArray:
        with autograd.record():
            loss = self.objective(x, y)
        loss.backward()
        if self.optimizer.plain:
            for p in self.p.values():
                p[:] = p - lr * p.grad
            return loss
        self.opt.set_learning_rate(lr)
        weights = list(self.p.values())
        self.updater(list(range(len(weights))), [p.grad for p in weights], weights)  # as gluon.Trainer calls it
        return loss

    def loss(self, x: nd.NDArray, y: nd.NDArray) -> nd.NDArray:
        return self.objective(x, y)  # outside autograd.record(): nothing is recorded

    def stack(self, losses: list[nd.NDArray]) -> nd.NDArray:
        return nd.concat(*losses, dim=0)

    def to_numpy(self, a: nd.NDArray) -> np.ndarray:
        return a.asnumpy()

    def wait(self, out: Any) -> None:
        nd.waitall()

    def params(self) -> dict[str, np.ndarray]:
        return {k: v.asnumpy() for k, v in self.p.items()}

    def gradient(self) -> dict[str, np.ndarray]:
        with autograd.record():
            loss = self.objective(self.x, self.y)
        loss.backward()
        return {k: v.grad.asnumpy() for k, v in self.p.items()}

    # -- beyond the gradient (tasks.operators) ---------------------------------------------------------------
    def flat(self, name: str, at: operators.Point) -> Any:
        """The operator's function of θ on NDArrays: the task's loss, or for a Jacobian its model on the first
        batch flattened, the data converted once; θ and the data wrapped in ``Array`` for the contract."""
        wrap = functools.partial(Array, nd)
        if name.startswith("jacobian"):
            fn = operators.flat_model(self.task, wrap(self.asarray(at.batch)), at.shapes, self.xp)
        else:
            fn = operators.flat_loss(self.task, wrap(self.asarray(at.x)), wrap(self.asarray(at.y)), at.shapes, self.xp)
        return lambda theta: fn(wrap(theta)).s

    def operator_function(self, name: str, at: operators.Point) -> tuple[Any, tuple[Any, ...]]:
        """The base class's, over ``flat``: its loss and model see ``Array``s, not bare NDArrays. θ is marked for
        the gradient once (``attach_grad``); each call records the function anew, as MXNet does every step."""
        if name in self.lacks:
            raise Lacks(f"{self.name} has no {name}: {self.lacks[name]}")
        if name not in operators.OPERATORS:
            raise KeyError(name)
        f, theta = self.flat(name, at), self.asarray(at.theta)
        theta.attach_grad()
        if name == "loss":
            return f, (theta,)
        method = getattr(self, name.replace("-", "_"))  # every operator it has is of θ alone
        return (lambda t: method(f, t)), (theta,)

    def vjp(self, f: Any, theta: nd.NDArray) -> nd.NDArray:
        with autograd.record():
            loss = f(theta)
        return autograd.grad(loss, [theta])[0]

    def jacobian_rev(self, g: Any, theta: nd.NDArray) -> nd.NDArray:
        """One backward a row (MXNet has no batched vjp): the outputs recorded once, then pulled back along
        each row of the identity, keeping the graph for the next."""
        with autograd.record():
            out = g(theta)
        eye = nd.eye(out.shape[0], dtype=out.dtype, ctx=out.context)
        return nd.stack(*[autograd.grad(out, [theta], head_grads=eye[i], retain_graph=True)[0]
                          for i in range(out.shape[0])])  # fmt: skip
