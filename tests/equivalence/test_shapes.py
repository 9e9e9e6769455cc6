"""Parameters and data of any shape, end to end: results keep each parameter's shape, the comparison
works on any shape, the fit plot draws every task, the command line prints and returns them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import tasks
from bench.core.agreement import rel_diff
from bench.core.records import TrainingRun, as_lists
from bench.host import envs
from bench.report import plots
from bench.worker import training


def test_a_run_keeps_every_parameter_shape_through_json():
    t = tasks.get("mlp")
    run = training.train_here("mlp", "numpy", epochs=1)
    back = TrainingRun(**json.loads(json.dumps(run.to_json())))
    for k, v in t.init.items():
        assert np.shape(back.params[k]) == v.shape, k
    assert {k: np.shape(g) for k, g in training.gradient_here("digits", "torch").items()} == {"W": (64, 10), "b": (10,)}


def test_rel_diff_on_any_shape():
    a = np.arange(6.0).reshape(2, 3)
    b = a.copy()
    b[1, 2] += 1e-3
    assert rel_diff(a.tolist(), a) == 0.0
    assert rel_diff(a.tolist(), b.tolist()) == pytest.approx(1e-3 / (5 + 5.001), rel=1e-9)
    assert rel_diff(a, a.reshape(3, 2)) == float("inf")  # same values, other shape: not the same parameter
    assert rel_diff(a, a.ravel()) == float("inf")


@pytest.mark.parametrize("task", tasks.TASKS)
def test_fit_plot_draws_every_task(tmp_path, task):

    t = tasks.get(task)
    rows = [{"backend": b, "dtype": "float64", "params": as_lists(t.init, t.init), "epochs_trained": 1,
             "epochs": t.epochs} for b in ("numpy", "torch")]  # fmt: skip
    plots.fit_plot(tmp_path / "fit.png", t, rows)
    assert (tmp_path / "fit.png").stat().st_size > 10_000


def test_train_json_and_text_from_a_task_with_matrices():
    def bench(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bench", *args], cwd=envs.ROOT, capture_output=True, text=True)

    out = bench("train", "mlp", "--backend", "jax-jit", "--json")
    assert out.returncode == 0, out.stderr
    params = json.loads(out.stdout)["params"]
    assert {k: np.shape(v) for k, v in params.items()} == {"W1": (1, 16), "b1": (16,), "W2": (16, 1), "b2": (1,)}
    text = bench("train", "digits", "--backend", "numpy")
    assert text.returncode == 0, text.stderr
    assert "W = <64×10 array" in text.stdout and "b = <10 array" in text.stdout


def test_digits_holds_out_its_test_images():
    from tasks import digits

    x, y, x_test, y_test = digits.data()
    assert x.shape == (1500, 64) and x_test.shape == (297, 64)
    assert np.all(y.sum(axis=1) == 1) and np.all(y_test.sum(axis=1) == 1) and y.shape[1] == 10
    t = tasks.get("digits")
    assert t.x is x and t.y is y  # trains on the training split only
    chance = t.metrics(t.init)  # a random start: about one in ten
    assert chance["test_accuracy"] < 0.3
