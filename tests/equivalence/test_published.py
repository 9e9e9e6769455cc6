"""The tutorials' published numbers, reproduced by every backend."""

from __future__ import annotations

import numpy as np
import pytest

import backends
import tasks
from conftest import LR_IN_FLOAT32

# linear: step -> (w after the step, loss before it), from the published log (float32)
LINEAR_LOG = {
    1: (0.300, 30.00000000),
    3: (0.772, 15.66018677),
    5: (1.113, 8.17471600),
    7: (1.359, 4.26725292),
    9: (1.537, 2.22753215),
    11: (1.665, 1.16278565),
    13: (1.758, 0.60698175),
    15: (1.825, 0.31684822),
    17: (1.874, 0.16539653),
    19: (1.909, 0.08633806),
}


@pytest.mark.parametrize(
    "backend", [pytest.param(b, marks=LR_IN_FLOAT32) if b == "mxnet-gluon" else b for b in backends.BACKENDS]
)
def test_quadratic_to_8_decimals(lab, backend):
    run = lab.run("quadratic", backend, "float64")
    assert round(run.params["w"][0], 8) == 2.98927619
    assert round(run.params["b"][0], 8) == 2.09818307


@pytest.mark.parametrize("backend", backends.BACKENDS)
def test_linear_log(lab, backend):
    run = lab.run("linear", backend, "float32")
    for step, (w, loss) in LINEAR_LOG.items():
        # float32 precision: 20 steps of float32 arithmetic, each a few roundings
        assert run.losses[step - 1] == pytest.approx(loss, rel=20 * float(np.finfo(np.float32).eps)), step
        assert round(run.checkpoints[str(step)]["w"][0], 3) == w, step


@pytest.mark.parametrize("backend", backends.BACKENDS)
def test_linear_prediction(lab, backend):
    t = tasks.get("linear")
    f = lambda p: t.model({k: np.asarray(v) for k, v in p.items()}, 5.0, np)[0]  # noqa: E731
    assert round(f(t.init), 3) == 0.0
    assert round(f(lab.run("linear", backend, "float32").params), 3) == 9.612
