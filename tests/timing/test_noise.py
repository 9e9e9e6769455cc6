"""A run that knows its own noise: a worker reads the machine beside its rounds, and a process that timed
a case beside a busy neighbour is told apart from a quiet one, replaced, or marked."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from bench.campaign import timing
from bench.core import noise_model
from bench.core.cases import Case, Settings
from bench.core.records import ProcessTiming
from bench.host import envs, machine, procs
from bench.report import timings
from conftest import stand_in_workers

MEASURE = "import json; from bench.worker.timer import measure; print(json.dumps(measure('linear', 'numpy', round_time=1.0).machine))"  # noqa: E501
SPIN = "while True: pass"


def reading(neighbour: bool) -> dict[str, float]:
    """linear on numpy timed by a worker pinned to the last CPU, with or without a busy loop pinned there too."""
    env = {**os.environ, **timing.environ(Settings(), {}, envs.ROOT)}
    spinner = procs.start([sys.executable, "-c", SPIN], env=env) if neighbour else None
    worker = procs.start([sys.executable, "-c", MEASURE], cwd=envs.ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = worker.communicate(timeout=120)
    finally:
        procs.stop(worker)
        if spinner is not None:
            procs.stop(spinner)
    assert worker.returncode == 0
    return json.loads(out)


@pytest.mark.quiet
def test_a_busy_neighbour_on_the_workers_cpu_is_seen():
    """The CPU share halves beside a busy loop on the same CPU, and that process is judged noisy against
    the quiet one's levels. (The quiet one is as quiet as the machine running the tests is.)"""
    quiet, busy = reading(False), reading(True)
    assert busy["cpu_share"] < 0.8 * quiet["cpu_share"] and busy["cpu_share"] < noise_model.CPU_SHARE, (quiet, busy)
    case = Case("speed", "linear", "numpy", "float64")
    levels = {(case, k): quiet[k] for k in noise_model.KERNELS}
    timed = ProcessTiming("eager", "cpu", 10, [1e-5], busy, 0.0, 1.0, 0, [])
    assert noise_model.noisy(timed, levels, case)


def fake_workers(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[float]]) -> None:
    """Stand-in workers: each answer's calibration kernel takes the next of its task's figures (1.0 is
    quiet, 3.0 busy, with half the CPU; 3.0 once they run out), and its step as long, in units of 10 µs."""
    pids, cold = itertools.count(1), set()

    def answer(kw: dict[str, Any]) -> dict[str, Any]:
        slow = answers[kw["task"]].pop(0) if answers[kw["task"]] else 3.0
        m = {"calibration_cpu_s": slow, "calibration_memory_s": 1.0, "cpu_share": 1.5 / (slow + 0.5), "steal": 0.0}
        first = {} if kw["task"] in cold else {"first_call_s": 0.5, "compile_s": 0.25}  # its first process's
        cold.add(kw["task"])
        return {"step_s": [slow * 1e-5], "machine": m, "pid": next(pids)} | first

    stand_in_workers(monkeypatch, answer)


def test_a_noisy_process_is_replaced_by_a_quiet_one_and_what_stays_noisy_is_marked(monkeypatch):
    """The first process of linear reports a busy machine; the campaign times it once more and keeps
    the quiet figure in its place, with the first process's first call and compile time (the later ones
    compile from the run's caches). plane's every process is busy: it stays marked. (Three of twelve
    processes noisy: few enough to time again.)"""
    answers = {"linear": [3.0, 1.0, 1.0], "plane": [3.0, 3.0, 3.0]}
    answers |= {t: [1.0, 1.0] for t in ("quadratic", "mlp", "logistic", "digits")}
    fake_workers(monkeypatch, answers)
    cases = [Case("speed", t, "numpy", "float64") for t in answers]
    c = timing.Campaign(cases, Settings(repeats=2), {}, None)
    c.timings()
    c.remeasure_noisy()
    linear, plane = (noise_model.merged(c.found[case]) for case in cases[:2])
    assert linear["samples_s"] == pytest.approx([1e-5, 1e-5]) and linear["remeasured"] == 1
    assert linear["noisy"] == [False, False] and plane["noisy"] == [True, True]
    assert (linear["first_call_s"], linear["compile_s"]) == (0.5, 0.25)


def test_remeasuring_takes_the_noisiest_cases_that_fit_in_its_seconds(monkeypatch):
    """linear's second process is noisier than plane's, and the seconds allowed fit one case's timing
    again (four visits of a second each: 4 s), not two: linear is timed again, plane stays marked."""
    answers = {"linear": [1.0, 3.0, 1.0], "plane": [1.0, 2.0, 1.0]}
    answers |= {t: [1.0, 1.0] for t in ("quadratic", "mlp", "logistic", "digits")}
    fake_workers(monkeypatch, answers)
    cases = [Case("speed", t, "numpy", "float64") for t in answers]
    c = timing.Campaign(cases, Settings(repeats=2, remeasure_s=6.0), {}, None)
    c.timings()
    c.remeasure_noisy()
    linear, plane = (noise_model.merged(c.found[case]) for case in cases[:2])
    assert linear["remeasured"] == 1 and linear["noisy"] == [False, False]
    assert plane["remeasured"] == 0 and plane["noisy"] == [False, True]


def test_the_cases_timed_again_are_chosen_noisiest_first_within_the_seconds():
    """A backend's first case pays for its process's start-up, its later ones do not; a case that does
    not fit is passed over for a cheaper, quieter one that does."""
    a, b, c, d = (Case("speed", t, "numpy", "float64") for t in ("a", "b", "c", "d"))
    e = Case("speed", "a", "torch", "float64")
    noise = {a: 5.0, b: 4.0, c: 3.0, d: 2.0, e: 1.0}
    cost = {a: 10.0, b: 15.0, c: 5.0, d: 2.0, e: 1.0}.__getitem__
    startup = {"numpy": 2.0, "torch": 3.0}
    assert noise_model.within(noise, cost, startup, 30.0) == {a, b, d}  # 12 + 15, then c passed over, 2
    assert noise_model.within(noise, cost, startup, 20.0) == {a, c, d}  # 12, then b passed over, 5, 2
    assert noise_model.within(noise, cost, startup, 24.0) == {a, c, d, e}  # 19, then e with torch's start-up: 4 more
    assert noise_model.within(noise, cost, startup, 0.0) == set()


def test_a_machine_busy_throughout_is_marked_not_timed_again(monkeypatch):
    """More than a quarter of the processes noisy: timing again would meet the same machine."""
    answers = {"linear": [1.0, 3.0], "plane": [3.0, 3.0]}
    fake_workers(monkeypatch, answers)
    cases = [Case("speed", t, "numpy", "float64") for t in answers]
    c = timing.Campaign(cases, Settings(repeats=2), {}, None)
    c.timings()
    c.remeasure_noisy()
    assert [noise_model.merged(c.found[case])["noisy"] for case in cases] == [[False, True], [True, True]]
    assert c.seconds["remeasuring: start-up"] == 0


def test_the_sweep_cases_that_stream_memory_carry_the_larger_drift():
    """A case's arrays against a core's level-2 cache, counted here and not by noise_model.drift: x of N
    points in the dtype, more than the cache streams from memory."""
    l2 = machine.l2_bytes()
    for n in (100, 10_000, 1_000_000, 10_000_000):
        for dtype, size in (("float64", 8), ("float32", 4)):
            c = Case("scaling", "quadratic", "numpy", dtype, n)
            assert noise_model.drift(c) == (noise_model.DRIFT_STREAMING if n * size > l2 else noise_model.DRIFT)
    assert noise_model.drift(Case("speed", "digits", "torch", "float64")) == noise_model.DRIFT
    assert noise_model.DRIFT < noise_model.DRIFT_STREAMING


def test_like_cases_get_one_spread_and_their_drift_in_the_interval():
    records = [{"samples_s": [1.0, 1.01, 0.99]}, {"samples_s": [2.0, 2.02, 1.98]}]
    noise_model.with_intervals(records, drift=0.03)
    for r in records:
        assert r["sigma_log"] == records[0]["sigma_log"] and r["drift_log"] == 0.03
        assert r["ci_high_s"] / r["median_s"] > math.exp(1.959 * math.sqrt(2) * 0.03)  # the drift alone is wider


def test_the_noise_line_says_how_the_machine_moved_from_round_to_round():
    """Three cases whose second round of processes ran 2 % slower than the first and the third 4 %, and
    one whose processes were replaced (out of round order, left out), however far it moved."""

    quiet = {**dict.fromkeys(noise_model.KERNELS, 1.0), "cpu_share": 1.0, "steal": 0.0}
    row = {"kind": "speed", "backend": "numpy", "sigma_log": 0.01, "machine": [quiet] * 3}
    rows = [row | {"task": t, "samples_s": [k, 1.02 * k, 1.04 * k]} for t, k in (("a", 1e-5), ("b", 2e-5), ("c", 3e-3))]
    rows.append(row | {"task": "d", "samples_s": [1e-5, 2e-5, 3e-5], "remeasured": 1})
    n = timings.noise(rows)
    assert n["by_round"] == pytest.approx([0.02, 0.04])
    assert "the median case against its first round: +2.0 %, +4.0 %." in timings.noise_line(n)


def third_process_slower(by: float) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Stand-in answers whose every case's third process runs ``by`` times its first two's step."""
    seen: dict[str, int] = {}

    def answer(kw: dict[str, Any]) -> dict[str, Any]:
        seen[kw["task"]] = seen.get(kw["task"], 0) + 1
        return {"step_s": [1e-5 * (by if seen[kw["task"]] == 3 else 1.0)], "pid": seen[kw["task"]]}

    return answer


def test_a_machine_that_moved_while_the_run_timed_widens_the_run_s_intervals(monkeypatch):
    """Every case's third process 5 % slower than its first two: the run's drift between runs is
    noise_model.DRIFT and that 5 % together, and with three steady rounds DRIFT alone."""
    for by, moved in ((1.05, 0.05), (1.0, 0.0)):
        stand_in_workers(monkeypatch, third_process_slower(by))
        cases = [Case("speed", t, "numpy", "float64") for t in ("linear", "plane", "quadratic")]
        c = timing.Campaign(cases, Settings(repeats=3), {}, None)
        c.timings()
        for r in c.results().values():
            assert r["drift_log"] == pytest.approx(math.hypot(noise_model.DRIFT, moved)), (by, r)
