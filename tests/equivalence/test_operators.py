"""Every backend's operators beyond the gradient (tasks.operators: jvp, vjp, the two HVPs, the Hessian, the two
Jacobians) equal the hand-derived values, in float64 to 1e-9 of the largest entry and in float32 to 1e-4 (where a
task has no formula by hand, to its central differences, 1e-6); what a backend lacks, its class says, with why."""

from __future__ import annotations

from typing import Any

import pytest

import backends
import tasks
from bench.core.cases import DTYPES
from tasks import operators

# What the default suite checks of each mode's operators, within its minutes: every mode's on logistic (a linear
# model), in both dtypes; and, on every distinct task in both dtypes, those of
# the eager modes whose operators cost milliseconds (torch's, autograd's; numpy's are the task's formulas), which
# hold each task's formulas to a framework's autodiff. A compiled mode's operators are its eager mode's compiled,
# each compile seconds (torch.compile's), as is eager jax's first call of each operation and eager TensorFlow's
# pfor. `pytest --full` checks every operator of every mode on every task in both dtypes (`bench compare
# --operators` prints them).
EVERY_MODE = ("logistic",)
EVERY_TASK = ("numpy", "torch", "autograd")


def point_of(name: str) -> tuple[Any, ...]:
    """What a task's operators depend on: its model, loss and formulas, and the point (its parameters, the
    direction, the data). Tasks made from another with another optimiser or schedule (mlp-momentum, digits-adamw)
    share their operators with it; parabola-sgd's and logistic-newton's batches give them Jacobians of their own."""
    t = tasks.get(name)
    at = operators.point(t)
    arrays = (at.theta, at.v, at.x, at.y, at.batch)
    return (
        t.model,
        t.loss,
        t.hessian,
        t.jacobian,
        t.hvp,
        at.shapes,
        *(a.tobytes() + str(a.shape).encode() for a in arrays),
    )


def distinct_tasks() -> list[str]:
    """The registered tasks, less each whose operators another's already are (``point_of``)."""
    seen: dict[tuple[Any, ...], str] = {}
    for name in tasks.TASKS:
        seen.setdefault(point_of(name), name)
    return list(seen.values())


def operator_cases(full: bool) -> list[tuple[str, str, str]]:
    def asked(t: str, b: str, d: str) -> bool:
        return full or t in EVERY_MODE or b in EVERY_TASK

    names = list(tasks.TASKS) if full else distinct_tasks()
    return [(t, b, d) for t in names for b in backends.BACKENDS for d in DTYPES if asked(t, b, d)]


def test_tasks_left_out_share_their_operators_with_one_checked():
    assert set(tasks.TASKS) - set(distinct_tasks()) == {"mlp-momentum", "digits-adamw"}


REFERENCES: dict[str, dict[str, operators.Reference]] = {}


def references(task: str) -> dict[str, operators.Reference]:
    if task not in REFERENCES:
        t = tasks.get(task)
        REFERENCES[task] = operators.references(t, operators.point(t))
    return REFERENCES[task]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "operator_case" in metafunc.fixturenames:
        metafunc.parametrize("operator_case", operator_cases(metafunc.config.getoption("--full")), ids="-".join)


def test_every_operator_equals_the_hand_derived_value(lab, operator_case):
    task, backend, dtype = operator_case
    got = lab.get(("operators", task, backend, dtype))  # computed by a worker of the backend's environment
    t = tasks.get(task)
    assert list(got) == list(operators.asked(operators.point(t)))
    undeclared = [n for n, v in got.items() if isinstance(v, dict) and "lacks" in v and not v["declared"]]
    assert not undeclared, f"lacking {undeclared}, and {backend}'s lacks does not say so"
    wrong = [str(v) for v in operators.judge(got, references(task), dtype).values() if v.kind in ("differs", "fails")]
    assert not wrong, "; ".join(wrong)


@pytest.mark.parametrize("task", distinct_tasks())
def test_hand_derived_second_order_formulas_match_central_differences(task):
    assert operators.check(tasks.get(task)) == []


def test_a_wrong_hessian_or_jacobian_is_found():
    """check holds the formulas to central differences: 1% off is far outside FD_TOL."""
    import dataclasses

    t = tasks.get("logistic")
    off = dataclasses.replace(t, hessian=lambda p, x, y: 1.01 * t.hessian(p, x, y),
                              jacobian=lambda p, x: t.jacobian(p, x)[:, :2])  # fmt: skip
    found = operators.check(off)
    assert len(found) == 2 and "hessian is 1.0e-02" in found[0] and "shape" in found[1], found
    wide = tasks.get("wide-mlp")
    off = dataclasses.replace(wide, hvp=lambda p, x, y, v: {k: 1.01 * a for k, a in wide.hvp(p, x, y, v).items()})
    assert [line.split(" (")[0] for line in operators.check(off)] == ["its hvp is 1.0e-02"]


def test_wide_mlp_s_hvp_is_its_hessian_times_v_without_the_matrix():
    """The hand-written HVP (an R-operator pass) against the hand-written Hessian times v, each checked against
    differences of the gradient on their own (above): the same to rounding, at width 16."""
    t = tasks.get("wide-mlp")
    at = operators.point(t)
    assert operators.rel_error(operators.hand_hvp(t, at, at.v), t.hessian(at.params, at.x, at.y) @ at.v) < 1e-13
    assert operators.reference(t, "hvp-fwd-rev", at).how == "by hand"


def test_differences_reach_the_hand_derived_values():
    """The references by differences (``richardson``) that tasks without formulas are held to are within
    a hundredth of FD_TOL of the closed forms, where a task has both."""
    t = tasks.get("logistic")
    at = operators.point(t)
    assert operators.rel_error(operators.differences_hessian(t, at), t.hessian(at.params, at.x, at.y)) < FD / 100
    assert operators.rel_error(operators.differences_jacobian(t, at), t.jacobian(at.params, at.batch)) < FD / 100


FD = operators.FD_TOL
