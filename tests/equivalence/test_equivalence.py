"""Every backend reaches the numpy reference's parameters along the same loss trajectory, with every
optimiser: the reference's, or, where a framework's optimiser differs from the published definition
(tasks.formulas), the framework's own formula, which must then part from the published one."""

from __future__ import annotations

import numpy as np
import pytest

import backends
import tasks
from bench.core.agreement import TOL, end_error, end_tol, rel_diff, run_diff, tol
from bench.core.records import TrainingRun as Run
from conftest import OPTIMIZERS, assert_gradient_by_central_differences
from tasks import formulas, optimizers


def agrees(lab, run: Run, limit: float) -> None:
    """The run follows numpy's with its formula; a framework's formula also parts from the published one."""
    ref = lab.reference(run)
    assert run.digest == ref.digest, "the backend's environment made different task data"
    assert len(run.losses) == len(ref.losses)
    assert rel_diff(run.losses, ref.losses) <= limit
    for k in ref.params:
        assert rel_diff(run.params[k], ref.params[k]) <= limit, k
    assert run_diff(run, ref) <= limit
    if run.formula != "reference" and run.dtype == "float64":  # float32's own rounding can hide a setting's
        # the framework's formula describes it better than the published definition does: a run follows its
        # framework's formula to rounding, and even the smallest difference a formula names (Keras's float32 λ
        # alone) parts it from the definition by far more
        why = formulas.differences(run.formula, optimizers.parse(run.optimizer))
        published = run_diff(run, lab.reference(run, "reference"))
        assert published > 100 * run_diff(run, ref), f"documented, but not there: {why}"


def test_trajectory_matches_numpy(lab, case):
    task, backend, dtype = case
    agrees(lab, lab.run(task, backend, dtype), tol(tasks.get(task), dtype))


def test_every_optimizer_matches_numpy(lab, optimizer_case):
    """Each optimiser and setting on every backend: OPTIMIZER_TASK's first epochs (tests/conftest.py)."""
    name, backend, dtype = optimizer_case
    run = lab.optimizer_run(name, backend, dtype)
    assert optimizers.parse(run.optimizer) == optimizers.parse(OPTIMIZERS[name])
    agrees(lab, run, tol(tasks.get(run.task), dtype))


def test_gradient_matches_hand_derived(lab, case):
    task, backend, dtype = case
    t = tasks.get(task)
    x, y = t.x.astype(dtype), t.y.astype(dtype)
    _, hand = t.loss_and_grad({k: v.astype(dtype) for k, v in t.init.items()}, x, y)
    got = lab.gradient(task, backend, dtype)
    for k, g in hand.items():
        assert rel_diff(got[k], g) <= TOL[dtype], k


@pytest.mark.parametrize("task", tasks.TASKS)
def test_hand_derived_gradient_matches_finite_differences(task):
    assert_gradient_by_central_differences(tasks.get(task))


def test_hand_derived_loss_is_the_task_loss():
    for name in tasks.TASKS:
        t = tasks.get(name)
        loss, _ = t.loss_and_grad(t.init, t.x, t.y)
        assert loss == pytest.approx(t.full_loss(t.init), rel=1e-12), name


def test_ends_where_the_task_says(lab, full_case):
    task, backend, dtype = full_case
    t = tasks.get(task)
    if not t.expected and not t.metric_floors:
        pytest.fail(f"{task} states no end point and no metric to reach")
    run = lab.run(task, backend, dtype)
    assert len(run.losses) == t.steps
    assert end_error(run, t.expected) <= end_tol(t.expected_tol, dtype)
    figures = t.metrics(run.params) if t.metric_floors else {}
    for name, floor in t.metric_floors.items():
        assert figures[name] >= floor, (name, figures[name])


@pytest.mark.parametrize("backend", backends.BACKENDS)
def test_float32_runs_are_float32(lab, backend):
    """A float32 run that silently ran in float64 would agree with the float64 reference."""
    f32, f64 = lab.run("quadratic", backend, "float32"), lab.run("quadratic", backend, "float64")
    assert 1e-12 < rel_diff(f32.losses, f64.losses) < TOL["float32"]
    assert np.all(np.float32(f32.params["w"]) == f32.params["w"])
