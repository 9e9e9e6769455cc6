"""``Backend.evaluate``: the objective alone over the batches ``run`` trains on, in the same order, at the
current parameters, which it leaves as they were."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import backends
import tasks
from bench.campaign.remote import Remote
from bench.core.agreement import rel_diff
from bench.core.errors import BenchError
from bench.host import envs
from bench.worker import serve, training
from conftest import BACKGROUND, in_worker

EPOCHS = 2  # two epochs: a shuffled task's second order differs from its first
CASES = [(t, b) for t in tasks.TASKS for b in backends.BACKENDS]


class Evaluations:
    """Each case's evaluate call, made once a session: other environments' backends (and the slow eager jax)
    in worker processes started at once, this environment's when first asked for."""

    def __init__(self, cases: set[tuple[str, str]]) -> None:
        groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for task, backend in sorted(cases):
            if in_worker(backend):
                groups.setdefault(
                    (backends.BACKENDS[backend].env, backend if backend in BACKGROUND else ""), []
                ).append((task, backend))
        self.waiting = {
            tuple(cs): Remote(env, [("evaluate", self.kwargs(*c)) for c in cs]) for (env, _), cs in groups.items()
        }
        self.done: dict[tuple[str, str], Any] = {}

    @staticmethod
    def kwargs(task: str, backend: str) -> dict[str, Any]:
        return {"task": task, "backend": backend, "dtype": "float64", "epochs": EPOCHS}

    def get(self, task: str, backend: str) -> dict[str, Any]:
        case = (task, backend)
        if case not in self.done:
            group = next((g for g in self.waiting if case in g), None)
            if group is None:
                self.done[case] = serve.call_here("evaluate", self.kwargs(task, backend))
            else:
                self.done.update(zip(group, self.waiting.pop(group).results(), strict=True))
        if isinstance(self.done[case], BenchError):
            raise self.done[case]
        return self.done[case]


@pytest.fixture(scope="session")
def evaluations(request: pytest.FixtureRequest) -> Iterator[Evaluations]:
    items = [i for i in request.session.items if "evaluations" in getattr(i, "fixturenames", ())]
    out = Evaluations({(i.callspec.params["task"], i.callspec.params["backend"]) for i in items})
    yield out
    for remote in out.waiting.values():  # workers whose tests did not run (-x, a failure): reap them
        remote.results()


def numpy_losses(name: str) -> np.ndarray:
    """Each step's batch loss at the initial parameters, in numpy, batched here from the task's schedule."""
    t = tasks.get(name)
    losses = []
    for order in t.orders()[:EPOCHS]:
        x, y = (t.x, t.y) if order is None else (t.x[order], t.y[order])
        for i in range(0, len(x), t.batch):
            losses.append(t.loss(t.model(t.init, x[i : i + t.batch], np), y[i : i + t.batch], np))
    return np.array(losses, dtype="float64").ravel()


@pytest.mark.parametrize("task, backend", CASES, ids=["-".join(c) for c in CASES])
def test_evaluate_gives_numpys_losses_and_leaves_the_parameters(evaluations, task, backend):
    got = evaluations.get(task, backend)
    want = numpy_losses(task)
    assert len(got["losses"]) == len(want) == EPOCHS * tasks.get(task).steps_per_epoch
    assert rel_diff(got["losses"], want) <= 1e-9
    assert got["after"] == got["before"]


@pytest.mark.parametrize("backend", [b for b, spec in backends.BACKENDS.items() if spec.env == envs.current()])
def test_evaluate_returns_what_run_returns_with_no_tape(backend):
    b = training.build("logistic", backend, epochs=EPOCHS)
    chunk = b.prepare(b.task.lrs(), b.task.orders())
    out = b.evaluate(chunk)
    assert type(out) is type(b.run(chunk))
    assert not getattr(out, "requires_grad", False)  # torch: no autograd graph hangs off the losses
    b.wait(out)
