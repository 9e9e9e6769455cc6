"""How far a run is from the numpy reference, and the verdict the suite and ``bench compare`` agree on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.core.records import TrainingRun
from tasks import Task

TOL = {"float64": 1e-9, "float32": 1e-4}  # on |a-b| / max(1, |a|+|b|)


def tol(task: Task, dtype: str) -> float:
    return task.float32_tol if dtype == "float32" and task.float32_tol else TOL[dtype]


def rel_diffs(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> np.ndarray:
    """``|a-b| / max(1, |a|+|b|)`` elementwise: what TOL bounds."""
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    return np.abs(a - b) / np.maximum(1.0, np.abs(a) + np.abs(b))


def rel_diff(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    if np.shape(a) != np.shape(b):
        return float("inf")
    return float(np.max(rel_diffs(a, b), initial=0.0))


def run_diff(run: TrainingRun, ref: TrainingRun) -> float:
    """The largest relative difference over the final parameters and every step's loss."""
    if run.digest != ref.digest or run.params.keys() != ref.params.keys():
        return float("inf")
    return max([rel_diff(run.losses, ref.losses), *(rel_diff(run.params[k], ref.params[k]) for k in ref.params)])


def reference(run: TrainingRun, epochs: int | None, formula: str | None = None) -> dict[str, Any]:
    """The one numpy run a training run is held against, as a ``train`` call's arguments: the same task, dtype,
    ``epochs`` (those ``run`` trained; None: the whole schedule) and optimiser, following the same update formula
    (``run.formula``: its framework's, where that differs from the reference's by definition; ``formula`` names
    another, ``"reference"`` the published definition) and, where it follows ``run``'s formula, rounding the
    learning rates as ``run`` did."""
    formula = formula or run.formula
    return {"task": run.task, "backend": "numpy", "dtype": run.dtype, "epochs": epochs, "optimizer": run.optimizer,
            "lr_dtype": run.lr_dtype if formula == run.formula else "float64", "formula": formula}  # fmt: skip


def end_error(run: TrainingRun, expected: dict[str, float | list[float]]) -> float:
    """The largest absolute distance of the final parameters from where the task says they end."""
    return max((float(np.max(np.abs(np.subtract(run.params[k], v)))) for k, v in expected.items()), default=0.0)


def end_tol(expected_tol: float, dtype: str) -> float:
    """A task's end-point tolerance is for float64; float32 cannot do better than its own tolerance."""
    return expected_tol if dtype == "float64" else max(expected_tol, TOL["float32"])
