"""Operators beyond the gradient, defined once: what each computes, at which point, and its value by hand in numpy.

A task's loss over its whole data set is a function of one vector, θ: the task's parameters flattened in the
order of ``Task.init``, each in C order (``flatten``, ``unflatten``). Its model's outputs on the first batch,
flattened, are a function f(θ) of m values. At a point (``Point``: θ, a seeded direction v, the data):

=============  ====================  =======  ==========================================================
operator       computes              shape    how
=============  ====================  =======  ==========================================================
loss           L(θ)                  ()       the objective alone: what every other figure is held against
jvp            L'(θ)·v               ()       forward mode: one tangent pushed forward
vjp            ∇L(θ)                 (n,)     reverse mode: the cotangent 1 pulled back (the gradient)
hvp-fwd-rev    ∇²L(θ)·v              (n,)     forward over reverse: the jvp of the gradient along v
hvp-rev-rev    ∇²L(θ)·v              (n,)     reverse over reverse: the gradient of ∇L(θ)·v
hessian        ∇²L(θ)                (n, n)   the framework's dense Hessian
jacobian-fwd   ∂f/∂θ                 (m, n)   forward mode: a jvp a column
jacobian-rev   ∂f/∂θ                 (m, n)   reverse mode: a vjp a row
=============  ====================  =======  ==========================================================

The reference of each (``reference``) is written by hand: the task's ``loss_and_grad`` gives L and ∇L (so ``jvp``
is ∇L·v), its ``hessian`` ∇²L and its ``jacobian`` ∂f/∂θ, where the task defines them (closed forms). Where it
does not, the Hessian is the central differences of the hand-derived gradient and the Jacobian those of the
model, each extrapolated (Richardson) to about 1e-10 of the value; a backend is then held to ``FD_TOL``.
``check`` holds a task's closed forms against the same differences (``python -m bench check``).

Importing this module imports no framework.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tasks import Params, Task

OPERATORS = ("loss", "jvp", "vjp", "hvp-fwd-rev", "hvp-rev-rev", "hessian", "jacobian-fwd", "jacobian-rev")
HVPS = ("hvp-fwd-rev", "hvp-rev-rev")
DIRECTION_SEED = 0  # v: standard normal, from this seed
# How close a backend's value must be to the reference, relative to the reference's largest entry
# (``rel_error``): in float64, where the reference is by hand; where it is by differences (FD_TOL); in float32.
TOL = {"float64": 1e-9, "float32": 1e-4}
FD_TOL = 1e-6
# The dense operators (an n × n Hessian, an m × n Jacobian) are asked of a task of at most this many parameters:
# beyond, a Hessian is millions of entries and n Hessian-vector products (wide-mlp's 1,482 parameters: 43 s a call
# on HIPS autograd), and the matrix-free operators (jvp, vjp, the HVPs) are what a model of that size uses.
DENSE = ("hessian", "jacobian-fwd", "jacobian-rev")
DENSE_LIMIT = 1000

Shapes = tuple[tuple[str, tuple[int, ...]], ...]  # each parameter's name and shape, in the task's order


@dataclass(frozen=True)
class Point:
    """Where the operators are taken: θ (the parameters flattened), the direction v, the loss's data (the whole
    data set) and the Jacobian's (the first batch, in data order). Arrays are float64; backends cast them."""

    theta: np.ndarray
    v: np.ndarray
    x: np.ndarray
    y: np.ndarray
    batch: np.ndarray  # the first batch's x
    shapes: Shapes

    @property
    def params(self) -> dict[str, np.ndarray]:
        return unflatten(self.theta, self.shapes, np)


def asked(at: Point) -> tuple[str, ...]:
    """The operators asked at this point: every one, but the dense ones beyond DENSE_LIMIT parameters."""
    return tuple(o for o in OPERATORS if o not in DENSE or at.theta.size <= DENSE_LIMIT)


def shapes_of(params: Params) -> Shapes:
    return tuple((k, tuple(np.shape(v))) for k, v in params.items())


def flatten(params: Params, shapes: Shapes | None = None, dtype: str = "float64") -> np.ndarray:
    """θ: the parameters, each in C order, one after another in ``shapes``' order (the task's) where given, else in
    their own; in ``dtype``."""
    names = list(params) if shapes is None else [k for k, _ in shapes]
    return np.concatenate([np.ravel(np.asarray(params[k], dtype=dtype)) for k in names])


def unflatten(theta: Any, shapes: Shapes, xp: Any) -> dict[str, Any]:
    """θ back into the task's parameters, by slices and ``xp.reshape`` (the array contract): a framework's
    operators then differentiate through it as through the model. The sizes are Python's (``math.prod``): a
    tracer (torch.compile's Dynamo) would trace numpy's ``np.prod`` into a tensor, and break its graph to read it."""
    out, at = {}, 0
    for k, shape in shapes:
        size = math.prod(shape)
        out[k] = xp.reshape(theta[at : at + size], shape)
        at += size
    return out


def point(task: Task, params: Params | None = None) -> Point:
    """The point every backend takes a task's operators at: its initial parameters (or ``params``)."""
    params = task.init if params is None else params
    theta = flatten(params)
    v = np.random.default_rng(DIRECTION_SEED).normal(size=theta.size)
    return Point(theta, v, task.x, task.y, task.x[: task.batch], shapes_of(params))


def flat_loss(task: Task, x: Any, y: Any, shapes: Shapes, xp: Any) -> Callable[[Any], Any]:
    """L(θ): the task's loss on ``x``, ``y`` as a function of the flattened parameters, in ``xp``."""

    def loss(theta: Any) -> Any:
        return task.loss(task.model(unflatten(theta, shapes, xp), x, xp), y, xp)

    return loss


def flat_model(task: Task, x: Any, shapes: Shapes, xp: Any) -> Callable[[Any], Any]:
    """f(θ): the task's model's outputs on ``x``, flattened, as a function of the flattened parameters."""

    def model(theta: Any) -> Any:
        return xp.reshape(task.model(unflatten(theta, shapes, xp), x, xp), (-1,))

    return model


# -- the references, in numpy -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    value: np.ndarray
    how: str  # "by hand" (the task's own formulas) or "by differences" (central, extrapolated)

    @property
    def tol64(self) -> float:
        return TOL["float64"] if self.how == "by hand" else FD_TOL


def gradient(task: Task, at: Point, theta: np.ndarray | None = None) -> np.ndarray:
    """The hand-derived gradient (``loss_and_grad``), flattened, at θ (the point's, or ``theta``)."""
    p = at.params if theta is None else unflatten(theta, at.shapes, np)
    return flatten(task.loss_and_grad(p, at.x, at.y)[1])


def richardson(f: Callable[[float], np.ndarray], h: float) -> np.ndarray:
    """The limit of a central difference quotient ``f(h)`` as h → 0: its error is a series in h², so
    (16·D(h/2) − D(h)) / 15 cancels the h² and h⁴ terms' first, and two levels leave about 1e-10 of the value."""
    d1, d2, d4 = f(h), f(h / 2), f(h / 4)
    r1, r2 = (4 * d2 - d1) / 3, (4 * d4 - d2) / 3
    return (16 * r2 - r1) / 15


def step_for(theta: np.ndarray, v: np.ndarray) -> float:
    """A difference step along v: about 1e-3 of θ's scale, where rounding (1e-16 / h) and the leftover
    h⁶ term of ``richardson`` are both below 1e-10."""
    return 1e-3 * max(1.0, float(np.max(np.abs(theta)))) / max(1.0, float(np.max(np.abs(v))))


def differences_hvp(task: Task, at: Point, v: np.ndarray) -> np.ndarray:
    """∇²L·v as the derivative of the hand-derived gradient along v."""
    h = step_for(at.theta, v)
    return richardson(
        lambda s: (gradient(task, at, at.theta + s * v) - gradient(task, at, at.theta - s * v)) / (2 * s), h
    )


def differences_hessian(task: Task, at: Point) -> np.ndarray:
    """∇²L a column at a time (``differences_hvp`` along each unit vector), made symmetric."""
    eye = np.eye(at.theta.size)
    h = np.stack([differences_hvp(task, at, e) for e in eye], axis=1)
    return (h + h.T) / 2


def differences_jacobian(task: Task, at: Point) -> np.ndarray:
    f = flat_model(task, at.batch, at.shapes, np)
    cols = []
    for e in np.eye(at.theta.size):
        h = step_for(at.theta, e)
        cols.append(richardson(lambda s, e=e: (f(at.theta + s * e) - f(at.theta - s * e)) / (2 * s), h))
    return np.stack(cols, axis=1)


def hand_hessian(task: Task, at: Point) -> np.ndarray | None:
    return None if task.hessian is None else np.asarray(task.hessian(at.params, at.x, at.y), dtype="float64")


def hand_hvp(task: Task, at: Point, v: np.ndarray) -> np.ndarray | None:
    """The task's own ∇²L·v (``Task.hvp``), flattened, v flat as θ is."""
    if task.hvp is None:
        return None
    return flatten(task.hvp(at.params, at.x, at.y, unflatten(v, at.shapes, np)), at.shapes)


def hand_jacobian(task: Task, at: Point) -> np.ndarray | None:
    return None if task.jacobian is None else np.asarray(task.jacobian(at.params, at.batch), dtype="float64")


def reference(task: Task, name: str, at: Point) -> Reference:
    """The value operator ``name`` must reach at ``at``, in float64 (``Reference.how`` says how it was found)."""
    if name == "loss":
        return Reference(np.asarray(flat_loss(task, at.x, at.y, at.shapes, np)(at.theta), dtype="float64"), "by hand")
    if name in ("jvp", "vjp"):
        g = gradient(task, at)
        return Reference(np.asarray(g @ at.v) if name == "jvp" else g, "by hand")
    if name in HVPS:  # the task's own HVP; else its Hessian times v, up to DENSE_LIMIT parameters; else differences
        hvp = hand_hvp(task, at, at.v)
        if hvp is None and at.theta.size <= DENSE_LIMIT and task.hessian is not None:
            hvp = hand_hessian(task, at) @ at.v
        return (
            Reference(differences_hvp(task, at, at.v), "by differences") if hvp is None else Reference(hvp, "by hand")
        )
    if name == "hessian":
        hess = hand_hessian(task, at)
        return (
            Reference(differences_hessian(task, at), "by differences") if hess is None else Reference(hess, "by hand")
        )
    if name in ("jacobian-fwd", "jacobian-rev"):
        jac = hand_jacobian(task, at)
        return Reference(differences_jacobian(task, at), "by differences") if jac is None else Reference(jac, "by hand")
    raise KeyError(name)


def rel_error(got: Any, ref: np.ndarray) -> float:
    """How far ``got`` is from ``ref``: the largest difference over the reference's largest entry (absolute
    where the reference is all zero); infinite where the shapes differ or a value is not finite."""
    got = np.asarray(got, dtype="float64")
    if got.shape != ref.shape and not (got.size == ref.size == 1):
        return float("inf")
    diff = float(np.max(np.abs(got.reshape(ref.shape) - ref), initial=0.0))
    scale = float(np.max(np.abs(ref), initial=0.0))
    out = diff / scale if scale > 0 else diff
    return out if np.isfinite(out) else float("inf")


def tolerance(ref: Reference, dtype: str) -> float:
    return ref.tol64 if dtype == "float64" else max(TOL[dtype], ref.tol64)


@dataclass(frozen=True)
class Verdict:
    """One operator's value from a backend, held against its reference: ``agrees``, ``differs`` (by ``error``,
    over ``tol``), ``lacks`` (the backend has no such operator: ``why``) or ``fails`` (it raised: ``why``)."""

    operator: str
    kind: str
    error: float = float("nan")
    tol: float = float("nan")
    how: str = ""  # the reference's (Reference.how)
    why: str = ""

    def __str__(self) -> str:
        if self.kind in ("lacks", "fails"):
            return f"{self.operator} {self.kind}: {self.why}"
        return f"{self.operator}: {self.error:.2e} from the reference ({self.how}), {self.kind} (within {self.tol:g})"


def references(task: Task, at: Point) -> dict[str, Reference]:
    """The reference of every operator asked at ``at``."""
    return {name: reference(task, name, at) for name in asked(at)}


def judge(values: dict[str, Any], refs: dict[str, Reference], dtype: str) -> dict[str, Verdict]:
    """A backend's operator values (as its worker answers: an array, ``{"lacks": why}`` or ``{"error": what}``)
    held against ``refs``, each within ``tolerance`` of the reference in ``dtype``."""
    out = {}
    for name, got in values.items():
        if isinstance(got, dict):
            kind, why = ("lacks", got["lacks"]) if "lacks" in got else ("fails", got["error"])
            out[name] = Verdict(name, kind, why=why)
            continue
        ref = refs[name]
        err, tol = rel_error(np.asarray(got), ref.value), tolerance(ref, dtype)
        out[name] = Verdict(name, "agrees" if err <= tol else "differs", err, tol, ref.how)
    return out


# A hand-derived Hessian or Jacobian of up to WHOLE_CHECK parameters is checked whole (a column of differences a
# parameter); beyond, along CHECK_DIRECTIONS seeded directions, which a wrong entry moves as surely, in a few
# gradients' time (digits' 650 columns took 23 s, wide-mlp's 1,482 minutes)
WHOLE_CHECK = 100
CHECK_DIRECTIONS = 3


def directions(at: Point) -> np.ndarray:
    """What a hand-derived Hessian or Jacobian is checked along: every unit vector (the whole matrix) up to
    WHOLE_CHECK parameters; beyond, v and CHECK_DIRECTIONS - 1 more seeded directions (columns of the result)."""
    n = at.theta.size
    if n <= WHOLE_CHECK:
        return np.eye(n)
    more = np.random.default_rng(DIRECTION_SEED + 1).normal(size=(n, CHECK_DIRECTIONS - 1))
    return np.column_stack([at.v, more])


def differences_model_along(task: Task, at: Point, v: np.ndarray) -> np.ndarray:
    """∂f/∂θ·v by central differences of the model along v."""
    f = flat_model(task, at.batch, at.shapes, np)
    return richardson(lambda s: (f(at.theta + s * v) - f(at.theta - s * v)) / (2 * s), step_for(at.theta, v))


def second_order_errors(task: Task, params: Params | None = None) -> dict[str, float | str]:
    """For the Hessian, the HVP and the Jacobian the task writes by hand: how far each is from central differences of
    its hand-derived gradient and of its model (``rel_error``), along ``directions`` (the whole matrix, for a model of
    at most WHOLE_CHECK parameters), or why it could not be compared (it fails, its shape)."""
    at = point(task, params)
    along = directions(at)
    differences: dict[str, np.ndarray] = {}  # of the gradient (the Hessian's and the HVP's) and of the model

    def wanted(source: str) -> np.ndarray:
        if source not in differences:
            diff = differences_hvp if source == "gradient" else differences_model_along
            differences[source] = np.stack([diff(task, at, d) for d in along.T], axis=1)
        return differences[source]

    out: dict[str, float | str] = {}
    for what in ("hessian", "hvp", "jacobian"):
        try:
            if what == "hvp":
                mine = None if task.hvp is None else np.stack([hand_hvp(task, at, d) for d in along.T], axis=1)
            else:
                mine = (hand_hessian if what == "hessian" else hand_jacobian)(task, at)
        except Exception as e:  # noqa: BLE001 - a task's own code: named in the line
            out[what] = f"fails: {type(e).__name__}: {e}"
            continue
        if mine is None:
            continue
        want = wanted("model" if what == "jacobian" else "gradient")
        shape = want.shape if what == "hvp" else (want.shape[0], at.theta.size)
        if mine.shape != shape:
            out[what] = f"has shape {mine.shape}, not {shape}"
            continue
        if what == "hessian" and along.shape[1] == want.shape[0]:  # the whole matrix: made symmetric, as ∇²L is
            want = (want + want.T) / 2
        out[what] = rel_error(mine if what == "hvp" else mine @ along, want)
    return out


def check(task: Task, params: Params | None = None) -> list[str]:
    """A task's hand-derived second-order formulas held against central differences of its hand-derived
    gradient and model: one line for each that is off (or fails, or has the wrong shape); none where it
    has none or they hold."""
    out = []
    for what, err in second_order_errors(task, params).items():
        if isinstance(err, str):
            out.append(f"its {what} {err}")
        elif err > FD_TOL:
            source = "model" if what == "jacobian" else "gradient"
            out.append(
                f"its {what} is {err:.1e} (relative) from central differences of its {source}, more than {FD_TOL:g}"
            )
    return out
