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
from bench.campaign.remote import Remote, call_many
from bench.core.errors import BenchError
from bench.host import envs
from conftest import bench, one_line_error


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
        (["train", "linear", "--backend", "numpy", "--lr", "nan"], ["--lr", "greater than 0"]),
        (["train", "linear", "--backend", "numpy", "--lr", "inf"], ["--lr", "greater than 0"]),
        (["train", "linear", "--backend", "numpy", "--lr", "-1"], ["--lr", "greater than 0"]),
        (["train", "linear", "--backend", "numpy", "--lr", "0"], ["--lr", "greater than 0"]),
        (["compare", "linear", "linear"], ["'linear' is named twice"]),
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


def test_another_interpreter_is_told_to_use_the_projects_environment():
    """The system Python (say) neither misreports what is installed nor crashes later."""
    system = Path(sys.base_prefix) / "bin" / "python3"
    for args in (["list"], ["run", "--quick"]):
        out = subprocess.run([system, "-m", "bench", *args], cwd=envs.ROOT, capture_output=True, text=True)
        one_line_error(out, 1, ".venv/bin/python -m bench")


def test_a_broken_interpreter_is_named_in_one_line(tmp_path):
    for package in ("tasks", "backends", "bench"):
        shutil.copytree(envs.ROOT / package, tmp_path / package)
    broken = tmp_path / ".venv-mxnet" / "bin" / "python"
    broken.parent.mkdir(parents=True)
    broken.write_text("#!/bin/sh\necho 'Fatal Python error: init_fs_encoding' >&2\nexit 1\n")
    broken.chmod(0o755)
    out = bench("list", cwd=tmp_path)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.count(".venv-mxnet/bin/python does not start (Fatal Python error: init_fs_encoding)") == 2


@pytest.mark.parametrize("backend", ["numpy", "mxnet"])
def test_one_failing_call_leaves_its_siblings(backend):
    """Here and in another environment's worker: an exception is that call's outcome, the rest go on."""
    calls = [("train", {"task": "linear", "backend": backend, "dtype": "float64", "epochs": e}) for e in ("x", 2, 3)]
    bad, two, three = call_many(calls)
    assert isinstance(bad, BenchError) and str(bad).startswith("TypeError: ")
    assert len(two.losses) == 2 and len(three.losses) == 3


def test_a_worker_that_dies_keeps_its_answers_and_names_its_end(monkeypatch):
    calls = [("train", {"task": "linear", "backend": "mxnet", "dtype": "float64", "epochs": e}) for e in (1, 2)]
    script = (
        "import json, os, sys; from bench.worker.serve import call_here; from bench.core.wire import encode\n"
        "fn, kw = json.loads(sys.stdin.readline())\n"
        "open(sys.argv[1], 'w').write(json.dumps(encode(call_here(fn, kw))) + '\\n')\n"
        "print('segfault on the way', file=sys.stderr, flush=True); os.abort()"
    )
    monkeypatch.setattr(Remote, "command", lambda self: [envs.python(self.env), "-c", script, self.out.name])
    first, second = call_many(calls)
    assert len(first.losses) == 1
    assert isinstance(second, BenchError)
    assert "the mxnet worker was killed by SIGABRT" in str(second) and "segfault on the way" in str(second)
