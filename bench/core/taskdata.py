"""Task data made once: the main process makes every array of a task (data, initial parameters,
learning rates, batch orders) and every other environment trains on those exact bytes.

numpy 1.23.5 (the MXNet environment) and numpy 2 differ in the last bit of some functions (``np.sin``),
and the MXNet environment has no scikit-learn: a task made there would not be the same task. So a
parent process saves each task it sends away as an ``.npz`` (arrays, plus the task's other fields as
JSON, its optimiser by name and settings, and its functions by reference) into a folder it names in
``AUTODIFF_BENCH_DATA``; ``made`` there loads it and checks its digest. Pickle is no way out: numpy 2's
pickles do not load in numpy 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

import tasks
from tasks import Task, optimizers

VARIABLE = "AUTODIFF_BENCH_DATA"
ARRAYS = ("x", "y", "init", "lr", "orders_made")  # the fields saved as arrays


class DataDiffer(Exception):
    """Raised where received data do not match the digest they were sent with."""


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule as the values it gave, one per epoch."""

    values: tuple[float, ...]

    def __call__(self, epoch: int) -> float:
        return self.values[epoch]


def digest(task: Task) -> str:
    """Of every array a backend trains on: data, initial parameters, learning rates and batch orders."""
    h = hashlib.sha256()
    for a in [task.x, task.y, *task.init.values(), task.lrs(), *(o for o in task.orders() if o is not None)]:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def file_name(name: str, n: int | None = None) -> str:
    return f"{name}.npz" if n is None else f"{name}-{n}.npz"


def made(name: str, n: int | None = None) -> Task:
    """The task: as the parent process made it, where it sent it; else made here."""
    folder = os.environ.get(VARIABLE)
    if folder and (Path(folder) / file_name(name, n)).exists():
        return load(Path(folder) / file_name(name, n))
    return tasks.get(name) if n is None else tasks.get(name, n=n)


def ship(folder: Path, wanted: set[tuple[str, int | None]]) -> dict[str, str]:
    """Save each (task, n) into ``folder``; returns the environment variables that point a child there."""
    for name, n in wanted:
        if not (folder / file_name(name, n)).exists():
            save(made(name, n), folder / file_name(name, n))
    return {VARIABLE: str(folder)}


def reference(fn: Any) -> dict[str, str]:
    """A function by the module and name another process imports it by."""
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    found = sys.modules.get(module or "")
    for part in name.split("."):
        found = getattr(found, part, None)
    if found is not fn:
        raise ValueError(f"{fn!r} cannot be sent to another environment: define it at the top of its module")
    from_file = module.startswith(tasks.FILE_MODULE)  # a user's task file: sent by its path
    return {"function": f"{sys.modules[module].__file__ if from_file else module}:{name}"}


def resolve(ref: str) -> Any:
    """A function by its module (or task file) and qualified name."""
    module, name = ref.rsplit(":", 1)
    found: Any = tasks.load_module(module)
    for part in name.split("."):
        found = getattr(found, part)
    return found


def save(task: Task, path: Path) -> None:
    arrays = {"x": task.x, "y": task.y, "lrs": task.lrs()} | {f"init.{k}": v for k, v in task.init.items()}
    orders = task.orders()
    if orders and orders[0] is not None:
        arrays["orders"] = np.stack(orders)
    meta: dict[str, Any] = {"digest": digest(task), "init": list(task.init)}
    for f in dataclasses.fields(task):
        value = getattr(task, f.name)
        if f.name == "optimizer":  # as {"name": ..., settings}, which Task reads back
            meta[f.name] = optimizers.to_json(value)
        elif f.name not in ARRAYS:
            meta[f.name] = reference(value) if callable(value) else value
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta, default=float)), **arrays)
    os.replace(tmp, path)


def load(path: Path) -> Task:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        sent, init = meta.pop("digest"), {k: z[f"init.{k}"] for k in meta.pop("init")}
        fields = {k: resolve(v["function"]) if isinstance(v, dict) and "function" in v else v for k, v in meta.items()}
        orders = tuple(z["orders"]) if "orders" in z else None
        task = Task(**fields, x=z["x"], y=z["y"], init=init, lr=Schedule(tuple(z["lrs"].tolist())), orders_made=orders)
    received = digest(task)
    if received != sent:
        raise DataDiffer(f"task data differ between environments (made {sent}, received {received})")
    return task
