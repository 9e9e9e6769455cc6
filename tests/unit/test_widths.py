"""The width sweep without timing anything: wide-mlp's count of a step's operations and its gradient at widths
other than its own, the sweep's cases and how each is called, the agreement check a width case's last process
makes, and the report's table, crossover, CSV and plot from made-up rows."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tasks
from bench.campaign.timing import measure_call, twins
from bench.core.cases import WIDTH_FLOPS, WIDTH_ROUNDS, WIDTH_UNIT, Case, Settings, rounds_of, rows_of
from bench.core.options import WIDTH_TASK, WIDTHS, Options, asked_cases, default_tasks
from bench.report import outdir, timings, widths
from conftest import assert_gradient_by_central_differences
from tasks import wide_mlp

BATCH = 256


class Recorded(np.ndarray):
    """An array whose ``dot`` notes the shapes of every matrix-by-matrix product it makes (what a step of
    wide-mlp's hand-derived gradient multiplies), its results recorded arrays too."""

    products: list[tuple[int, int, int]] = []

    def dot(self, other: Any, out: Any = None) -> Any:  # noqa: ARG002 (the gradient never passes out)
        a, b = np.asarray(self), np.asarray(other)
        if a.ndim == 2 and b.ndim == 2 and a.shape[0] > 1 and b.shape[1] > 1:
            Recorded.products.append((a.shape[0], a.shape[1], b.shape[1]))
        return np.dot(a, b).view(Recorded)


@pytest.mark.parametrize("n", [16, 64, 256, 1024])
def test_a_step_s_count_is_the_matrix_products_its_gradient_makes(n):
    """Task.flops against the products loss_and_grad really makes (2·m·k·n each, recorded as it runs), and
    against a closed form written otherwise: 2·B·(3n² + 158n), forward 64n + n² + 10n, backward twice that but
    for the data's own gradient (64n)."""
    t = tasks.get(WIDTH_TASK, n=n)
    Recorded.products = []
    x, y = t.x[:BATCH].view(Recorded), t.y[:BATCH]
    t.loss_and_grad({k: v.view(Recorded) for k, v in t.init.items()}, x, y)
    recorded = sum(2 * m * k * j for m, k, j in Recorded.products)
    assert len(Recorded.products) == 8  # 3 forward, 3 weight gradients, 2 input gradients
    assert t.flops == recorded == 2 * BATCH * (3 * n * n + 158 * n)
    assert t.flops == 3 * 2 * BATCH * (64 * n + n * n + 10 * n) - 2 * BATCH * 64 * n
    if n == 1024:
        assert t.flops >= 10**9  # the sweep's largest step: over a GFLOP


def test_the_gradient_at_another_width_is_the_loss_s_by_central_differences():
    """The equivalence suite checks the default width entry by entry; here a width of 5, at every entry."""
    assert_gradient_by_central_differences(tasks.get(WIDTH_TASK, n=5))


def test_a_width_that_is_no_whole_number_is_refused():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="width"):
            wide_mlp.make(bad)
    assert tasks.problems(tasks.get(WIDTH_TASK)) == []
    wrong = dataclasses.replace(tasks.get(WIDTH_TASK), flops=-1)
    assert tasks.problems(wrong) == ["flops is -1, not a whole number of 1 or more (or None)"]


def options(**kw: Any) -> Options:
    given = {"out": Path("/tmp/unused"), "tasks": [], "backends": ["numpy", "jax-jit"], "dtypes": ["float64"],
             "quick": False} | kw  # fmt: skip
    return Options(threads=1, device="cpu", timeout=600.0, **given)


def test_the_sweep_s_widths_reach_the_cases_the_command_and_the_rows():
    assert options().widths == WIDTHS == [16, 64, 256, 1024] and "--widths" not in options().command()
    assert options(quick=True).widths == [] and options(count=True).widths == []
    assert WIDTH_TASK not in default_tasks(False)  # timed by its sweep in a default run
    o = options(widths=[32, 512])
    cases = [c for c in asked_cases(o) if c.kind == "width"]
    assert [(c.n, c.backend) for c in cases] == [(32, "numpy"), (32, "jax-jit"), (512, "numpy"), (512, "jax-jit")]
    assert "--widths 32,512" in o.command() and "--widths none" in options(widths=[]).command()
    rows = rows_of(cases, {})
    assert [r["flops_per_step"] for r in rows[::2]] == [2 * BATCH * (3 * n * n + 158 * n) for n in (32, 512)]
    assert all(r["error"] == "never measured" and "bytes_per_step" not in r for r in rows)


def test_a_width_case_is_called_for_less_and_in_the_first_and_last_processes():
    settings = Settings()
    task = measure_call(Case("speed", "digits", "numpy", "float64"), settings)
    for n in (16, 1024):
        c = Case("width", WIDTH_TASK, "numpy", "float64", n)
        call = measure_call(c, settings, check=True)
        flops = tasks.get(WIDTH_TASK, n=n).flops
        assert call["steps"] == max(1, min(task["steps"], WIDTH_FLOPS // flops))
        assert call["round_time"] == task["round_time"] * WIDTH_ROUNDS and call["unit_time"] == WIDTH_UNIT
        assert not call["objective"] and not call["handwritten"] and call["check"]
        assert rounds_of(c, 3) == [0, 2] and rounds_of(c, 1) == [0]
    assert measure_call(Case("width", WIDTH_TASK, "numpy", "float64", 1024), settings)["steps"] == 1
    assert not task["check"] and rounds_of(Case("speed", "digits", "numpy", "float64"), 3) == [0, 1, 2]


def test_the_task_s_own_width_is_measured_once_as_its_task_case():
    cases = asked_cases(options(tasks=[WIDTH_TASK], widths=[16, 64]))
    same = twins(cases)
    assert same == {Case("width", WIDTH_TASK, b, "float64", 16): Case("speed", WIDTH_TASK, b, "float64")
                    for b in ("numpy", "jax-jit")}  # fmt: skip


def test_the_agreement_check_holds_a_first_call_against_numpy_and_sees_a_wrong_parameter(monkeypatch):
    from bench.worker import timer, training

    case = (WIDTH_TASK, "numpy", "float64", "cpu", 8)
    unit = timer.Unit(training.build(WIDTH_TASK, "numpy", n=8), 3)
    unit()
    said = timer.agreement(unit, case)
    assert said.steps == 3 and said.max_rel_diff == 0.0 and said.final_loss == unit.losses()[-1]
    right = unit.backend.params()
    monkeypatch.setattr(unit.backend, "params", lambda: {**right, "b3": right["b3"] + 1e-6})
    assert np.abs(right["b3"]).max() < 0.5  # so |a-b| / max(1, |a|+|b|) is |a-b|
    assert timer.agreement(unit, case).max_rel_diff == pytest.approx(1e-6, rel=1e-6)


# -- the report, from made-up rows --------------------------------------------------------------------------------

FLOOR = 50e9  # the compute floor's FLOP/s in these rows
MODES = {"numpy": "eager", "torch": "eager", "jax": "eager", "jax-jit": "compiled loop"}
# seconds per step, by backend and width: jax-jit the fastest at 16 and 256; numpy within 1.2× of it from 256
# (1.15×), torch from 1,024 (1.19× of numpy there), jax never (1.5× at 1,024)
TIMES = {"numpy": {16: 2e-4, 256: 4.6e-3, 1024: 40e-3}, "torch": {16: 5e-4, 256: 6e-3, 1024: 47.6e-3},
         "jax": {16: 9e-3, 256: 14e-3, 1024: 60e-3}, "jax-jit": {16: 1e-4, 256: 4e-3, 1024: 41e-3}}  # fmt: skip


def width_row(backend: str, n: int, **extra: Any) -> dict[str, Any]:
    t = TIMES[backend][n]
    return {"kind": "width", "task": WIDTH_TASK, "backend": backend, "dtype": "float64", "n": n,
            "mode": MODES[backend], "median_s": t, "ci_low_s": 0.95 * t, "ci_high_s": 1.05 * t,
            "samples_s": [t, 1.01 * t], "flops_per_step": 2 * BATCH * (3 * n * n + 158 * n), "final_loss": 0.5,
            "max_rel_diff": 1e-16, "steps_checked": 4} | extra  # fmt: skip


ROWS = [width_row(b, n) for n in (16, 256, 1024) for b in TIMES]
COMPUTE = {"flop_per_s": FLOOR, "kernel": "numpy-matmul n=512", "kernels": {}}
BLAS = "numpy 2.4.6 with OpenBLAS 0.3.31 (SkylakeX kernel: OPENBLAS_CORETYPE unset)"
RUN_FLOOR = {"bytes_per_s": 4e10, "compute": {"by_dtype": {"float64": COMPUTE}, "threads": 1, "blas": BLAS}}


def test_the_crossover_is_where_an_eager_mode_comes_within_1_2_of_the_fastest():
    found = widths.cells(ROWS, "float64", RUN_FLOOR)
    assert [widths.crossover(found, b) for b in ("numpy", "torch", "jax")] == [256, 1024, None]
    said = widths.summary(ROWS, RUN_FLOOR)["float64"]
    assert said["crossover"] == {"numpy": 256, "torch": 1024, "jax": None}  # jax-jit is no eager mode
    assert said["fastest"] == {"16": "jax-jit", "256": "jax-jit", "1024": "numpy"}
    assert said["compute_floor_flop_per_s"] == FLOOR


def test_the_width_table_gives_time_flop_s_and_times_the_compute_floor():
    header, body = widths.table(ROWS, "float64", RUN_FLOOR, list(TIMES))
    assert header == ["backend", "mode", "n = 16", "n = 256", "n = 1,024", "crossover (within 1.2× of the fastest)"]
    by = {line[0]: line for line in body}
    assert [line[0] for line in body] == ["numpy", "jax-jit", "torch", "jax", "**fastest**"]  # by time at 1,024
    flops = 2 * BATCH * (3 * 1024**2 + 158 * 1024)
    gflops, ratio = flops / 40e-3 / 1e9, 40e-3 / (flops / FLOOR)  # 42.3 GFLOP/s; 1.18× the floor's time
    assert by["numpy"][4] == f"40.0 ms (38.0–42.0); {gflops:.1f} GFLOP/s; {ratio:.2f}×" == \
        "40.0 ms (38.0–42.0); 42.3 GFLOP/s; 1.18×"  # fmt: skip
    assert by["numpy"][-1] == "n = 256" and by["torch"][-1] == "n = 1,024"
    assert by["jax"][-1] == "none in the sweep" and by["jax-jit"][-1] == "— (not eager)"
    assert by["**fastest**"][2:5] == ["jax-jit", "jax-jit", "numpy"]
    failed = [r for r in ROWS if not (r["backend"] == "jax" and r["n"] == 16)] + [
        {k: v for k, v in width_row("jax", 16).items() if k not in ("median_s", "ci_low_s", "ci_high_s")} | {
            "error": "boom"}]  # fmt: skip
    assert {line[0]: line for line in widths.table(failed, "float64", RUN_FLOOR, list(TIMES))[1]}["jax"][2] == "failed"
    alone = widths.table(ROWS, "float64", {"compute": {"error": "no numpy"}}, list(TIMES))[1]
    assert alone[0][4] == f"40.0 ms (38.0–42.0); {gflops:.1f} GFLOP/s"  # no floor: no × floor
    said = widths.ComputeFloor.of({"compute": {"error": "no numpy"}}, "float64").line("float64")
    assert said == "Compute floor (float64) not measured: no numpy."


def test_the_agreement_table_marks_a_width_past_the_tolerance():
    rows = [*ROWS[:-1], width_row("jax-jit", 1024, max_rel_diff=3e-6, steps_checked=1)]
    header, body = widths.agreement_table(rows, "float64", list(TIMES))
    by = {line[0]: line for line in body}
    assert header == ["backend", "n = 16", "n = 256", "n = 1,024"]
    assert by["numpy"][1] == "1.0e-16 (4 steps)" and by["jax-jit"][3] == "3.0e-6 DIFFERS (1 step)"


def test_a_run_with_a_width_sweep_writes_its_section_csv_and_plot(tmp_path):
    o = options(out=tmp_path, backends=list(TIMES), widths=[16, 256, 1024])
    env = {"cpu": "a CPU", "cores": 2, "versions": {"numpy": "2.4.6"}, "commit": "0" * 40}
    spent = {"worker start-up": 1.0}
    summary = timings.write(tmp_path / "out", o, ROWS, spent, RUN_FLOOR, 60.0, env, {})
    out = tmp_path / "out"
    readme = (out / "README.md").read_text()
    assert "## The width sweep (float64)" in readme and "**Crossover** (float64): numpy at n = 256; torch at n = " \
        "1,024; jax none in the sweep." in readme and "Compute floor (float64): 50.0 GFLOP/s" in readme  # fmt: skip
    assert json.loads((out / "results.json").read_text())["widths"]["float64"]["crossover"]["numpy"] == 256
    lines = (out / "widths.csv").read_text().splitlines()
    assert lines[0].startswith("n,backend,dtype,mode,") and len(lines) == 1 + len(ROWS)
    numpy_1024 = next(line for line in lines if line.startswith("1024,numpy,"))
    assert f",{2 * BATCH * (3 * 1024**2 + 158 * 1024)}," in numpy_1024
    assert (out / "plots" / "widths.png").stat().st_size > 10_000 and "not drawn" not in summary
    written = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
    assert all(any(fnmatch.fnmatchcase(f, own) for own in outdir.OWN) for f in written), written


def test_a_count_run_s_width_cases_have_their_own_table():
    from bench.report import counts

    rows = [{"kind": "width", "task": WIDTH_TASK, "backend": "numpy", "dtype": "float64", "n": n, "mode": "eager",
             "instructions_per_step": 1e6 * n, "allocations_per_step": 40.0} for n in (16, 1024)]  # fmt: skip
    parts = counts.tables(rows, options(backends=["numpy", "torch"], count=True, widths=[16, 1024]))
    assert parts[0].startswith("### Instructions per step, the allocators apart, wide-mlp by width (float64)")
    assert "| backend | n = 16 | n = 1,024 |" in parts[0]
    assert "| numpy | 16.0 M | 1.02 G |" in parts[0] and "| torch | — | — |" in parts[0]
