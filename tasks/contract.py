"""The array contract: everything a task's ``model`` and ``loss`` may use, on every backend.

A task sees its data, its parameters and an array namespace ``xp``. Names follow the Python Array
API standard (https://data-apis.org/array-api/). Each backend implements the whole contract
(``Backend.xp``); ``tests/equivalence/test_contract.py`` evaluates every example below on every backend, value and
gradient, against numpy and central finite differences. This module imports no framework.

Operators work between two arrays (broadcasting as numpy does) and between an array and a Python
scalar on either side. Comparisons give a condition for ``where`` and nothing else: no gradient flows
through them, and MXNet gives 0/1 floats where the others give booleans.

Left out, and why:

- argmax, argsort, sorting, ``==``/``!=``, integer and boolean arithmetic: not differentiable. Metrics
  such as accuracy are computed in numpy from the trained parameters (``Task.metrics``).
- creating arrays (zeros, ones, arange, random), ``astype``, in-place updates (``x[i] = v``): data and
  parameters are made once in numpy, backends cast them; JAX arrays are immutable, MXNet's symbols have
  no values to write, and an in-place write breaks torch's autograd.
- advanced indexing (integer or boolean arrays), ``None``/``...`` in an index, negative slice steps:
  MXNet's symbols only slice. Batches are taken by the backends, not by tasks.
- matmul of 3-d or higher operands (batched): MXNet's ``batch_dot`` does not broadcast.
- zero-length dimensions in ``reshape``: MXNet reads 0 there as "keep this dimension".
- logaddexp, sigmoid, softplus, logsumexp: not in MXNet 1.x's operators or not in the standard; their
  stable forms are a line each from ``exp``, ``log1p``, ``abs``, ``maximum`` and ``max`` (see
  tasks/logistic.py and tasks/digits.py).
- 0-d arrays: MXNet 1.x has none (a full reduction gives shape (1,)); parameters are at least 1-d.

Where a function has no derivative (``maximum``/``minimum``/``max``/``min`` at ties, ``abs`` at 0, a
``where`` switching), frameworks pick different subgradients: a task must not sit on such a point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tasks import Task


@dataclass(frozen=True)
class Entry:
    signature: str  # as a task writes it
    examples: tuple[str, ...]  # expressions over ``xp`` and the INPUTS, evaluated by the conformance test


CONTRACT: dict[str, Entry] = {
    # operators
    "+": Entry("x1 + x2", ("a + b", "a + r", "c + r", "a + 1.5", "2 + a")),
    "-": Entry("x1 - x2", ("a - b", "r - c", "a - 0.5", "1.0 - a")),
    "*": Entry("x1 * x2", ("a * b", "c * a", "a * 3.0", "-2 * a")),
    "/": Entry("x1 / x2", ("a / q", "p / r2", "a / 4.0", "3.0 / p")),
    "**": Entry("x1 ** x2", ("a ** 2", "a ** 2.0", "a ** 3", "p ** 0.5", "p ** q", "2.0 ** a")),
    "@": Entry("x1 @ x2 (1-d or 2-d operands)", ("a @ m", "a @ v", "v @ m", "v @ v")),
    "-x": Entry("-x", ("-a",)),
    "<": Entry("x1 < x2 (inside where)", ("xp.where(a < r, a * b, r)", "xp.where(a < 0.5, a, 0.5)")),
    "<=": Entry("x1 <= x2 (inside where)", ("xp.where(a <= b, b, a)", "xp.where(0.0 <= a, a, -a)")),
    ">": Entry("x1 > x2 (inside where)", ("xp.where(a > c, a, c)", "xp.where(a > 0.0, a, 0.1 * a)")),
    ">=": Entry("x1 >= x2 (inside where)", ("xp.where(a >= b, p, q)", "xp.where(a >= -0.5, a * a, b)")),
    ".T": Entry("x.T (2-d)", ("a.T", "a.T @ c")),
    "[]": Entry(
        "x[i], x[i:j:k], x[:, i], ... (integers and slices, step > 0)",
        ("a[1]", "a[:, 2]", "a[-1, 1:3]", "a[1:, ::2]", "a[0, -1]", "v[1:3]", "a[:2][:, 1:]"),
    ),
    # functions
    "sum": Entry(
        "sum(x, axis=None, keepdims=False)",
        ("xp.sum(a)", "xp.sum(a, axis=0)", "xp.sum(a, axis=1, keepdims=True)", "xp.sum(a, axis=(0, 1))"),
    ),
    "mean": Entry(
        "mean(x, axis=None, keepdims=False)", ("xp.mean(a)", "xp.mean(a, axis=1)", "xp.mean(a, axis=0, keepdims=True)")
    ),
    "max": Entry(
        "max(x, axis=None, keepdims=False)", ("xp.max(a)", "xp.max(a, axis=1, keepdims=True)", "xp.max(a, axis=0)")
    ),
    "min": Entry("min(x, axis=None, keepdims=False)", ("xp.min(a)", "xp.min(a, axis=1)")),
    "exp": Entry("exp(x)", ("xp.exp(a)",)),
    "log": Entry("log(x)", ("xp.log(p)",)),
    "log1p": Entry("log1p(x)", ("xp.log1p(p)", "xp.log1p(xp.exp(-xp.abs(a)))")),
    "tanh": Entry("tanh(x)", ("xp.tanh(a)",)),
    "sin": Entry("sin(x)", ("xp.sin(a)",)),
    "cos": Entry("cos(x)", ("xp.cos(a)",)),
    "sqrt": Entry("sqrt(x)", ("xp.sqrt(p)",)),
    "square": Entry("square(x)", ("xp.square(a)",)),
    "abs": Entry("abs(x)", ("xp.abs(a)",)),
    "maximum": Entry(
        "maximum(x1, x2)", ("xp.maximum(a, b)", "xp.maximum(a, r)", "xp.maximum(a, 0.0)", "xp.maximum(0.5, a)")
    ),
    "minimum": Entry("minimum(x1, x2)", ("xp.minimum(a, c)", "xp.minimum(a, 0.0)", "xp.minimum(-0.5, a)")),
    "where": Entry(
        "where(condition, x1, x2)",
        ("xp.where(a > b, a, b)", "xp.where(a > 0.0, a, 0.0)", "xp.where(c > 0.0, r, a)", "xp.where(a > 0, 1.0, b)"),
    ),
    "reshape": Entry("reshape(x, shape)", ("xp.reshape(a, (4, 3))", "xp.reshape(a, (-1,))", "xp.reshape(v, (2, 2))")),
    "matmul": Entry("matmul(x1, x2)", ("xp.matmul(a, m)", "xp.matmul(a, v)")),
}

OPERATORS = [name for name in CONTRACT if not name.isidentifier()]
FUNCTIONS = [name for name in CONTRACT if name.isidentifier()]

# the examples' inputs: name -> (shape, values); "normal" ones are N(0, 1), "positive" ones in [0.5, 2)
INPUTS: dict[str, tuple[tuple[int, ...], str]] = {
    "a": ((3, 4), "normal"),
    "b": ((3, 4), "normal"),
    "c": ((3, 1), "normal"),
    "r": ((4,), "normal"),
    "v": ((4,), "normal"),
    "m": ((4, 2), "normal"),
    "p": ((3, 4), "positive"),
    "q": ((3, 4), "positive"),
    "r2": ((4,), "positive"),
}


@dataclass(frozen=True)
class Example:
    code: str
    inputs: tuple[str, ...]  # the INPUTS it uses, in order

    @property
    def fn(self) -> Any:
        """``(xp, *inputs) -> array``: a plain function, which torch.compile and jax.jit trace like any other."""
        return eval(f"lambda xp, {', '.join(self.inputs)}: {self.code}")  # the code is this module's own

    def arrays(self) -> dict[str, np.ndarray]:
        """The example's inputs and ``w``, a weight of the shape of its value (at least 1-d): seeded by the
        example's code, so that every environment makes the same ones."""
        rng = np.random.default_rng(list(self.code.encode()))
        out = {}
        for name in self.inputs:
            shape, kind = INPUTS[name]
            out[name] = rng.uniform(0.5, 2.0, shape) if kind == "positive" else rng.normal(size=shape)
        out["w"] = rng.normal(size=np.shape(self.fn(np, **out)) or (1,))
        return out


def example(code: str) -> Example:
    names = compile(code, "<contract>", "eval").co_names
    return Example(code, tuple(n for n in INPUTS if n in names))


EXAMPLES: list[Example] = [example(code) for entry in CONTRACT.values() for code in entry.examples]


def task(examples: list[Example] | None = None, shapes: dict[int, tuple[int, ...]] | None = None) -> Task:
    """Every example in one task, so that a backend checks them all in one gradient (one compilation).

    Example ``i``'s inputs are parameters ``e{i}_{name}``, its weight ``e{i}_w``. The loss is the sum over
    examples of ``sum(value * weight)``, so the gradient for the weight is the value itself and the
    gradient for an input is the example's ``Jᵀ·weight``. ``shapes`` receives each value's shape as the
    backend's model saw it (broadcasting would hide a wrong one).
    """
    examples = EXAMPLES if examples is None else examples
    fns = [e.fn for e in examples]
    init = {f"e{i}_{k}": v for i, e in enumerate(examples) for k, v in e.arrays().items()}

    def model(p: Any, x: Any, xp: Any) -> Any:
        total = 0.0
        for i, (e, fn) in enumerate(zip(examples, fns, strict=True)):
            value = fn(xp, *(p[f"e{i}_{k}"] for k in e.inputs))
            if shapes is not None:
                shapes[i] = tuple(int(n) for n in value.shape)
            total = total + xp.sum(value * p[f"e{i}_w"])
        return total * x

    def loss(pred: Any, y: Any, xp: Any) -> Any:
        return xp.sum(pred * y)

    def loss_and_grad(p: Any, x: Any, y: Any) -> Any:
        raise NotImplementedError("the contract is checked on autodiff backends; numpy's namespace is numpy itself")

    return Task(
        name="contract",
        source="tasks.contract: every example of the array contract",
        x=np.ones(1),
        y=np.ones(1),
        init=init,
        model=model,
        loss=loss,
        loss_and_grad=loss_and_grad,
        lr=lambda epoch: 0.0,
        epochs=1,
    )


def split(grads: dict[str, Any], shapes: dict[int, tuple[int, ...]], examples: list[Example] | None = None) -> dict:
    """A backend's gradient of ``task(examples, shapes)``, by example: the inputs it was given (``w``
    included), the shape and the values of its value, and the gradient for each input."""
    examples = EXAMPLES if examples is None else examples
    return {
        e.code: {
            "inputs": {k: v.tolist() for k, v in e.arrays().items()},
            "shape": list(shapes[i]),
            "value": np.asarray(grads[f"e{i}_w"], dtype="float64").tolist(),
            "grads": {k: np.asarray(grads[f"e{i}_{k}"], dtype="float64").tolist() for k in e.inputs},
        }
        for i, e in enumerate(examples)
    }
