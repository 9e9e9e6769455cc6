"""``bench diff`` at the default settings catches a real slowdown: two campaigns back to back, the second
with one case's step made to do 10 % more work, and nothing else called slower."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tasks
from bench import campaign
from conftest import bench

EXTRA = "AUTODIFF_BENCH_TEST_EXTRA_WORK"
# quadratic at 1,000 points whose step computes the gradient REPEATS times over: 10 of them, or 11 with
# 10 % more work (read from the environment when a worker imports the task)
VICTIM = f'''
import dataclasses, os
from tasks import quadratic

REPEATS = 10 + round(10 * float(os.environ.get("{EXTRA}", "0")))


def loss_and_grad(p, x, y):
    for _ in range(REPEATS):
        out = quadratic.loss_and_grad(p, x, y)
    return out


def make():
    task = quadratic.make(1000)
    return dataclasses.replace(task, name="victim", loss_and_grad=loss_and_grad, expected={{}})
'''
CASES = [("victim", "numpy"), ("linear", "numpy"), ("logistic", "numpy"), ("linear", "torch")]


def timed(folder: Path) -> Path:
    """A campaign at the default settings over CASES, written as a results.json that bench diff reads."""
    cases = [campaign.Case("speed", t, b, "float64") for t, b in CASES]
    found = campaign.run(cases, campaign.Settings())
    rows = [{"kind": c.kind, "task": c.task, "backend": c.backend, "dtype": c.dtype} | found[c] for c in cases]
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"cases": rows}))
    return folder


def test_diff_calls_a_ten_percent_slowdown_slower_and_nothing_else(tmp_path, monkeypatch):
    victim = tmp_path / "victim.py"
    victim.write_text(VICTIM)
    tasks.add(str(victim))
    old = timed(tmp_path / "old")
    monkeypatch.setenv(EXTRA, "0.1")
    new = timed(tmp_path / "new")
    done = bench("diff", str(old), str(new))
    assert done.returncode == 0, done.stderr
    verdicts = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in done.stdout.splitlines()
                if line.startswith("| ") and "float64" in line}  # fmt: skip
    assert verdicts.pop("victim numpy float64") == "slower", done.stdout
    assert set(verdicts.values()) == {"within noise"}, done.stdout
    assert "Power:" in done.stdout


@pytest.fixture(autouse=True)
def forget_the_victim():
    yield
    tasks.TASKS.pop("victim", None)
