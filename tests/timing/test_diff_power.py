"""``bench diff`` at the default settings catches a real slowdown: every case timed twice in one campaign, an old and
a new side next to each other in the same processes, the new side of one case with its step made to do 10 % more
work; then each side written as a results.json of its own, and ``bench diff`` of the two calls that case slower and
nothing else. The two sides share one campaign because runs made one after the other do not share a machine: a
campaign can move against the one before it, in every case alike, by as much as the slowdown looked for. Where the
run's own spread leaves bench diff too little power to call 10 % (the host noisy throughout), the test says so and
skips, after checking that nothing untouched was called changed."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import tasks
from bench.campaign import timing
from bench.core.cases import Case, Settings
from conftest import bench

# A task under another name, its step computing the gradient ``repeats`` times over: once for an untouched
# task; quadratic at 1,000 points 10 times on the old side and 11 on the new, 10 % more work.
TWIN = """
import dataclasses
from tasks import {base}


def loss_and_grad(p, x, y):
    for _ in range({repeats}):
        out = {base}.loss_and_grad(p, x, y)
    return out


def make():
    return dataclasses.replace({base}.make({args}), name="{name}", loss_and_grad=loss_and_grad, expected={{}})
"""
# The chance, as bench diff computes it from the run's own spread, that a 10 % slowdown is called slower:
# below it the machine was too noisy for the test to say anything.
POWER = 80
CASES = [("victim", "numpy"), ("linear", "numpy"), ("logistic", "numpy"), ("linear", "torch")]
SIDES = ("old", "new")


def twins(folder: Path) -> None:
    """Each task of CASES on both sides, registered as ``task.old`` and ``task.new``."""
    for task in {t for t, _ in CASES}:
        for side in SIDES:
            base, args, repeats = ("quadratic", "1000", 10 + (side == "new")) if task == "victim" else (task, "", 1)
            path = folder / f"{task}_{side}.py"
            path.write_text(TWIN.format(base=base, args=args, repeats=repeats, name=f"{task}.{side}"))
            tasks.add(str(path))


def timed(folder: Path) -> dict[str, Path]:
    """One campaign at the default settings over both sides of CASES (each case's two sides one after the
    other in each process, in turn old or new first), each side written as a results.json that bench diff reads."""
    pairs = [[Case("speed", f"{t}.{s}", b, "float64") for s in SIDES[:: 1 - 2 * (i % 2)]]
             for i, (t, b) in enumerate(CASES)]  # fmt: skip
    cases = [c for pair in pairs for c in pair]
    found = timing.time_cases(cases, Settings())
    written = {}
    for side in SIDES:
        rows = [{"kind": c.kind, "task": c.task.removesuffix(f".{side}"), "backend": c.backend, "dtype": c.dtype}
                | found[c] for c in cases if c.task.endswith(f".{side}")]  # fmt: skip
        (folder / side).mkdir()
        (folder / side / "results.json").write_text(json.dumps({"cases": rows}))
        written[side] = folder / side
    return written


@pytest.mark.quiet
def test_diff_calls_a_ten_percent_slowdown_slower_and_nothing_else(tmp_path):
    twins(tmp_path)
    sides = timed(tmp_path)
    done = bench("diff", str(sides["old"]), str(sides["new"]))
    assert done.returncode == 0, done.stderr
    verdicts = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in done.stdout.splitlines()
                if line.startswith("| ") and "float64" in line}  # fmt: skip
    assert len(verdicts) == len(CASES), done.stdout
    victim = verdicts.pop("victim numpy float64")
    assert set(verdicts.values()) == {"within noise"}, done.stdout  # nothing untouched is ever called changed
    power = re.search(r"10 % with probability (\d+)%", done.stdout)
    assert power, done.stdout
    if victim != "slower" and int(power[1]) < POWER:  # the run measured a machine too noisy to tell 10 %
        pytest.skip(f"this run's spread gave a 10 % slowdown a {power[1]} % chance of being called slower")
    assert victim == "slower", done.stdout


@pytest.fixture(autouse=True)
def forget_the_twins(monkeypatch):
    monkeypatch.setenv(tasks.USER_TASKS, os.environ.get(tasks.USER_TASKS, ""))  # tasks.add extends it
    yield
    for task in {t for t, _ in CASES}:
        for side in SIDES:
            tasks.TASKS.pop(f"{task}.{side}", None)
