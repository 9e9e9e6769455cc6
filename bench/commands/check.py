"""``python -m bench check TASK``: a task checked before any timing, each check a line that says what held.

1. its fields: parameters at least 1-d, finite data and initial loss, learning rates finite and > 0;
   its optimiser's settings (tasks.optimizers: a known name and settings, each in its range), a line each;
2. its model and loss use only the array contract (tasks.contract), found by running them on numpy
   through a namespace and an array type that record every function, operator and attribute used;
3. its hand-derived gradient against central finite differences; its hand-derived Hessian and Jacobian, where
   it writes them (``tasks.operators``), against central differences of that gradient and of its model;
4. every backend's gradient, in its own environment, against the hand-derived one.
"""

from __future__ import annotations

import operator
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import backends
import tasks
from bench.campaign.remote import call_many, train
from bench.core.agreement import TOL, rel_diff
from bench.core.errors import BenchError
from tasks import operators, optimizers
from tasks.contract import CONTRACT

# numpy's functions that the array contract spells otherwise: numpy's name -> what the task writes instead
INSTEAD = {"add": "x1 + x2", "subtract": "x1 - x2", "multiply": "x1 * x2", "divide": "x1 / x2",
           "true_divide": "x1 / x2", "power": "x1 ** x2", "float_power": "x1 ** x2", "negative": "-x",
           "positive": "x itself", "matmul": "x1 @ x2 or xp.matmul", "dot": "x1 @ x2 or xp.matmul",
           "less": "x1 < x2 inside xp.where", "less_equal": "x1 <= x2 inside xp.where",
           "greater": "x1 > x2 inside xp.where", "greater_equal": "x1 >= x2 inside xp.where", "absolute": "xp.abs",
           "fabs": "xp.abs", "amax": "xp.max", "amin": "xp.min", "fmax": "xp.maximum", "fmin": "xp.minimum",
           "transpose": "x.T", "add.reduce": "xp.sum", "clip": "xp.maximum and xp.minimum",
           "expm1": "xp.exp(x) - 1"}  # fmt: skip
# the ufuncs that an operator calls, where a numpy array stands left of a task's array: name -> the reflected method
REFLECTED = {"add": "__radd__", "subtract": "__rsub__", "multiply": "__rmul__", "true_divide": "__rtruediv__",
             "power": "__rpow__", "matmul": "__rmatmul__", "less": "__gt__", "less_equal": "__ge__",
             "greater": "__lt__", "greater_equal": "__le__", "equal": "__eq__", "not_equal": "__ne__"}  # fmt: skip


class NumpyCalled(TypeError):
    """numpy's own function called on a task's array where the task's ``xp`` belongs: which function, where
    in the task's code (``tasks.code_line``), and what the array contract has instead."""

    def __init__(self, name: str | None) -> None:
        where = tasks.code_line(traceback.extract_stack())
        at = f" in {where}" if where else ""
        if name is None:
            super().__init__(f"a task's array made into a numpy array{at} (np.asarray, np.array or a numpy function "
                             "of a list): keep it an array of the task's xp (tasks/contract.py)")  # fmt: skip
            return
        use = INSTEAD.get(name, f"xp.{name}" if name in CONTRACT else None)
        fix = f"use {use}" if use else f"the array contract has no {name}: write it with what the task's xp has"
        super().__init__(f"numpy's {name} called on a task's array{at}: {fix} (tasks/contract.py)")


class Recorded:
    """A numpy array that notes each operator and attribute a model uses; numpy's own functions refuse it
    (``NumpyCalled``), so that ``np.exp(x)`` written where ``xp.exp(x)`` belongs is caught rather than passed."""

    __slots__ = ("a", "used")

    def __init__(self, a: Any, used: set[str]) -> None:
        self.a, self.used = a, used

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        name = ufunc.__name__
        if method == "__call__" and not kwargs and len(inputs) == 2 and inputs[1] is self and name in REFLECTED:
            return getattr(self, REFLECTED[name])(inputs[0])  # ``array * x``: numpy's operator, the task's own
        raise NumpyCalled(name if method == "__call__" else f"{name}.{method}")

    def __array_function__(self, func, types, args, kwargs):
        raise NumpyCalled(func.__name__)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise NumpyCalled(None)

    def __repr__(self) -> str:
        return repr(self.a)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # numpy's ways into the array (``__array_interface__``): ``__array__`` refuses
            raise AttributeError(name)
        self.used.add(f".{name}")
        return getattr(self.a, name)

    def __getitem__(self, index: Any) -> Recorded:
        self.used.add("[]")
        return Recorded(self.a[index], self.used)

    def __setitem__(self, index: Any, value: Any) -> None:
        self.used.add("x[i] = v")  # not written: the arrays are the task's own

    @property
    def T(self) -> Recorded:
        self.used.add(".T")
        return Recorded(self.a.T, self.used)

    def __neg__(self) -> Recorded:
        self.used.add("-x")
        return Recorded(-self.a, self.used)

    def __pos__(self) -> Recorded:
        self.used.add("+x")
        return self

    def __abs__(self) -> Recorded:
        self.used.add("abs(x)")
        return Recorded(abs(self.a), self.used)

    def __invert__(self) -> Recorded:
        self.used.add("~x")
        return Recorded(~self.a, self.used)

    def __bool__(self) -> bool:
        self.used.add("bool(x)")
        return bool(self.a)

    def __float__(self) -> float:
        self.used.add("float(x)")
        return float(self.a)

    def __int__(self) -> int:
        self.used.add("int(x)")
        return int(self.a)

    def __index__(self) -> int:
        self.used.add("int(x)")
        return operator.index(self.a)

    def __len__(self) -> int:
        self.used.add("len(x)")
        return len(self.a)


def _operator(symbol: str, fn: Callable[[Any, Any], Any], reflected: bool = False) -> Callable[..., Recorded]:
    def method(self: Recorded, other: Any) -> Recorded:
        self.used.add(symbol)
        other = other.a if isinstance(other, Recorded) else other
        return Recorded(fn(other, self.a) if reflected else fn(self.a, other), self.used)

    return method


for _symbol, _name, _fn in [("+", "add", operator.add), ("-", "sub", operator.sub), ("*", "mul", operator.mul),
                            ("/", "truediv", operator.truediv), ("**", "pow", operator.pow),
                            ("@", "matmul", operator.matmul)]:  # fmt: skip
    setattr(Recorded, f"__{_name}__", _operator(_symbol, _fn))
    setattr(Recorded, f"__r{_name}__", _operator(_symbol, _fn, reflected=True))
for _symbol, _name, _fn in [("//", "floordiv", operator.floordiv), ("%", "mod", operator.mod),
                            ("&", "and", operator.and_), ("|", "or", operator.or_), ("^", "xor", operator.xor),
                            ("<<", "lshift", operator.lshift), (">>", "rshift", operator.rshift)]:  # fmt: skip
    setattr(Recorded, f"__{_name}__", _operator(_symbol, _fn))
    setattr(Recorded, f"__r{_name}__", _operator(_symbol, _fn, reflected=True))
for _symbol, _name, _fn in [("<", "lt", operator.lt), ("<=", "le", operator.le), (">", "gt", operator.gt),
                            (">=", "ge", operator.ge), ("==", "eq", operator.eq),
                            ("!=", "ne", operator.ne)]:  # fmt: skip
    setattr(Recorded, f"__{_name}__", _operator(_symbol, _fn))
Recorded.__hash__ = None  # type: ignore[assignment]  # as an array's: == is elementwise


class RecordingNamespace:
    """numpy, noting each function a task calls on ``xp``."""

    def __init__(self, used: set[str]) -> None:
        self.used = used

    def __getattr__(self, name: str) -> Callable[..., Recorded]:
        self.used.add(name)
        fn = getattr(np, name)

        def call(*args: Any, **kwargs: Any) -> Recorded:
            plain = [a.a if isinstance(a, Recorded) else a for a in args]
            return Recorded(fn(*plain, **{k: v.a if isinstance(v, Recorded) else v for k, v in kwargs.items()}),
                            self.used)  # fmt: skip

        return call


def used_names(task: tasks.Task) -> set[str]:
    """Every function, operator and attribute the task's model and loss use on its arrays and ``xp``."""
    used: set[str] = set()
    xp = RecordingNamespace(used)
    params = {k: Recorded(v, used) for k, v in task.init.items()}
    task.loss(task.model(params, Recorded(task.x, used), xp), Recorded(task.y, used), xp)
    return used


def finite_differences(task: tasks.Task) -> dict[str, np.ndarray]:
    """The gradient of the full-data loss at the initial parameters, by central differences."""
    out = {}
    for k, v in task.init.items():
        g = np.zeros_like(v, dtype="float64")
        for i in np.ndindex(v.shape):
            h = 1e-6 * max(1.0, abs(float(v[i])))
            up, down = {**task.init, k: v.astype("float64")}, {**task.init, k: v.astype("float64")}
            up[k][i] += h
            down[k][i] -= h
            g[i] = (task.full_loss(up) - task.full_loss(down)) / (2 * h)
        out[k] = g
    return out


def fd_error(fd: np.ndarray, hand: np.ndarray) -> float:
    return float(np.max(np.abs(fd - hand) / np.maximum(1.0, np.abs(fd))))


def check_task(name: str, among: Sequence[str] = tuple(backends.BACKENDS)) -> list[tuple[bool, str]]:
    """Each check: whether it held, and one line saying what was found; the gradient on the backends ``among``."""
    t = tasks.get(name)
    lines: list[tuple[bool, str]] = []
    wrong = tasks.problems(t)  # data, parameters, schedule, and the model, loss and gradient running at all
    lines += [(False, f"fields: {why}") for why in wrong]
    if not wrong:
        shapes = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in t.init.items())
        lines.append((True, f"fields: {len(t.x)} samples, {t.steps} steps, parameters {shapes}"))
    bad = optimizers.problems(t.optimizer)
    lines += [(False, f"optimizer: {why}") for why in bad]
    if not bad:
        lines.append((True, f"optimizer: {optimizers.describe(optimizers.parse(t.optimizer))}"))
    if wrong:
        return [*lines, (False, "array contract and gradients: not checked until the fields above are right")]
    try:
        used = used_names(t)
        outside = sorted(used - set(CONTRACT))
        found = f"uses {', '.join(outside)}, outside it" if outside else f"model and loss use {' '.join(sorted(used))}"
        lines.append((not outside, f"array contract: {found}"))
    except NumpyCalled as e:
        lines.append((False, f"array contract: {e}"))
    except Exception as e:
        lines.append((False, f"array contract: the model or loss fails on numpy: {tasks.error_line(e)}"))
    _, hand = t.loss_and_grad(t.init, t.x, t.y)
    fd = finite_differences(t)
    err = max(fd_error(fd[k], np.asarray(hand[k])) for k in t.init)
    tol = operators.FD_TOL  # central differences with h = 1e-6·max(1, |p|) carry about h² + ε/h ≈ 1e-10 of error
    lines.append((err <= tol, f"hand-derived gradient vs central differences: {err:.1e} (at most {tol:g})"))
    lines += second_order(t)
    if not bad and optimizers.parse(t.optimizer).name == "newton":  # an optimiser that parses
        lines.append(newton_against_descent(t))
    calls = [("gradient", {"task": name, "backend": b, "dtype": "float64"}) for b in among]
    for (_, kw), got in zip(calls, call_many(calls), strict=True):
        if isinstance(got, BenchError):
            lines.append((False, f"{kw['backend']} gradient: {got}"))
            continue
        diff = max(rel_diff(got[k], hand[k]) for k in t.init)
        lines.append((diff <= TOL["float64"], f"{kw['backend']} gradient vs hand-derived: {diff:.1e}"))
    return lines


def second_order(t: tasks.Task) -> list[tuple[bool, str]]:
    """The task's hand-derived Hessian, HVP and Jacobian against central differences of its gradient and model
    (``tasks.operators.second_order_errors``), a line for each it writes; one saying so where it writes none."""
    try:
        errors = operators.second_order_errors(t)
    except Exception as e:
        return [(False, f"hessian, hvp and jacobian by hand: {tasks.error_line(e)}")]
    if not errors:
        return [(True, "hessian, hvp and jacobian: none by hand; every backend's operators are held to central "
                       "differences")]  # fmt: skip
    lines = []
    for what, err in errors.items():
        source = "model" if what == "jacobian" else "gradient"
        if isinstance(err, str):
            lines.append((False, f"hand-derived {what}: {err}"))
        else:
            lines.append((err <= operators.FD_TOL, f"hand-derived {what} vs central differences of the {source}: "
                                                   f"{err:.1e} (at most {operators.FD_TOL:g})"))  # fmt: skip
    return lines


CONVERGED = 1e-8  # a loss within this much (relative) of where Newton's method ends is converged
DESCENT_STEPS = 100_000  # gradient descent given up on after this many steps


def newton_against_descent(t: tasks.Task) -> tuple[bool, str]:
    """How many steps Newton's method takes to come within CONVERGED of where it ends (the task's own schedule,
    as the numpy reference trains it), and how many full-batch gradient descent takes from the same start at the
    rate 1/λ, λ the largest eigenvalue of the Hessian there (halved until it does not diverge)."""
    x, y = t.x, t.y
    try:
        run = train(t.name, "numpy", "float64")
    except BenchError as e:
        return False, f"newton: the numpy reference does not train: {e}"
    end = t.full_loss({k: np.asarray(v, dtype="float64") for k, v in run.params.items()})
    near = abs(end) * CONVERGED + 1e-300

    def steps_to(trail: list[float]) -> int | None:
        return next((i for i, v in enumerate(trail) if v - end <= near), None)

    newton = steps_to([*run.losses, end])
    rate = 1.0 / float(np.linalg.eigvalsh(np.asarray(t.hessian(t.init, x, y), dtype="float64"))[-1])
    for _ in range(20):
        q = {k: v.astype("float64") for k, v in t.init.items()}
        step, loss = 0, float("nan")
        with np.errstate(all="ignore"):
            while step <= DESCENT_STEPS:
                loss, g = t.loss_and_grad(q, x, y)
                if not np.isfinite(loss) or loss - end <= near:
                    break
                for k in q:
                    q[k] -= rate * g[k]
                step += 1
        if np.isfinite(loss):
            break
        rate /= 2
    descent = f"{step:,} steps" if loss - end <= near else f"more than {DESCENT_STEPS:,} steps"
    ok = newton is not None
    said = f"{newton} steps" if ok else f"not within {t.epochs} steps"
    return ok, (
        f"newton: within {CONVERGED:g} of its end loss {end:.9g} in {said}; full-batch gradient descent from "
        f"the same start, at the rate 1/λ = {rate:.3g} (λ the Hessian's largest eigenvalue there), in {descent}"
    )
