"""A user's own task, without editing the project: the README's example, checked, trained, compared
and timed on every backend; and broken tasks that ``bench check`` catches."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import backends
from bench.core.cases import DTYPES
from bench.core.options import OPERATOR_MODES
from bench.host import envs


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=envs.ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def cubic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's example task, exactly as the README shows it."""
    readme = (envs.ROOT / "README.md").read_text()
    block = readme.split("<!-- own-task:start -->")[1].split("<!-- own-task:end -->")[0]
    path = tmp_path_factory.mktemp("own") / "cubic.py"
    path.write_text(block.split("```python\n")[1].split("```")[0])
    return path


def test_the_readme_example_passes_check(cubic):
    out = bench("check", str(cubic))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("task cubic (") and all(line.startswith("  ok  ") for line in lines[1:])
    assert sum("gradient vs hand-derived" in line for line in lines) == len(backends.BACKENDS)


@pytest.fixture(scope="module")
def compared(cubic: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """One ``bench compare`` of the README's example and of the example with its optimiser line changed to
    Adam (and its name, so that the two can be told apart): each task's rows."""
    adam = tmp_path_factory.mktemp("adam") / "cubic_adam.py"
    text = cubic.read_text()
    assert text.count("opt = SGD()") == 1 and text.count('Task("cubic"') == 1
    adam.write_text(text.replace("opt = SGD()", "opt = Adam()").replace("import SGD,", "import Adam,")
                    .replace('Task("cubic"', 'Task("cubic-adam"'))  # fmt: skip
    out = bench("compare", "--task", str(cubic), "--task", str(adam))
    assert out.returncode == 0, out.stdout + out.stderr
    rows: dict[str, list[str]] = {}
    for line in out.stdout.splitlines()[2:]:
        rows.setdefault(line.split(" ", 1)[0], []).append(line)
    return rows


def test_the_readme_example_trains_and_agrees_everywhere(cubic, compared):
    out = bench("train", "--task", str(cubic), "--backend", "mxnet-gluon", "--json")
    assert out.returncode == 0, out.stderr
    params = json.loads(out.stdout)["params"]
    assert params["a"][0] == pytest.approx(2, abs=1e-6) and params["b"][0] == pytest.approx(-1, abs=1e-6)
    assert len(compared["cubic"]) == len(backends.BACKENDS)
    assert all("agrees" in row for row in compared["cubic"]), compared["cubic"]


def test_one_line_picks_another_optimizer_for_every_backend(compared):
    """The example's optimiser line changed to Adam: every backend trains it with its framework's Adam and
    agrees with numpy (Keras's and MXNet's with their own formula, which compare names)."""
    rows = compared["cubic-adam"]
    assert len(rows) == len(backends.BACKENDS) and all("agrees" in row for row in rows), rows
    for framework in ("tensorflow", "mxnet"):  # every mode of the framework, with its optimiser's formula
        modes = sum(s.framework == framework for s in backends.BACKENDS.values())
        said = "keras" if framework == "tensorflow" else framework
        assert sum(f"against {said}'s formula" in row for row in rows) == modes, framework


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_readme_example_has_every_operator_on_every_framework(cubic, dtype):
    """A user's task without second-order formulas: the operators (tasks.operators) of every mode whose operators
    are built apart (OPERATOR_MODES, those `bench run --operators` times; another mode's are one of these unchanged,
    and the suite holds every mode's on logistic) held to central differences of its hand-derived gradient and
    model, in one table, in each dtype; what a backend lacks, named with why."""
    out = bench("compare", "--operators", "--task", str(cubic), "--backends", ",".join(OPERATOR_MODES), "--dtype",
                dtype)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("cubic ")]
    assert len(rows) == len(OPERATOR_MODES) and not any("FAILS" in r or "DIFFERS" in r for r in rows), rows
    assert {r.split()[1] for r in rows} == set(OPERATOR_MODES)
    agreeing, total = map(int, re.search(r"^(\d+) of (\d+) operator values agree", out.stdout, re.M).groups())
    assert agreeing == total >= len(OPERATOR_MODES)
    assert all(line.count(":") >= 1 for line in out.stdout.splitlines() if line.startswith("lacks: "))


def test_the_readme_example_is_timed(cubic, tmp_path):
    out = bench("run", "--quick", "--task", str(cubic), "--backends", "numpy,mxnet", "--out", str(tmp_path / "r"))
    assert out.returncode == 0, out.stderr
    cases = json.loads((tmp_path / "r" / "results.json").read_text())["cases"]
    speed = [c for c in cases if c["kind"] == "speed"]
    assert {(c["task"], c["backend"]) for c in speed} == {("cubic", "numpy"), ("cubic", "mxnet")}
    assert all("error" not in c and c["max_rel_diff"] <= 1e-9 for c in speed)


@pytest.mark.parametrize(
    "old, new, words",
    [
        ('"a": 2 * np.mean(r * x**3', '"a": 3 * np.mean(r * x**3', "FAIL  hand-derived gradient vs central"),
        (
            'return p["a"] * x**3',
            'return p["a"] * np.power(x, 3)',
            "FAIL  array contract: numpy's power called on a task's array in {path}, line 6: use x1 ** x2",
        ),
        ("xp.mean((pred - y) ** 2)", "xp.var(pred - y) + xp.mean(pred - y) ** 2", "FAIL  array contract: uses var"),
        ("opt = SGD()", "opt = SGD(momentum=-0.5)", "FAIL  optimizer: sgd momentum is -0.5, not in [0, 1)"),
        (
            "opt = SGD()",
            'opt = {"name": "adam", "beta2": 0.99}',
            "FAIL  optimizer: adam has no setting 'beta2'; its settings: b1, b2, eps, weight_decay",
        ),
    ],
)
def test_check_names_what_is_wrong(cubic, tmp_path, old, new, words):
    broken = tmp_path / "broken.py"
    text = cubic.read_text()
    assert old in text
    broken.write_text(text.replace(old, new))
    out = bench("check", str(broken), "--backends", "numpy")  # what is wrong is found before any framework runs
    assert out.returncode == 1 and words.format(path=broken) in out.stdout, out.stdout + out.stderr
    assert [line.split()[1] for line in out.stdout.splitlines() if "gradient vs hand-derived" in line] == ["numpy"]
    assert out.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "call, words",
    [
        ("np.exp(x)", "numpy's exp called on a task's array in {path}, line 6: use xp.exp (tasks/contract.py)"),
        ("np.reshape(x, (-1,))", "numpy's reshape called on a task's array in {path}, line 6: use xp.reshape"),
        ("np.dot(x, x) * x", "numpy's dot called on a task's array in {path}, line 6: use x1 @ x2 or xp.matmul"),
        ("np.var(x) * x", "numpy's var called on a task's array in {path}, line 6: the array contract has no var"),
        ("np.add.reduce(x) * x", "numpy's add.reduce called on a task's array in {path}, line 6: use xp.sum"),
        ("np.asarray(x)", "a task's array made into a numpy array in {path}, line 6 (np.asarray, np.array"),
        ("np.ones(64) * x", "array contract: model and loss use"),  # numpy's array left of an operator: the task's
    ],
)
def test_numpy_called_where_xp_belongs_names_the_function_the_line_and_what_to_use(cubic, tmp_path, call, words):
    """Whatever numpy function a model calls on a task's array (a ufunc, an array function, a conversion),
    ``bench check`` names it, the line of the task's code, and the array contract's way; never a class of the
    project's own."""
    broken = tmp_path / "numpy_call.py"
    text = cubic.read_text()
    assert 'return p["a"] * x**3 + p["b"]' in text.splitlines()[5]
    broken.write_text(text.replace('return p["a"] * x**3 + p["b"]', f'return p["a"] * {call} + p["b"]'))
    out = bench("check", str(broken), "--backends", "numpy")
    contract = next(line for line in out.stdout.splitlines() if "array contract" in line)
    assert words.format(path=broken) in contract, out.stdout + out.stderr
    assert contract.startswith("  ok  " if words.startswith("array contract") else "  FAIL  array contract: ")
    assert "Recorded" not in out.stdout + out.stderr and "Traceback" not in out.stderr


def test_a_task_file_whose_path_holds_any_character_reaches_every_worker(cubic, tmp_path):
    """The user's tasks travel to the workers of another environment (MXNet's here) whatever their paths hold:
    ':' and ';' (os.pathsep on Linux and Windows), '=', spaces, non-ASCII letters, a newline."""
    odd = tmp_path / "a=b:c;d e é\nz" / "cubic.py"
    odd.parent.mkdir()
    odd.write_text(cubic.read_text())
    out = bench("train", "--task", str(odd), "--backend", "mxnet", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["params"]["a"][0] == pytest.approx(2, abs=1e-6)
