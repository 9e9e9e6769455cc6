"""The array contract (tasks.contract) on every backend: each example's value against numpy and its
gradient against central finite differences of numpy, in float64."""

from __future__ import annotations

import collections
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import backends
from bench.campaign.remote import Remote
from bench.core.agreement import rel_diff
from bench.core.errors import BenchError
from bench.host import envs
from bench.worker import serve
from conftest import BACKGROUND, in_worker
from tasks import contract

AUTODIFF = [b for b in backends.BACKENDS if b != "numpy"]  # numpy's namespace is numpy: the reference
MXNET = {b for b, spec in backends.BACKENDS.items() if spec.framework == "mxnet"}


class Outcomes:
    """Each backend's contract call, made once a session: other environments' backends (and the slow eager
    jax) in worker processes started at once, this environment's when first asked for."""

    def __init__(self, wanted: set[str]) -> None:
        groups: dict[tuple[str, str], list[str]] = {}
        for b in AUTODIFF:
            if b in wanted and in_worker(b):
                groups.setdefault((backends.BACKENDS[b].env, b if b in BACKGROUND else ""), []).append(b)
        self.waiting = {
            tuple(bs): Remote(env, [("contract", {"backend": b}) for b in bs]) for (env, _), bs in groups.items()
        }
        self.done: dict[str, Any] = {}

    def get(self, backend: str) -> dict[str, Any]:
        if backend not in self.done:
            group = next((g for g in self.waiting if backend in g), None)
            if group is None:
                self.done[backend] = serve.call_here("contract", {"backend": backend})
            else:
                self.done.update(zip(group, self.waiting.pop(group).results(), strict=True))
        if isinstance(self.done[backend], BenchError):
            raise self.done[backend]
        return self.done[backend]


@pytest.fixture(scope="session")
def outcomes(request: pytest.FixtureRequest) -> Iterator[Outcomes]:
    # session-wide: the suite runs the workers' cases last, so this module's tests are not contiguous
    items = [i for i in request.session.items if "outcomes" in getattr(i, "fixturenames", ())]
    out = Outcomes({i.callspec.params["backend"] for i in items if hasattr(i, "callspec")})
    yield out
    for remote in out.waiting.values():  # workers whose tests did not run (-x, a failure): reap them
        remote.results()


def finite_differences(fn: Any, inputs: dict[str, np.ndarray], w: np.ndarray, name: str) -> np.ndarray:
    """d/d inputs[name] of sum(fn(np, **inputs) * w), by central differences."""
    grad = np.zeros_like(inputs[name])
    for i in np.ndindex(grad.shape):
        h = 1e-6 * max(1.0, abs(inputs[name][i]))
        up, down = ({**inputs, name: inputs[name].copy()} for _ in range(2))
        up[name][i] += h
        down[name][i] -= h
        grad[i] = (np.sum(fn(np, **up) * w) - np.sum(fn(np, **down) * w)) / (2 * h)
    return grad


@pytest.mark.parametrize("example", contract.EXAMPLES, ids=lambda e: e.code)
@pytest.mark.parametrize("backend", AUTODIFF)
def test_value_and_gradient(outcomes, backend, example):
    got = outcomes.get(backend)[example.code]
    assert "error" not in got, got.get("error")
    inputs = {k: np.array(v) for k, v in got["inputs"].items()}  # as the backend's environment made them
    w = inputs.pop("w")
    value = example.fn(np, **inputs)
    # MXNet 1.x has no 0-d arrays: a full reduction is (1,) there (the contract says so)
    assert tuple(got["shape"]) == (value.shape or ((1,) if backend in MXNET else ())), "shape"
    assert rel_diff(got["value"], np.broadcast_to(value, w.shape)) <= 1e-12, "value"
    for k in example.inputs:
        fd = finite_differences(example.fn, inputs, w, k)
        assert np.shape(got["grads"][k]) == fd.shape
        assert np.all(np.abs(np.subtract(got["grads"][k], fd)) <= 1e-6 * np.maximum(1.0, np.abs(fd))), k


def test_every_entry_has_examples_and_every_example_is_run_once():
    codes = [e.code for e in contract.EXAMPLES]
    assert len(codes) == len(set(codes))
    assert all(entry.examples for entry in contract.CONTRACT.values())
    assert set(contract.OPERATORS) == {"+", "-", "*", "/", "**", "@", "-x", "<", "<=", ">", ">=", ".T", "[]"}
    for name in contract.FUNCTIONS:  # each function's examples call it
        assert all(f"xp.{name}(" in code for code in contract.CONTRACT[name].examples), name


@pytest.mark.parametrize("backend", [b for b, spec in backends.BACKENDS.items() if spec.env == envs.current()])
def test_every_namespace_has_every_function(backend):
    xp = backends.load(backend).xp
    assert [f for f in contract.FUNCTIONS if not callable(getattr(xp, f, None))] == []


def test_numpy_is_the_reference_namespace():
    assert backends.load("numpy").xp is np


GLUON_GRAPH = """
import json, sys
from bench.worker import handwritten, training

def ops(net, x, y):
    net(x, y)  # the first call hybridizes
    return [n["op"] for n in json.loads(net._cached_graph[1].tojson())["nodes"] if n["op"] != "null"]

graphs = {}
for task in sys.argv[1:]:
    b = training.build(task, "mxnet-gluon")
    graphs[task] = ops(b.net, b.x[: b.task.batch], b.y[: b.task.batch])
loop = handwritten.make("mxnet-gluon", training.make_task("quadratic"), "float64")
graphs["handwritten"] = ops(loop.net, loop.x, loop.y)
print(json.dumps(graphs))
"""


def test_gluon_graph_is_the_one_an_expert_writes():
    """quadratic's 0.5 * sum((w * x**2 + b - y) ** 2), hybridized, is the hand-written Gluon block's graph:
    MXNet's square kernel for both squares (not the generic power one), broadcast_* only where the shapes
    differ (w and b are (1,), x and y (n,)), elemwise_* where they are the same, the scalar product a
    scalar kernel, and nothing else. logistic's three same-shaped operations are elementwise too."""
    if not envs.python("mxnet").exists():
        pytest.fail(envs.missing("mxnet", "mxnet") or "no mxnet environment")
    args = [envs.python("mxnet"), "-c", GLUON_GRAPH, "quadratic", "logistic"]
    out = subprocess.run(args, cwd=envs.ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    graphs = json.loads(out.stdout.strip().splitlines()[-1])
    expert = ["square", "broadcast_mul", "broadcast_add", "elemwise_sub", "square", "sum", "_mul_scalar"]
    assert graphs["quadratic"] == graphs["handwritten"] == expert
    assert collections.Counter(graphs["logistic"]) == collections.Counter(
        ["dot", "broadcast_add", "_maximum_scalar", "abs", "negative", "exp", "log1p"]
        + ["elemwise_add", "elemwise_mul", "elemwise_sub", "mean"]
    )
