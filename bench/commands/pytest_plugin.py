"""The pytest plugin behind ``pytest --benchmark-only``: the ``--bench-*`` options, the ``measured`` fixture
that times every case of the session in isolated processes (bench.campaign.timing), and the machine info
pytest-benchmark records. pyproject.toml loads it (``-p bench.commands.pytest_plugin``).

pytest-benchmark times what runs in its own process; these figures are measured elsewhere, so a timing test
hands each process's figure to pytest-benchmark through a clock that moves only when a duration is fed to it
(tests/timing/test_speed.py). Without ``--benchmark-only`` the timing tests are deselected: plain pytest stays fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import backends
import tasks
from bench.campaign import timing
from bench.campaign.progress import Progress
from bench.core.cases import DTYPES, Case
from bench.core.errors import BenchError
from bench.core.options import JOBS, REPEATS, SIZES, Options
from bench.host import envs
from bench.host.machine import environment

TESTS = {"test_speed": "speed", "test_scaling": "scaling"}  # the timing tests, by the kind of case each times
SPENT = pytest.StashKey[dict[str, float]]()  # where the session's timings spent their time (timing.time_cases)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("autodiff-bench timings (with --benchmark-only)")
    g.addoption("--bench-backends", help="comma-separated backends to time (default: all)")
    g.addoption("--bench-tasks", help="comma-separated tasks to time (default: all)")
    g.addoption("--bench-dtypes", default=",".join(DTYPES))
    g.addoption("--bench-device", default="cpu", choices=["cpu", "cuda"])
    g.addoption("--bench-sizes", default=",".join(map(str, SIZES)), help="quadratic's N to scale over")
    g.addoption("--bench-repeats", type=int, default=REPEATS, help=f"timing processes per backend (default {REPEATS})")
    g.addoption("--bench-threads", type=int, default=1, help="threads per framework, each worker pinned (default 1)")
    g.addoption("--bench-timeout", type=float, default=600.0, help="seconds one timing process may take")
    g.addoption("--bench-jobs", type=int, default=JOBS, help=f"timing workers at a time, each pinned (default {JOBS})")
    g.addoption("--bench-quick", action="store_true", help="a smoke run: tiny slices, few rounds")
    g.addoption("--bench-native-blas", action="store_true",
                help="time the main environment without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE")  # fmt: skip


def options(config: pytest.Config) -> Options:
    """The session's ``--bench-*`` options as a run's options (bench.core.options)."""

    def names(option: str, default: list[str]) -> list[str]:
        value = config.getoption(option)
        return value.split(",") if value else default

    return Options(
        out=Path(envs.ROOT, "results"),  # not written: pytest-benchmark's own options say where its figures go
        tasks=names("--bench-tasks", list(tasks.TASKS)),
        backends=names("--bench-backends", list(backends.BACKENDS)),
        dtypes=names("--bench-dtypes", list(DTYPES)),
        threads=config.getoption("--bench-threads"),
        device=config.getoption("--bench-device"),
        quick=config.getoption("--bench-quick"),
        timeout=config.getoption("--bench-timeout"),
        repeats=config.getoption("--bench-repeats"),
        native_blas=config.getoption("--bench-native-blas"),
        jobs=config.getoption("--bench-jobs"),
        sizes=[int(float(n)) for n in names("--bench-sizes", [])],
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    kind = TESTS.get(metafunc.function.__name__)
    if kind is None:
        return
    o = options(metafunc.config)
    if kind == "speed":
        cases = [(t, b, d) for t in o.tasks for b in o.backends for d in o.dtypes]
        metafunc.parametrize("task, backend, dtype", cases, ids=["-".join(c) for c in cases])
    else:
        cases = [("quadratic", n, b, d) for n in o.sizes for b in o.backends for d in o.dtypes]
        metafunc.parametrize("task, n, backend, dtype", cases, ids=["-".join(map(str, c)) for c in cases])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Timings run only with --benchmark-only, and then only they run."""
    timings = bool(config.getoption("benchmark_only", False))
    keep = [item for item in items if ("benchmark" in getattr(item, "fixturenames", ())) == timings]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


def case_of(item: pytest.Item) -> Case | None:
    """The timing case a test item stands for (None for any other test)."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    kind = TESTS.get(getattr(item, "originalname", ""))
    if kind is None:
        return None
    return Case(kind, params["task"], params["backend"], params["dtype"], params.get("n"))


@pytest.fixture(scope="session")
def measured(request: pytest.FixtureRequest) -> Callable[[Case], dict[str, Any]]:
    """Every timing case of the session, measured at first use in isolated processes (bench.campaign.timing);
    then each case's figures, or its failure raised."""
    settings = options(request.config).settings
    cases = [c for c in map(case_of, request.session.items) if c is not None]
    capture = request.config.pluginmanager.getplugin("capturemanager")
    quiet = capture.global_and_fixture_disabled if capture is not None else contextlib.nullcontext
    bar = Progress(len(cases) * settings.calls + sum(c.kind == "speed" for c in cases), quiet)
    try:
        found = timing.time_cases(cases, settings, bar, request.config.stash.setdefault(SPENT, {}))
    finally:
        bar.close()

    def get(case: Case) -> dict[str, Any]:
        if "error" in found[case]:
            raise BenchError(found[case]["error"])
        return found[case]

    return get


def pytest_report_header(config: pytest.Config) -> str | None:
    if not config.getoption("benchmark_only", False):
        return None
    o = options(config)
    return (f"timing {', '.join(o.backends)} on {o.device}, each in {o.repeats} processes of its own environment, "
            "interleaved; a pytest-benchmark round is one process's fastest round per step")  # fmt: skip


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    spent = config.stash.setdefault(SPENT, {})  # filled by the ``measured`` fixture
    machine_info["autodiff_bench"] = environment(options(config).device) | {"seconds": spent}
