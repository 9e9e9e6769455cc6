"""The command line: its outputs, and one clear line with the right exit status for every bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import backends
import tasks
from bench import envs


def bench(*args: str, cwd: Path = envs.ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True)


def one_line_error(out: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert out.returncode == status, out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for word in words:
        assert word in lines[0]


def test_list_names_every_task_and_backend():
    out = bench("list")
    assert out.returncode == 0
    for name in [*tasks.TASKS, "numpy", "torch-nn", "jax-jit", "mxnet-gluon"]:
        assert name in out.stdout
    assert out.stdout.count("available") == len(backends.BACKENDS)


def test_train_json_from_the_main_environment_runs_mxnet_in_its_own():
    out = bench("train", "linear", "--backend", "mxnet", "--dtype", "float32", "--json")
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)
    assert run.keys() == {"task", "backend", "dtype", "params", "losses"}
    assert (run["task"], run["backend"], run["dtype"]) == ("linear", "mxnet", "float32")
    assert len(run["losses"]) == 20 and run["losses"][0] == 30.0
    assert round(5 * run["params"]["w"][0], 3) == 9.612


def test_train_prints_parameters_and_loss():
    out = bench("train", "quadratic", "--backend", "numpy")
    assert out.returncode == 0
    assert "w = 2.98927619" in out.stdout and "b = 2.09818307" in out.stdout and "final loss" in out.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "nope", "--backend", "numpy"], ["unknown task 'nope'", "quadratic", "parabola-sgd"]),
        (["train", "linear", "--backend", "nope"], ["unknown backend 'nope'", "torch-nn", "mxnet-gluon"]),
        (["train", "linear", "--backend", "numpy", "--dtype", "float16"], ["unknown dtype", "float64, float32"]),
        (["compare", "nope"], ["unknown task 'nope'"]),
        (["train", "linear"], ["--backend"]),
        (["frobnicate"], ["invalid choice", "compare"]),
        (["train", "linear", "--backend", "numpy", "--lr", "fast"], ["--lr", "fast"]),
    ],
)
def test_bad_input_is_one_line_and_status_2(args, words):
    one_line_error(bench(*args), 2, *words)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax-jit", "mxnet"])
def test_divergence_stops_with_the_step(backend):
    out = bench("train", "quadratic", "--backend", backend, "--lr", "1", "--json")
    one_line_error(out, 1, "diverged at step")
    reference = bench("train", "quadratic", "--backend", "numpy", "--lr", "1")
    assert out.stderr.split(":")[1] == reference.stderr.split(":")[1]  # the same step


def test_a_missing_environment_says_how_to_make_it(tmp_path):
    for package in ("tasks", "backends", "bench"):  # a checkout without .venv-mxnet/
        shutil.copytree(envs.ROOT / package, tmp_path / package)
    out = bench("train", "linear", "--backend", "mxnet", cwd=tmp_path)
    one_line_error(out, 1, ".venv-mxnet/", envs.SETUP_COMMAND)
    assert bench("list", cwd=tmp_path).stdout.count(".venv-mxnet/, which does not exist") == 2
