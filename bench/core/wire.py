"""The wire codec between a worker and its caller: a call's outcome as one JSON object, and back."""

from __future__ import annotations

from typing import Any

from bench.core.errors import ERRORS, BenchError, Diverged
from bench.core.records import ProcessCount, ProcessTiming, TrainingRun

RECORDS = {"train": TrainingRun, "measure": ProcessTiming, "count": ProcessCount}  # calls answered by a record


def encode(outcome: Any) -> dict[str, Any]:
    """A call's outcome (a record, a JSON value, or the BenchError it raised) as one JSON object."""
    if isinstance(outcome, BenchError):
        return {"error": type(outcome).__name__, "message": str(outcome), "step": getattr(outcome, "step", None)}
    return {"result": outcome.to_json() if isinstance(outcome, TrainingRun | ProcessTiming | ProcessCount) else outcome}


def decode(fn: str, reply: dict[str, Any]) -> Any:
    """What ``encode`` wrote for a call of ``fn``, back: its record, its value, or its error."""
    if "error" in reply:
        if reply["error"] == "Diverged":
            return Diverged(reply["step"])
        return ERRORS.get(reply["error"], BenchError)(reply["message"])
    record = RECORDS.get(fn)
    return record.from_json(reply["result"]) if record else reply["result"]
