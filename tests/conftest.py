"""The suite's runs, each made once per session. Runs of backends in another environment start in
that environment's worker as soon as the session knows which tests it will run, and go on while
this process trains its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import backends
import tasks
from bench.campaign.remote import Remote, call_many, train
from bench.core import agreement
from bench.core.cases import DTYPES
from bench.core.errors import BenchError, Unsupported
from bench.core.records import ProcessTiming, TrainingRun
from bench.host import envs

# Training parabola-sgd's 80,000 single-sample steps costs eager jax about 3.5 min a dtype, so by default the
# suite trains it for its first 2 epochs (1,600 single-sample steps) on every backend but numpy, whose full run
# checks the end point; its halving learning rate is parabola's, which every backend trains through its whole
# schedule. `pytest --full` trains every backend on every full schedule, as `python -m bench compare` does.
SHORT_EPOCHS = {"parabola-sgd": 2}
CHECKPOINTS = {"linear": tuple(range(1, 20, 2))}  # the epochs the published log shows
# The session's runs (``Lab``) are made by worker processes started before its first test, a worker per environment
# and framework (numpy's, the reference's, in this process): they train while this process runs the command-line
# tests, and the equivalence tests then read what they answered. Every case's operator values
# (tests/equivalence/test_operators.py) are computed by a worker per environment likewise.
# The contract and evaluate tests call the slowest of this environment's backends (eager jax and TensorFlow dispatch
# every operation; torch.compile compiles every case) in a worker each, beside this process, and the others in it.
BACKGROUND = {"jax", "tensorflow", "torch-compile", "torch-nn-compile"}

# MXNet's SGD kernels take the learning rate as a C float: quadratic's 0.001 becomes 0.0010000000475,
# which moves w by 5.4e-9, past the published 8th decimal. The trajectory test shows that this is all
# that differs (mxnet-gluon equals numpy run with the same float32 learning rate to 1e-9).
LR_IN_FLOAT32 = pytest.mark.xfail(strict=True, reason="MXNet's SGD takes the learning rate as float32")


def marked(case: tuple[str, str, str]) -> Any:
    """A case, with the expected failure it has."""
    if case == ("quadratic", "mxnet-gluon", "float64"):
        return pytest.param(case, marks=LR_IN_FLOAT32)
    return case


CASES = [(t, b, d) for t in tasks.TASKS for b in backends.BACKENDS for d in DTYPES]
Key = tuple[str, str, str, str]  # (call, task, backend, dtype): call train, gradient or operators; or
# ("optimizer", name in OPTIMIZERS, backend, dtype)

# Every optimiser and setting, on every backend and dtype: mlp's first epochs trained with each in place
# of the task's own (the tasks mlp-momentum and digits-adamw train theirs through their whole schedules).
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd-momentum": {"name": "sgd", "momentum": 0.9},
    "sgd-decay": {"name": "sgd", "weight_decay": 0.01},
    "sgd-nesterov": {"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.001},
    "adam": {"name": "adam"},
    "adam-l2": {"name": "adam", "b1": 0.8, "b2": 0.99, "eps": 1e-6, "weight_decay": 0.01},
    "adamw": {"name": "adamw", "weight_decay": 0.01},
}
OPTIMIZER_TASK, OPTIMIZER_EPOCHS = "mlp", 2  # 16 steps: Adam's bias corrections still far from 1
OPTIMIZER_CASES = [(o, b, d) for o in OPTIMIZERS for b in backends.BACKENDS for d in DTYPES]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--full", action="store_true", help="train every task's full schedule on every backend")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "quiet: times real work, so runs last, once the session's workers have ended")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The cases trained by workers after this process's own (which it does meanwhile), and the tests that
    time real work after those, when every worker has answered and the machine is the suite's alone (timing
    tests are the plugin's: bench.commands.pytest_plugin)."""
    # the cases trained by workers after this process's own (which it does meanwhile), and the tests that
    # time real work after those, when every worker has answered and the machine is the suite's alone
    items[:] = sorted(items, key=lambda item: (item.get_closest_marker("quiet") is not None,
                                              in_worker(backend_of(item))))  # fmt: skip


def backend_of(item: pytest.Item) -> str | None:
    params = item.callspec.params if hasattr(item, "callspec") else {}
    case = params.get("case") or params.get("full_case") or params.get("optimizer_case")
    return (case or (None, params.get("backend")))[1]


def worker_of(backend: str) -> tuple[str, str] | None:
    """The worker that makes a backend's runs for the session (``Lab``): its environment's and framework's; None
    for numpy, whose runs this process makes (the references among them)."""
    spec = backends.BACKENDS[backend]
    return None if backend == "numpy" else (spec.env, spec.framework)


def in_worker(backend: str | None) -> bool:
    """Whether the suite trains this backend in a worker process rather than in this one."""
    spec = backends.BACKENDS.get(backend or "")
    return spec is not None and (backend in BACKGROUND or spec.env != envs.current())


def epochs(task: str, backend: str, full: bool) -> int | None:
    """How many epochs the suite trains: None for the task's own number."""
    return None if full or backend == "numpy" else SHORT_EPOCHS.get(task)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    full = metafunc.config.getoption("--full")
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", CASES, ids="-".join)
    if "full_case" in metafunc.fixturenames:  # cases whose run is the task's full schedule
        metafunc.parametrize("full_case", [marked(c) for c in CASES if epochs(*c[:2], full) is None], ids="-".join)
    if "optimizer_case" in metafunc.fixturenames:
        metafunc.parametrize("optimizer_case", OPTIMIZER_CASES, ids="-".join)


class Lab:
    """Runs and gradients by (task, backend, dtype), made on first use and kept."""

    def __init__(self, full: bool) -> None:
        self.full = full
        self.done: dict[Any, Any] = {}
        self.waiting: dict[str, tuple[Remote, list[Key]]] = {}  # group -> its worker and keys

    def call(self, key: Key) -> tuple[str, dict[str, Any]]:
        fn, task, backend, dtype = key
        if fn == "optimizer":  # task names one of OPTIMIZERS
            return "train", {"task": OPTIMIZER_TASK, "backend": backend, "dtype": dtype, "epochs": OPTIMIZER_EPOCHS,
                             "optimizer": OPTIMIZERS[task]}  # fmt: skip
        kwargs: dict[str, Any] = {"task": task, "backend": backend, "dtype": dtype}
        if fn == "train":
            kwargs |= {"epochs": epochs(task, backend, self.full), "checkpoints": CHECKPOINTS.get(task, ())}
        return fn, kwargs

    def start(self, cases: set[tuple[str, ...]], optimizer_cases: set[tuple[str, ...]] = frozenset(),
              operator_cases: set[tuple[str, ...]] = frozenset()) -> None:  # fmt: skip
        """Send the calls for these cases to their workers (``worker_of``: every backend's but numpy's), and every
        operator case's values to a worker per environment."""
        groups: dict[tuple[str, str], list[Key]] = {}  # (env, framework or "operators") -> keys
        keys = [(fn, *c) for c in sorted(cases) for fn in ("train", "gradient")]
        keys += [("optimizer", *c) for c in sorted(optimizer_cases)]
        for fn, task, backend, dtype in keys:
            where = worker_of(backend)
            if where is not None:
                groups.setdefault(where, []).append((fn, task, backend, dtype))
        for task, backend, dtype in sorted(operator_cases):
            groups.setdefault((backends.BACKENDS[backend].env, "operators"), []).append(("operators", task, backend,
                                                                                        dtype))  # fmt: skip
        for (env, which), keys in groups.items():
            self.waiting[f"{env} {which}"] = Remote(env, [self.call(k) for k in keys]), keys

    def get(self, key: Key) -> Any:
        if key not in self.done:
            group = next((g for g, (_, keys) in self.waiting.items() if key in keys), None)
            if group is None:
                self.done[key] = call_many([self.call(key)])[0]
            else:
                remote, keys = self.waiting.pop(group)
                self.done.update(zip(keys, remote.results(), strict=True))
        if isinstance(self.done[key], Unsupported):  # the backend's class says it cannot, and why (Backend.lacks)
            pytest.skip(str(self.done[key]))
        if isinstance(self.done[key], BenchError):
            raise self.done[key]
        return self.done[key]

    def run(self, task: str, backend: str, dtype: str) -> TrainingRun:
        return self.get(("train", task, backend, dtype))

    def gradient(self, task: str, backend: str, dtype: str) -> dict[str, list[float]]:
        return self.get(("gradient", task, backend, dtype))

    def optimizer_run(self, name: str, backend: str, dtype: str) -> TrainingRun:
        """OPTIMIZER_TASK's first OPTIMIZER_EPOCHS trained with OPTIMIZERS[name]."""
        return self.get(("optimizer", name, backend, dtype))

    def reference(self, run: TrainingRun, formula: str | None = None) -> TrainingRun:
        """The numpy run with the same schedule, optimiser and learning-rate precision as ``run``, following
        the same formula (``run.formula``: its framework's, where that differs; ``formula`` names another)."""
        call = agreement.reference(run, len(run.losses) // tasks.get(run.task).steps_per_epoch, formula)
        key = ("reference", json.dumps(call, sort_keys=True))
        if key not in self.done:
            self.done[key] = train(**call)
        return self.done[key]


@pytest.fixture(scope="session", autouse=True)
def lab(request: pytest.FixtureRequest) -> Lab:
    """The session's runs, their workers started before its first test (so that they train while it runs the
    command-line tests), for every case a collected test asks for."""
    lab = Lab(request.config.getoption("--full"))
    params = [item.callspec.params for item in request.session.items if hasattr(item, "callspec")]
    lab.start({tuple(p.get("case") or p.get("full_case")) for p in params if "case" in p or "full_case" in p},
              {tuple(p["optimizer_case"]) for p in params if "optimizer_case" in p},
              {tuple(p["operator_case"]) for p in params if "operator_case" in p})  # fmt: skip
    return lab


# -- helpers the command-line tests share -------------------------------------------------------------
def bench(*args: str, cwd: Path = envs.ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True)


def one_line_error(out: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert out.returncode == status, out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for word in words:
        assert word in lines[0], lines[0]


QUIET = {"calibration_cpu_s": 1.0, "calibration_memory_s": 1.0, "cpu_share": 1.0, "steal": 0.0}


def stand_in_workers(monkeypatch: pytest.MonkeyPatch, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Workers that start no process: each case a worker is asked to time is answered by ``answer`` (given
    the first visit's arguments; its later visits answer alike), whose figures go over what every timing
    answer has (a quiet machine, one round of 10 µs, a first call); a figure it gives as None is left out."""
    usual = {"mode": "eager", "device": "cpu", "steps_per_round": 10, "first_call_s": 1e-3, "step_s": [1e-5],
             "objective_s": [1e-5], "machine": QUIET, "setup_s": 0.0, "rounds_s": 1.0, "pid": 0,
             "faults_per_step": 0.0, "steps_timed": 10, "frameworks": []}  # fmt: skip

    def results(self, timeout=None, answered=None):
        first: dict[tuple[Any, ...], dict[str, Any]] = {}  # a case's first visit: the later ones answer alike
        measured = [kw for fn, kw in self.calls if fn == "measure"]
        for kw in measured:
            case = (kw["task"], kw["backend"], kw["dtype"], kw["n"], kw.get("operator"))
            if case not in first:
                first[case] = ProcessTiming.from_json({k: v for k, v in (usual | answer(kw)).items() if v is not None})
        others = {"correctness": {"correctness_s": 0.0}}  # else built ahead, settled (Turns)
        return [first[(kw["task"], kw["backend"], kw["dtype"], kw["n"], kw.get("operator"))] if fn == "measure"
                else others.get(fn, {"setup_s": 0.0}) for fn, kw in self.calls]  # fmt: skip

    def started(self, env, calls, extra=None, more=False):
        self.calls = list(calls)

    monkeypatch.setattr(Remote, "results", results)
    monkeypatch.setattr(Remote, "stop", lambda self: None)
    monkeypatch.setattr(Remote, "__init__", started)
    monkeypatch.setattr(Remote, "wait", lambda self, answers, timeout, answered=None: True)
    monkeypatch.setattr(Remote, "send", lambda self, calls, more=False: self.calls.extend(calls))


CUBIC = """import numpy as np
from tasks import Task


def model(p, x, xp):
    return p["a"] * x**3 + p["b"]


def loss(pred, y, xp):
    return xp.mean((pred - y) ** 2)


def loss_and_grad(p, x, y):
    r = model(p, x, np) - y
    return np.mean(r * r), {{"a": 2 * np.mean(r * x**3, keepdims=True), "b": 2 * np.mean(r, keepdims=True)}}


def make():
    x = np.linspace(-1, 1, 64)
    y, init = 2 * x**3 - 1, {{"a": np.zeros(1), "b": np.zeros(1)}}
    return Task("{name}", "a test", x, y, init, model, loss, loss_and_grad, lr=lambda e: {lr}, epochs={epochs})
"""


def cubic_task(folder: Path, name: str, lr: str = "0.5", epochs: int = 40) -> Path:
    """A user's task file in ``folder``: the README's cubic fit, named ``name``, its learning rate of epoch
    ``e`` the expression ``lr`` (``"0.5 if e < 5 else 1e200"`` diverges at step 7), full-batch."""
    path = folder / f"{name}.py"
    path.write_text(CUBIC.format(name=name, lr=lr, epochs=epochs))
    return path


@pytest.fixture
def user_task(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], str]:
    """Adds a user's task file in this process (``tasks.add``), by its name; the registry and the variable
    that carries it to the workers are as they were after the test."""
    monkeypatch.setattr(tasks, "TASKS", dict(tasks.TASKS))
    monkeypatch.setenv(tasks.USER_TASKS, os.environ.get(tasks.USER_TASKS, ""))
    return lambda path: tasks.add(str(path))


def timed(task: str, backend: str, median: float, **extra: Any) -> dict[str, Any]:
    """A timed case as the report reads it: three processes' figures around ``median``."""
    samples = [median * 0.98, median, median * 1.03]
    mode = backends.BACKENDS[backend].mode
    return {"kind": "speed", "task": task, "backend": backend, "dtype": "float64", "mode": mode, "median_s": median,
            "ci_low_s": median * 0.9, "ci_high_s": median * 1.1, "samples_s": samples,
            "first_call_s": 1e-3, "epochs_trained": 1, "epochs": 1} | extra  # fmt: skip


def assert_gradient_by_central_differences(t: tasks.Task) -> None:
    """A task's hand-derived gradient at its initial parameters is its loss's central differences, entry by entry
    (a step of 1e-6 relative, agreement to 1e-6 relative), and has each parameter's shape."""
    _, hand = t.loss_and_grad(t.init, t.x, t.y)
    for k, v in t.init.items():
        assert np.shape(hand[k]) == v.shape, k
        for i in np.ndindex(v.shape):
            h = 1e-6 * max(1.0, abs(v[i]))
            up, down = {**t.init, k: v.copy()}, {**t.init, k: v.copy()}
            up[k][i] += h
            down[k][i] -= h
            fd = (t.full_loss(up) - t.full_loss(down)) / (2 * h)
            assert abs(fd - hand[k][i]) <= 1e-6 * max(1.0, abs(fd)), (k, i, fd, hand[k][i])
