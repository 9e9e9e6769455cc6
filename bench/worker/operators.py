"""A backend's operators beyond the gradient (``tasks.operators``) at a task's point, read back as numpy."""

from __future__ import annotations

from typing import Any

from backends._base import Lacks
from bench.core.errors import Failed
from bench.worker import training
from tasks import operators


def values_here(task: str, backend: str, dtype: str = "float64", names: list[str] | None = None,
                n: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Operator (``names``, or those ``tasks.operators.asked`` at the task's point) -> its value there as nested
    lists; or ``{"lacks": why, "declared": ...}`` where the backend has none (declared: its class's ``lacks`` names
    it, or, for numpy, the task writes no formula for it), or ``{"error": line}`` where computing it failed."""
    b = training.build(task, backend, dtype, n=n, optimizer="sgd", trains=False)  # its optimiser is not asked
    at = operators.point(b.task)
    out: dict[str, Any] = {}
    for name in names or operators.asked(at):
        try:
            value = b.operator(name, at)()
            out[name] = b.to_numpy(value).tolist()
        except Lacks as e:
            out[name] = {"lacks": str(e), "declared": name in type(b).lacks or backend == "numpy"}
        except Exception as e:  # noqa: BLE001 - a framework's error, kept as this operator's outcome
            out[name] = {"error": str(Failed.of(e))}
    return out
