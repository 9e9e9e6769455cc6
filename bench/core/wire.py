"""The wire codec between a worker and its caller: a call's outcome as one JSON object, and back."""

from __future__ import annotations

from typing import Any

from bench.core.errors import ERRORS, BenchError, Diverged
from bench.core.records import TrainingRun


def encode(outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, BenchError):
        return {"error": type(outcome).__name__, "message": str(outcome), "step": getattr(outcome, "step", None)}
    return {"result": outcome.to_json() if isinstance(outcome, TrainingRun) else outcome}


def decode(fn: str, reply: dict[str, Any]) -> Any:
    if "error" in reply:
        if reply["error"] == "Diverged":
            return Diverged(reply["step"])
        return ERRORS.get(reply["error"], BenchError)(reply["message"])
    return TrainingRun(**reply["result"]) if fn == "train" else reply["result"]
