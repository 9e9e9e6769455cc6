"""The worker's side of the calls: ``python -m bench.worker OUT`` answers calls read on stdin."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable
from typing import Any

from bench.core.errors import BenchError, Failed
from bench.core.wire import encode
from bench.worker import counter, operators, timer
from bench.worker.training import contract_here, evaluate_here, gradient_here, handwritten_here, train_here

CALLS: dict[str, Callable[..., Any]] = {
    "train": train_here,
    "gradient": gradient_here,
    "evaluate": evaluate_here,
    "handwritten": handwritten_here,
    "contract": contract_here,
    "measure": timer.measure,
    "prepare": timer.prepare,
    "settle": timer.settle,
    "correctness": timer.correctness,
    "count": counter.count,
    "operators": operators.values_here,
}


def call_here(fn: str, kwargs: dict[str, Any]) -> Any:
    """A call's result, or the error it raised as a BenchError: one call failing leaves the others be."""
    try:
        return CALLS[fn](**kwargs)
    except BenchError as e:
        return e
    except Exception as e:
        return Failed.of(e)


def serve(out: str) -> None:
    """``python -m bench.worker OUT``: read calls on stdin, a JSON line each, in batches that an empty line
    ends, and write each one's outcome as a JSON line to OUT once it is done. A batch is read whole before
    its calls run (the pipe never fills while a call runs); the next is waited for (Remote.send)."""
    batch: list[tuple[str, dict[str, Any]]] = []
    with open(out, "w") as f:
        for line in itertools.chain(sys.stdin, [""]):  # the end of stdin ends a batch too
            if line.strip():
                batch.append(json.loads(line))
                continue
            for fn, kw in batch:
                print(json.dumps(encode(call_here(fn, kw))), file=f, flush=True)
            batch = []
