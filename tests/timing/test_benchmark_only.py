"""``pytest --benchmark-only`` from .venv/ times each backend in its own processes of its own environment, and
reports the isolated figures through pytest-benchmark itself: here every framework's eager mode, both environments'
(the plugin's cases are those of `bench run`, by the same campaign; the --quick run of
tests/command_line/test_run.py holds every backend's processes to their own framework)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

import backends
from bench.host import envs

# the one framework each backend's processes may have loaded: its own (numpy is loaded everywhere)
ISOLATED = {b: {spec.framework} - {"numpy"} for b, spec in backends.BACKENDS.items()}
TIMED = list(dict.fromkeys(spec.framework for spec in backends.BACKENDS.values()))  # the eager modes, named so


def test_each_framework_in_its_own_processes_through_pytest_benchmark(tmp_path):
    assert set(TIMED) <= set(backends.BACKENDS) and len(TIMED) == 6
    out = tmp_path / "timings.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/timing/test_speed.py", "--benchmark-only", "-q",
         "-p", "no:cacheprovider",
         "--bench-quick", f"--bench-backends={','.join(TIMED)}", "--bench-tasks=quadratic", "--bench-dtypes=float64",
         "--bench-sizes=100", "--bench-repeats=2",
         f"--benchmark-json={out}", "--benchmark-group-by=group"],
        cwd=envs.ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    timings = json.loads(out.read_text())["benchmarks"]
    found = {(b["extra_info"]["kind"], b["extra_info"]["backend"]): b for b in timings}
    assert set(found) == {(k, b) for k in ("speed", "scaling") for b in TIMED}
    for (_, backend), b in found.items():
        x = b["extra_info"]
        assert set(x["frameworks"]) == ISOLATED[backend], (backend, x["frameworks"])  # nothing else loaded
        assert b["stats"]["rounds"] == 2 == len(set(x["pids"]))  # a round is one process
        # per step, as measured there (the fed clock adds them up: a last-digit rounding)
        assert b["stats"]["median"] == pytest.approx(statistics.median(x["samples_s"]), rel=1e-12)
    speed_pids = [pid for (kind, _), b in found.items() if kind == "speed" for pid in b["extra_info"]["pids"]]
    assert len(set(speed_pids)) == len(speed_pids) == 2 * len(TIMED)  # a process per backend and round
    assert "quadratic float64" in done.stdout and "mxnet" in done.stdout  # pytest-benchmark's own table
