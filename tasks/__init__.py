"""Training tasks, each defined once and run unchanged by every backend.

A task is plain numpy: data, initial parameters, a model and a loss written against an array
namespace ``xp``, a learning-rate schedule and an optimiser (``tasks.optimizers``: plain SGD unless it
names another), and a hand-derived gradient that the numpy reference backend uses.
Importing this package imports no framework.

What a model and a loss may use is the array contract, written down in ``tasks.contract`` (names of
the Python Array API standard) and checked on every backend by tests/test_contract.py:

- operators ``+ - * / ** @``, unary ``-``, ``< <= > >=`` (conditions for ``where``), ``.T``, indexing
  and slicing with integers and slices;
- ``sum``, ``mean``, ``max``, ``min`` (``axis``, ``keepdims``), ``exp``, ``log``, ``log1p``, ``tanh``,
  ``sin``, ``cos``, ``sqrt``, ``square``, ``abs``, ``maximum``, ``minimum``, ``where``, ``reshape``,
  ``matmul``; Python scalars anywhere an operand may be.

Left out (see ``tasks.contract`` for why): what has no derivative (argmax, sorting, ``==``), creating
arrays and in-place writes, advanced indexing, batched matmul, 0-d arrays.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from tasks.optimizers import SGD, Adam, AdamW, Newton, Spec, parse

# a task file picks its optimiser with ``from tasks import Task, Adam``
__all__ = ["SGD", "Adam", "AdamW", "Newton", "FILE_MODULE", "NAME", "Params", "TASKS", "USER_TASKS", "Refused", "Task",
           "add", "code_line", "error_line", "get", "load_module", "problems", "user_tasks"]  # fmt: skip

Params = Mapping[str, Any]

# registry key -> module; the module defines ``make() -> Task``
TASKS: dict[str, str] = {
    "quadratic": "tasks.quadratic",
    "linear": "tasks.linear",
    "parabola": "tasks.parabola",
    "parabola-sgd": "tasks.parabola_sgd",
    "plane": "tasks.plane",
    "logistic": "tasks.logistic",
    "mlp": "tasks.mlp",
    "digits": "tasks.digits",
    "mlp-momentum": "tasks.mlp_momentum",
    "digits-adamw": "tasks.digits_adamw",
    "wide-mlp": "tasks.wide_mlp",
    "logistic-newton": "tasks.logistic_newton",
    "poisson-newton": "tasks.poisson_newton",
}


@dataclass(frozen=True, eq=False)
class Task:
    """One training problem. Arrays are float64; backends cast to the run's dtype.

    Parameters have any shape of at least one dimension (a scalar parameter has shape (1,)), so that
    frameworks without 0-d arrays (MXNet's NDArray) hold them too. ``x`` and ``y`` have one sample per
    row and any shape after it (vectors, matrices, one-hot labels); batches are rows. ``model`` and
    ``loss`` use only the array contract (``tasks.contract``) on ``xp`` and on the arrays they get.
    """

    name: str
    source: str  # the tutorial the task comes from
    x: np.ndarray
    y: np.ndarray
    init: dict[str, np.ndarray]
    model: Callable[[Params, Any, Any], Any]  # (params, x, xp) -> prediction
    loss: Callable[[Any, Any, Any], Any]  # (prediction, y, xp) -> scalar
    loss_and_grad: Callable[[Params, np.ndarray, np.ndarray], tuple[Any, dict[str, np.ndarray]]]
    lr: Callable[[int], float]  # learning rate of an epoch (0-based)
    epochs: int
    batch_size: int | None = None  # None: the whole data set each step
    shuffle_seed: int | None = None  # None: batches in data order
    expected: dict[str, Any] = field(default_factory=dict)  # where training must end
    expected_tol: float = 0.0  # absolute, in float64
    float32_tol: float | None = None  # for float32 runs against the reference, where 1e-4 is too tight
    metrics: Callable[[Params], dict[str, float]] | None = None  # figures of trained parameters, in numpy
    metric_floors: dict[str, float] = field(default_factory=dict)  # the least each metric must reach
    orders_made: tuple[np.ndarray, ...] | None = None  # the batch orders, where another process made them
    # SGD(...), Adam(...), AdamW(...) (tasks.optimizers), a name ("adam") or {"name": "adam", "b2": 0.99};
    # the learning rate is ``lr``'s. One that does not parse is kept as given, for ``bench check`` to name.
    optimizer: Spec = SGD()
    # one training step's floating-point operations, counted from the model's shapes where the task knows them
    # (its matrix products: tasks/wide_mlp.py); the results then say the FLOP/s a backend reached
    flops: int | None = None
    # the second-order formulas by hand, where the task has them (tasks.operators): ``hessian(params, x, y)``, the
    # loss's Hessian over the parameters flattened in init's order (n × n); ``jacobian(params, x)``, the model's
    # outputs, flattened, over the same (m × n); ``hvp(params, x, y, v)``, ∇²L·v with v and the result each of the
    # parameters' shapes, which needs no n × n matrix (tasks/wide_mlp.py). Without them the operators are held to
    # central differences of the hand-derived gradient and model.
    hessian: Callable[[Params, np.ndarray, np.ndarray], np.ndarray] | None = None
    jacobian: Callable[[Params, np.ndarray], np.ndarray] | None = None
    hvp: Callable[[Params, np.ndarray, np.ndarray, Params], Params] | None = None

    def __post_init__(self) -> None:
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ValueError(f"{self.name}: batch size {self.batch_size!r} is not a whole number of samples, 1 or more")
        if len(self.x) == 0:
            raise ValueError(f"{self.name}: x holds no samples")
        if len(self.x) % self.batch:
            raise ValueError(f"{self.name}: batch size {self.batch} does not divide {len(self.x)}")
        try:
            object.__setattr__(self, "optimizer", parse(self.optimizer))
        except ValueError:
            pass

    @property
    def batch(self) -> int:
        return self.batch_size or len(self.x)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.x) // self.batch

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def lrs(self) -> np.ndarray:
        return np.array([self.lr(e) for e in range(self.epochs)])

    def orders(self) -> list[np.ndarray | None]:
        """The sample order of every epoch: None for data order, else a seeded permutation."""
        if self.orders_made is not None:
            return list(self.orders_made[: self.epochs])
        if self.shuffle_seed is None:
            return [None] * self.epochs
        rng = np.random.default_rng(self.shuffle_seed)
        return [rng.permutation(len(self.x)) for _ in range(self.epochs)]

    def full_loss(self, params: Params) -> float:
        """The loss on the whole data set, in numpy float64."""
        return float(self.loss(self.model(params, self.x, np), self.y, np))


def get(name: str, **options: Any) -> Task:
    """The task of that name; options go to its ``make`` (quadratic takes ``n``, its number of points)."""
    if name not in TASKS:
        raise KeyError(name)
    return load_module(TASKS[name]).make(**options)


# A user's own tasks, added by ``add``: this variable carries them to every child process (workers), as a JSON
# object of name -> file or module, so that a path holds whatever characters it may (':', '=', spaces, newlines).
USER_TASKS = "AUTODIFF_BENCH_TASKS"
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
FILE_MODULE = "autodiff_bench_task_"  # the prefix of the module names task files are loaded under


def load_module(target: str) -> ModuleType:
    """A task module: ``package.module``, or a file ending in ``.py`` (loaded once, under a name of its path)."""
    if not target.endswith(".py"):
        return importlib.import_module(target)
    path = Path(target).resolve()
    stem, tag = re.sub(r"\W", "_", path.stem), hashlib.sha256(str(path).encode()).hexdigest()[:8]
    name = f"{FILE_MODULE}{stem}_{tag}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"{target} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


class Refused(ValueError):
    """A user's task that ``add`` does not take, and why, in one line."""


def add(target: str, checked: bool = True) -> str:
    """Register a user's task: a file ``path/to/task.py`` or a module ``package.module`` that defines
    ``make() -> Task``. Returns the task's name, which then names it everywhere (results, test ids).
    A task that is ``checked`` and has ``problems`` is refused with the first of them (``bench check``, which
    reports them all, adds it unchecked). Every refusal is a Refused of one line: ``target: why``."""
    path = Path(target)
    if target.endswith(".py") or os.sep in target or path.exists():  # a file, whatever characters its path holds
        if path.is_dir():
            raise Refused(f"{target}: a folder, not a task file (a .py file defining make() -> Task)")
        if not path.is_file():
            raise Refused(f"{target}: no such file")
        if not target.endswith(".py"):
            raise Refused(f"{target}: not a .py file (a task file is one defining make() -> Task)")
        target = str(path.resolve())
        try:
            path.read_bytes()
        except OSError as e:
            raise Refused(f"{target}: cannot be read ({e.strerror or e})") from None
    make = getattr(load_module(target), "make", None)
    if not callable(make):
        raise Refused(f"{target}: defines no make() -> Task")
    task = make()
    if not isinstance(task, Task):
        raise Refused(f"{target}: make() returned {type(task).__name__}, not a Task")
    if not isinstance(task.name, str) or not NAME.fullmatch(task.name):
        raise Refused(f"{target}: the task name {task.name!r} is not letters, digits, '_', '.', '+' or '-'")
    if TASKS.get(task.name, target) != target:
        raise Refused(f"{target}: the name {task.name!r} is taken by {TASKS[task.name]}")
    wrong = problems(task) if checked else []
    if wrong:
        raise Refused(f"{target}: {wrong[0]} (`python -m bench check` names every problem)")
    TASKS[task.name] = target
    os.environ[USER_TASKS] = json.dumps({**user_tasks(), task.name: target})
    return task.name


def user_tasks() -> dict[str, str]:
    """The user's tasks that USER_TASKS carries (name -> file or module); none where it holds anything else."""
    try:
        users = json.loads(os.environ.get(USER_TASKS) or "{}")
    except ValueError:
        return {}
    ok = isinstance(users, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in users.items())
    return users if ok else {}


TASKS.update(user_tasks())


# Where a task's code is: any file but the project's machinery and the interpreter's libraries (a task file,
# a module of the user's it imports, a built-in task's module)
_ROOT = Path(__file__).resolve().parents[1]
_NOT_TASK_CODE = (_ROOT / "bench", _ROOT / "backends", *(Path(__file__).parent / f for f in
                  ("__init__.py", "contract.py", "optimizers.py", "formulas.py")))  # fmt: skip


def task_code(filename: str) -> bool:
    """Whether a file is a task's code (``code_line``)."""
    if not os.path.isabs(filename):  # ``<string>``, ``<frozen ...>``, a compiled extension's own source
        return False
    path = Path(os.path.realpath(filename))
    libraries = {Path(os.path.realpath(p)) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return not any(path == p or p in path.parents for p in (*_NOT_TASK_CODE, *libraries))


def code_line(frames: Iterable[traceback.FrameSummary]) -> str | None:
    """Where in a task's code (``task_code``) the innermost of these frames is: ``path/to/task.py, line 6``
    (a built-in task's path from the checkout); None where no frame is a task's code."""
    mine = [f for f in frames if task_code(f.filename)]
    if not mine:
        return None
    path = Path(mine[-1].filename)
    shown = path.relative_to(_ROOT) if path.is_relative_to(_ROOT) else path
    return f"{shown}, line {mine[-1].lineno}"


FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')  # a frame a framework's message quotes
HEADERS = ("Traceback (most recent call last)", "in user code:")  # a message that opens with a stack (MXNet, Keras)


def error_line(e: BaseException) -> str:
    """An exception, in one line: its type, what its message says (the first line, or the last where the
    message opens with a stack, HEADERS), and where in a task's code it was raised (``code_line``, of its
    traceback or of the frames its message quotes)."""
    if isinstance(e, SyntaxError) and e.filename:
        return f"SyntaxError: {e.msg} (in {e.filename}, line {e.lineno})"
    text = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    said = (text[-1] if text[0].startswith(HEADERS) else text[0]) if text else ""
    name = type(e).__name__
    said = said.removeprefix(f"{name}: ")
    quoted = [traceback.FrameSummary(m["file"], int(m["line"]), "") for m in FRAME.finditer(str(e))]
    where = code_line([*traceback.extract_tb(e.__traceback__), *quoted])
    return f"{name}{': ' + said if said else ''}{f' (in {where})' if where else ''}"


def problems(task: Task) -> list[str]:
    """What makes a task unusable, each in a line, before any backend sees it: data and parameters that are
    not arrays of numbers, of at least one dimension, finite; x and y of different lengths; a schedule that
    is not finite and above 0 every epoch; settings of the wrong kind (``setting_problems``); functions that
    a worker cannot import; a model and loss that fail on numpy or give no finite number at the initial
    parameters; a hand-derived gradient that fails or is not one array of each parameter's shape."""
    out = []
    arrays = {"x": task.x, "y": task.y}
    if not isinstance(task.init, Mapping) or not task.init:
        return [f"its initial parameters are {type(task.init).__name__}, not a dict of name -> numpy array"]
    arrays |= {f"parameter {k!r}": v for k, v in task.init.items()}
    for what, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iuf":
            kind = f"an array of {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
            out.append(f"{what} is {kind}, not a numpy array of numbers")
        elif a.ndim < 1:
            out.append(f"{what} has shape (), not at least one dimension (a scalar parameter has shape (1,))")
        elif not np.isfinite(a).all():
            out.append(f"{what} holds values that are not finite ({np.count_nonzero(~np.isfinite(a))} of {a.size})")
    if out:
        return out
    if len(task.x) != len(task.y):
        return [f"x has {len(task.x)} samples and y {len(task.y)}"]
    if not isinstance(task.epochs, int) or task.epochs < 1:
        return [f"epochs is {task.epochs!r}, not a whole number of 1 or more"]
    try:
        lrs = task.lrs()
    except Exception as e:
        return [f"the learning-rate schedule fails: {error_line(e)}"]
    bad = np.flatnonzero(~(np.isfinite(lrs) & (lrs > 0)))
    if bad.size:
        out.append(f"lr({bad[0]}) is {lrs[bad[0]]:g}, not a finite number above 0 (lr takes the epoch, from 0)")
    out += setting_problems(task)
    for name in ("model", "loss", "loss_and_grad", "metrics", "hessian", "jacobian", "hvp"):
        fn = getattr(task, name)
        if name in ("metrics", "hessian", "jacobian", "hvp") and fn is None:
            continue
        if not callable(fn):
            out.append(f"{name} is {type(fn).__name__}, not a function")
        elif not importable(fn):
            what = repr(fn.__qualname__) if hasattr(fn, "__qualname__") else f"a {type(fn).__name__} object"
            out.append(f"{name} is {what}, which a worker cannot import by its name: make it a function at the top "
                       "of the task's file")  # fmt: skip
    return out or running_problems(task)


def importable(fn: Any) -> bool:
    """Whether another process finds ``fn`` by its module and name, as every worker does a task's functions
    (a function defined at the top of its module; not a lambda, nor one defined inside ``make``)."""
    found: Any = sys.modules.get(getattr(fn, "__module__", None) or "")
    for part in getattr(fn, "__qualname__", "<none>").split("."):
        found = getattr(found, part, None)
    return found is fn


def setting_problems(task: Task) -> list[str]:
    """Settings of the wrong kind: a shuffle seed that is no whole number of 0 or more, tolerances that are
    not finite numbers above 0 (``expected_tol``: 0 or more), an ``expected`` end that names no parameter or
    is not numbers of its shape, ``metric_floors`` without ``metrics`` or not numbers."""
    out = []
    seed = task.shuffle_seed
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        out.append(f"shuffle_seed is {seed!r}, not a whole number of 0 or more (or None)")
    tol, f32 = task.expected_tol, task.float32_tol
    if not (isinstance(tol, int | float) and np.isfinite(tol) and tol >= 0):
        out.append(f"expected_tol is {tol!r}, not a finite number of 0 or more")
    if f32 is not None and not (isinstance(f32, int | float) and np.isfinite(f32) and f32 > 0):
        out.append(f"float32_tol is {f32!r}, not a finite number above 0 (or None)")
    flops = task.flops
    if flops is not None and (not isinstance(flops, int) or isinstance(flops, bool) or flops < 1):
        out.append(f"flops is {flops!r}, not a whole number of 1 or more (or None)")
    for k, v in dict(task.expected).items():
        if k not in task.init:
            out.append(f"expected names {k!r}, which is no parameter (they are {', '.join(task.init)})")
            continue
        try:
            end = np.asarray(v, dtype="float64")
            fits = np.broadcast_shapes(end.shape, task.init[k].shape) == task.init[k].shape
        except (TypeError, ValueError):
            fits = False
        if not fits:
            out.append(f"expected {k!r} is {v!r}, not numbers of its parameter's shape {task.init[k].shape}")
    if getattr(task.optimizer, "name", None) == "newton" and task.hessian is None:
        out.append("it trains with Newton's method and defines no hessian: the numpy reference's step needs it")
    floors = task.metric_floors
    if floors and task.metrics is None:
        out.append("metric_floors are given and metrics is not: the floors have nothing to bound")
    if not isinstance(floors, Mapping) or not all(isinstance(f, int | float) for f in floors.values()):
        out.append(f"metric_floors is {floors!r}, not a dict of name -> number")
    return out


def running_problems(task: Task) -> list[str]:
    """The task's functions run on numpy at the initial parameters: the model and loss give one finite
    number, the hand-derived gradient one array of each parameter's shape, the metrics a number of each floor's."""
    try:
        with np.errstate(all="ignore"):  # what overflows is found below, not printed
            loss = task.loss(task.model(task.init, task.x, np), task.y, np)
    except Exception as e:
        return [f"the model or loss fails on numpy: {error_line(e)}"]
    if not isinstance(loss, int | float | np.ndarray | np.number) or np.size(loss) != 1:
        shape = f"shape {np.shape(loss)}" if isinstance(loss, np.ndarray) else repr(loss)[:40]
        return [f"the loss gives {shape}, not one number"]
    if not np.isfinite(loss).all():
        return [f"the loss at the initial parameters is {float(np.ravel(loss)[0])}, not finite"]
    try:
        with np.errstate(all="ignore"):
            got = task.loss_and_grad(task.init, task.x, task.y)
    except Exception as e:
        return [f"the hand-derived gradient (loss_and_grad) fails: {error_line(e)}"]
    if not isinstance(got, tuple) or len(got) != 2:
        return [f"loss_and_grad returns {type(got).__name__}, not (loss, gradient)"]
    grads = got[1]
    if not isinstance(grads, Mapping) or grads.keys() != task.init.keys():
        has = sorted(grads) if isinstance(grads, Mapping) else type(grads).__name__
        return [f"loss_and_grad's gradient has {has}, not one array for each parameter {sorted(task.init)}"]
    out = [f"the hand-derived gradient of {k!r} has shape {np.shape(grads[k])}, its parameter {v.shape}"
           for k, v in task.init.items() if np.shape(grads[k]) != v.shape]  # fmt: skip
    if task.metrics is not None:
        try:
            with np.errstate(all="ignore"):
                got = task.metrics(task.init)
        except Exception as e:
            return [*out, f"metrics fails at the initial parameters: {error_line(e)}"]
        wanted = list(task.metric_floors)
        if not isinstance(got, Mapping) or not all(isinstance(got.get(k), int | float | np.number) for k in wanted):
            out.append(f"metrics gives {repr(got)[:60]}, not a dict with a number for each floor ({', '.join(wanted)})")
    return out
