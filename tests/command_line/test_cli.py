"""The command line: its outputs, and one clear line with the right exit status for every bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import backends
import tasks
from bench import cli
from bench.campaign.remote import Remote, call_many
from bench.core.errors import BenchError
from bench.host import envs
from conftest import CUBIC, bench, one_line_error


def test_list_names_every_task_and_backend():
    out = bench("list")
    assert out.returncode == 0
    for name in [*tasks.TASKS, "numpy", "torch-nn", "jax-jit", "mxnet-gluon"]:
        assert name in out.stdout
    assert out.stdout.count("available") == len(backends.BACKENDS)
    for name, spec in backends.BACKENDS.items():  # each backend's kind of mode beside its name
        line = next(line for line in out.stdout.splitlines() if line.split()[:1] == [name])
        assert line.split()[1 : 1 + len(spec.mode.split())] == spec.mode.split(), line


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


# -- a user's task file that is wrong: one line in the user's words, whichever command is given it -------------------
GOOD = CUBIC.format(name="cubic", lr="0.5", epochs=30)  # the README's example, as conftest writes it
# (what is changed in GOOD, what it becomes, what the one line says); {path}: the file, {line}: the line changed
BROKEN = {
    "syntax error": ("def model(p, x, xp):", "def model(p, x, xp)", ["SyntaxError", "{path}, line {line}"]),
    "no make": ("def make():", "def build():", ["{path}: defines no make() -> Task"]),
    "make raises": ("    x = np.linspace(-1, 1, 64)", "    x = [][1]",
                    ["IndexError: list index out of range", "{path}, line {line}"]),
    "wrong shapes": ('"a": np.zeros(1)', '"a": np.zeros(2)',
                     ["the model or loss fails on numpy", "could not be broadcast", "{path}, line 6"]),
    "x and y of different lengths": ("y, init = 2 * x**3 - 1,", "y, init = (2 * x**3 - 1)[:50],",
                                     ["x has 64 samples and y 50"]),
    "a gradient of the wrong shape": ('"b": 2 * np.mean(r, keepdims=True)', '"b": 2 * np.mean(r)',
                                      ["the hand-derived gradient of 'b' has shape (), its parameter (1,)"]),
    "a gradient missing": (', "b": 2 * np.mean(r, keepdims=True)}', "}", ["gradient has ['a']", "['a', 'b']"]),
    "non-finite data": ("y, init = 2 * x**3 - 1,", "y, init = 2 * x**3 - 1 + np.where(x < -0.99, np.nan, 0),",
                        ["y holds values that are not finite (1 of 64)"]),
    "a scalar parameter": ('"a": np.zeros(1)', '"a": np.zeros(())', ["parameter 'a' has shape ()"]),
    "a loss that is no number": ("return xp.mean((pred - y) ** 2)", "xp.mean((pred - y) ** 2)",
                                 ["the loss gives None, not one number"]),
    "a learning rate of 0": ("lr=lambda e: 0.5", "lr=lambda e: 0.5 * (e < 3)", ["lr(3) is 0, not a finite number"]),
    "a function a worker cannot import": ("epochs=30)", "epochs=30, metrics=lambda p: {})",
                                          ["metrics is 'make.<locals>.<lambda>', which a worker cannot import"]),
    "metrics that fail": ("epochs=30)", 'epochs=30, metrics=loss_and_grad, metric_floors={"acc": 0.5})',
                          ["metrics fails at the initial parameters: TypeError: loss_and_grad() missing 2"]),
    "an end that names no parameter": ("epochs=30)", 'epochs=30, expected={"c": 1.0})',
                                       ["expected names 'c', which is no parameter (they are a, b)"]),
    "a shuffle seed that is no number": ("epochs=30)", 'epochs=30, shuffle_seed="a")',
                                         ["shuffle_seed is 'a', not a whole number of 0 or more"]),
    "a batch size that does not divide the data": ("epochs=30)", "epochs=30, batch_size=5)",
                                                   ["batch size 5 does not divide 64", "{path}, line {line}"]),
}  # fmt: skip


def broken_task(folder: Path, what: str) -> tuple[Path, list[str]]:
    old, new, words = BROKEN[what]
    assert GOOD.count(old) == 1
    path = folder / "task.py"
    path.write_text(GOOD.replace(old, new))
    line = GOOD.split(old)[0].count("\n") + 1
    return path, [w.format(path=path, line=line) for w in words]


def test_the_task_that_broken_breaks_trains(tmp_path):
    (tmp_path / "task.py").write_text(GOOD)
    out = bench("train", "--task", str(tmp_path / "task.py"), "--backend", "numpy")
    assert out.returncode == 0 and out.stdout.startswith("cubic on numpy (float64), 30 steps: a = "), out.stderr


@pytest.mark.parametrize("what", list(BROKEN))
def test_a_broken_task_file_is_one_line_naming_what_is_wrong(tmp_path, what):
    path, words = broken_task(tmp_path, what)
    one_line_error(bench("train", "--task", str(path), "--backend", "numpy"), 2, f"cannot load task {path}", *words)


@pytest.mark.parametrize("make", ["missing", "folder", "not python", "module"])
def test_a_task_that_is_not_a_file_is_one_line(tmp_path, make):
    target = {"missing": tmp_path / "nope.py", "folder": tmp_path, "not python": tmp_path / "task.txt",
              "module": "no_such_package.task"}[make]  # fmt: skip
    if make == "not python":
        target.write_text(GOOD)
    words = {"missing": "no such file", "folder": "a folder, not a task file", "not python": "not a .py file",
             "module": "ModuleNotFoundError: No module named 'no_such_package'"}[make]  # fmt: skip
    one_line_error(bench("train", "--task", str(target), "--backend", "numpy"), 2, f"cannot load task {target}", words)


def test_an_unreadable_task_file_is_one_line(tmp_path, monkeypatch, capsys):
    """Unreadable (root reads whatever its mode: the read is made to fail)."""
    path = tmp_path / "task.py"
    path.write_text(GOOD)
    real = Path.read_bytes

    def read_bytes(self):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(tasks, "TASKS", dict(tasks.TASKS))  # were it taken, this process's registry is as it was
    monkeypatch.setenv(tasks.USER_TASKS, os.environ.get(tasks.USER_TASKS, ""))
    assert cli.main(["train", "--task", str(path), "--backend", "numpy"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == f"error: cannot load task {path}: cannot be read (Permission denied)\n"


def test_every_command_refuses_a_broken_task_alike_and_check_names_it(tmp_path):
    path, words = broken_task(tmp_path, "wrong shapes")
    out = str(tmp_path / "r")
    for args in (["compare", "--task", str(path)], ["run", "--quick", "--task", str(path), "--out", out],
                 ["run", "--count", "--task", str(path), "--out", out]):  # fmt: skip
        one_line_error(bench(*args), 2, f"cannot load task {path}", *words)
    assert not (tmp_path / "r").exists()
    out = bench("check", str(path), "--backends", "numpy")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    fail = [line for line in out.stdout.splitlines() if line.startswith("  FAIL")]
    assert len(fail) == 2 and all(w in fail[0] for w in words), out.stdout
    assert fail[1] == "  FAIL  array contract and gradients: not checked until the fields above are right"


def test_check_holds_second_order_formulas_to_differences_and_newton_to_descent():
    """logistic-newton writes its Hessian and Jacobian by hand: check holds both to central differences, and
    says how many steps Newton's method takes, and gradient descent from the same start (far more)."""
    out = bench("check", "logistic-newton", "--backends", "numpy")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("  ok    hand-derived hessian vs central differences of the gradient") for line in lines)
    assert any(line.startswith("  ok    hand-derived jacobian vs central differences of the model") for line in lines)
    newton = next(line for line in lines if "newton: within" in line)
    found = re.search(r"in (\d+) steps; full-batch gradient descent .* in ([\d,]+) steps", newton)
    assert found, newton
    assert int(found[1]) <= 10 and int(found[2].replace(",", "")) >= 10 * int(found[1]), newton
