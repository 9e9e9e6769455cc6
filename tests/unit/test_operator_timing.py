"""The operators' timing without timing anything: the cases --operators asks for and how each is named and called,
and the report's table, HVP strategy, dense Hessian, width tables, CSV and plot from made-up rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.campaign.timing import measure_call, twins
from bench.commands import diff
from bench.core import noise_model
from bench.core.cases import OPERATOR, WIDTH_ROUNDS, WIDTH_UNIT, Case, Settings, rounds_of, rows_of
from bench.core.options import OPERATOR_MODES, OPERATOR_TASKS, WIDTH_OPERATORS, Options, asked_cases, default_tasks
from bench.report import operators, timings
from tasks.operators import OPERATORS


def options(**kw: Any) -> Options:
    given = {"out": Path("/tmp/unused"), "tasks": ["linear", "logistic"], "backends": ["numpy", "jax-jit", "jax-scan"],
             "dtypes": ["float64"], "quick": False, "widths": [], "sizes": [], "operators": True} | kw  # fmt: skip
    return Options(threads=1, device="cpu", timeout=600.0, **given)


def test_an_operator_case_is_named_by_its_operator_in_one_id():
    assert Case(OPERATOR, "logistic", "jax-jit", "float64", operator="hvp-fwd-rev").params == \
        "logistic-hvp-fwd-rev-jax-jit-float64"  # fmt: skip
    assert Case(OPERATOR, "wide-mlp", "torch", "float64", 256, "jvp").params == "wide-mlp-256-jvp-torch-float64"
    assert Case("speed", "logistic", "torch", "float64").params == "logistic-torch-float64"  # unchanged


def test_operators_asks_every_operator_of_the_operator_tasks_run_on_the_modes_that_differ():
    cases = [c for c in asked_cases(options(widths=[16, 64])) if c.kind == OPERATOR]
    on_task = [c for c in cases if c.n is None]
    assert {c.task for c in on_task} == {"logistic"}  # linear is no operator task; mlp and digits not asked
    assert [c.operator for c in on_task if c.backend == "numpy"] == list(OPERATORS)
    assert {c.backend for c in cases} == {"numpy", "jax-jit"}  # jax-scan's operators are jax-jit's
    swept = [(c.n, c.operator) for c in cases if c.n is not None and c.backend == "numpy"]
    assert swept == [(n, op) for n in (16, 64) for op in WIDTH_OPERATORS]
    assert not [c for c in asked_cases(options(operators=False)) if c.kind == OPERATOR]
    assert "--operators" in options().command() and "--operators" not in options(operators=False).command()
    assert set(OPERATOR_TASKS) == {"logistic", "mlp", "digits"} and "jax-scan" not in OPERATOR_MODES
    quick = options(quick=True, tasks=default_tasks(True))  # digits: logistic's operators instead
    assert {c.task for c in asked_cases(quick) if c.kind == OPERATOR} == {"logistic"}
    assert {c.task for c in asked_cases(options(quick=True, tasks=["mlp", "digits"])) if c.kind == OPERATOR} == {
        "mlp", "digits"}  # fmt: skip
    assert not twins(asked_cases(options())), "an operator case is its own, never the task case's"


def test_an_operator_case_is_timed_as_a_width_cell_with_the_loss_beside_it():
    settings = Settings()
    task = measure_call(Case("speed", "logistic", "numpy", "float64"), settings)
    c = Case(OPERATOR, "logistic", "numpy", "float64", operator="hessian")
    call = measure_call(c, settings, size=7, check=True)
    assert call["operator"] == "hessian" and call["size"] == 7 and call["check"] and call["objective"]
    assert call["round_time"] == task["round_time"] * WIDTH_ROUNDS and call["unit_time"] == WIDTH_UNIT
    assert not measure_call(Case(OPERATOR, "logistic", "numpy", "float64", operator="loss"), settings)["objective"]
    assert rounds_of(c, 3) == [0, 2] and task["operator"] is None and not task["check"]
    row = rows_of([c], {})[0]
    assert (row["kind"], row["operator"], row["parameters"], "n" in row) == (OPERATOR, "hessian", 3, False)
    assert rows_of([Case(OPERATOR, "wide-mlp", "numpy", "float64", 16, "jvp")], {})[0]["n"] == 16
    assert noise_model.pool(c) == (OPERATOR, "numpy") != noise_model.pool(Case("speed", "logistic", "numpy", "x"))


def row(backend: str, operator: str, samples: list[float], losses: list[float] | None = None,
        mode: str = "eager", task: str = "logistic", **extra: Any) -> dict[str, Any]:  # fmt: skip
    """A timed operator row: its two processes' figures, and a rerun interval of ±5 % about the median."""
    median = sum(samples) / len(samples)
    r = {"kind": OPERATOR, "task": task, "backend": backend, "dtype": "float64", "operator": operator, "mode": mode,
         "parameters": 3, "samples_s": samples, "median_s": median, "ci_low_s": 0.95 * median,
         "ci_high_s": 1.05 * median, "first_call_s": 0.5, "verdict": "agrees", "rel_error": 0.0, "tol": 1e-9,
         "reference": "by hand"}  # fmt: skip
    return r | ({"objective_samples_s": losses} if losses else {}) | extra


ROWS = [
    row("numpy", "loss", [10e-6, 10e-6]),
    row("numpy", "hvp-fwd-rev", [30e-6, 30e-6], [10e-6, 10e-6]),
    row("numpy", "hvp-rev-rev", [30e-6, 30e-6], [10e-6, 10e-6]),
    row("jax-jit", "vjp", [20e-6, 24e-6], [5e-6, 6e-6], mode="compiled step"),
    row("jax-jit", "hvp-fwd-rev", [40e-6, 40e-6], [5e-6, 5e-6], mode="compiled step"),
    row("jax-jit", "hvp-rev-rev", [60e-6, 60e-6], [5e-6, 5e-6], mode="compiled step"),
    row("jax-jit", "hessian", [240e-6, 240e-6], [5e-6, 5e-6], mode="compiled step"),
    row("jax", "hvp-fwd-rev", [1.00e-3, 1.00e-3], [1e-4, 1e-4]),
    row("jax", "hvp-rev-rev", [1.02e-3, 1.02e-3], [1e-4, 1e-4]),
    row("jax", "hessian", [1e-3, 1e-3], [1e-4, 1e-4], verdict="differs", rel_error=3e-5),
    {"kind": OPERATOR, "task": "logistic", "backend": "mxnet", "dtype": "float64", "operator": "jvp",
     "parameters": 3, "error": "mxnet has no jvp: ...", "cannot": True},
    {"kind": OPERATOR, "task": "logistic", "backend": "mxnet", "dtype": "float64", "operator": "vjp",
     "parameters": 3, "error": "crashed"},
    *(row(b, op, [n * 1e-5, n * 1e-5], [n * 2e-6, n * 2e-6], task="wide-mlp", n=n, parameters=n)
      for n in (16, 256) for b in ("numpy", "jax") for op in ("jvp", "hvp-rev-rev")),
]  # fmt: skip


def test_times_loss_is_the_median_of_each_process_s_ratio_to_the_loss_beside_it():
    assert operators.per_loss(ROWS[3])[0] == pytest.approx((20 / 5 + 24 / 6) / 2)
    assert operators.per_loss(ROWS[0]) == (1.0, 1.0, 1.0) and operators.per_loss(ROWS[10]) is None
    assert operators.per_loss(row("torch", "jvp", [1e-3])) is None  # the loss not timed beside it


def test_a_cell_is_time_and_times_loss_or_says_why_there_is_none():
    assert operators.cell(ROWS[4]) == "40.0 µs (38.0–42.0); 8.00× loss"
    assert operators.cell(ROWS[0]) == "10.0 µs (9.50–10.5)"  # the loss: no × loss of its own
    assert operators.cell(ROWS[9]).endswith("; 10.0× loss DIFFERS (3.0e-5 from the reference)")
    assert (operators.cell(ROWS[10]), operators.cell(ROWS[11]), operators.cell(None)) == ("lacks", "failed", "—")


def test_the_task_table_has_a_row_per_mode_eager_first_and_a_column_per_operator_in_order():
    header, body = operators.task_table(ROWS, "logistic", "float64", ["numpy", "jax-jit", "jax", "mxnet"])
    assert header == ["backend", "mode", "loss", "jvp", "vjp", "hvp-fwd-rev", "hvp-rev-rev", "hessian"]
    assert [r[0] for r in body] == ["numpy", "jax", "mxnet", "jax-jit"]  # compiled step after every eager mode
    mxnet = body[2]
    assert mxnet[3:5] == ["lacks", "failed"] and mxnet[2] == "—"


def test_the_hvp_strategy_names_the_winner_or_says_within_noise_and_the_hessian_is_held_to_n_hvps():
    lines = operators.strategy_lines(ROWS, "logistic", "float64", ["numpy", "jax", "jax-jit"])
    assert [line.split(":")[0] for line in lines] == ["- numpy", "- jax", "- jax-jit"]  # by framework, then kind
    numpy, jax, jit = lines
    assert "no HVP of its own" in numpy
    assert "within noise" in jax  # 1.00 ms against 1.02 ms: their ±5 % intervals overlap
    assert "**forward over reverse** wins, 1.50× (1.50–1.50) faster than reverse over reverse" in jit
    assert "the Hessian 240 µs, 2.00× (2.00–2.00) n × its faster HVP (n = 3)" in jit  # 240 µs over 3 × 40 µs


def test_results_json_keeps_the_values_agreement_and_each_mode_s_faster_hvp():
    (found,) = operators.summary(ROWS).values()
    assert (found["values_checked"], found["values_agree"]) == (18, 17)
    assert found["differ"] == ["logistic-hessian-jax-float64"]
    assert found["faster_hvp"] == {"logistic": {"jax-jit": "hvp-fwd-rev", "jax": "within noise"}}  # numpy: no HVP


def test_the_width_tables_give_each_operator_by_width():
    header, body = operators.width_table(ROWS, "hvp-rev-rev", "float64", ["numpy", "jax"])
    assert header == ["backend", "mode", "n = 16", "n = 256"]
    assert body[0][0] == "numpy" and body[0][2] == "160 µs (152–168); 5.00× loss"


def test_the_section_tells_each_task_s_table_the_strategies_the_widths_and_the_values():
    (text,) = operators.sections(ROWS, ["float64", "float32"], ["numpy", "jax", "jax-jit", "mxnet"])
    assert text.startswith("## Operators (float64)")
    for part in (
        "### logistic (float64, θ of 3 entries)",
        "**Which HVP, and the dense Hessian against n HVPs**",
        "### jvp by model size (wide-mlp, hidden width n, float64)",
        "### hvp-rev-rev by model size",
        "**Values**: 17 of 18 first calls agree with the reference; differ: logistic hessian jax (3.0e-5).",
    ):
        assert part in text, part  # fmt: skip
    assert operators.sections([r for r in ROWS if r["kind"] != OPERATOR], ["float64"], []) == []


def test_a_run_with_operators_writes_its_section_csv_and_plot(tmp_path):
    o = options(out=tmp_path, tasks=[], backends=["numpy", "jax", "jax-jit", "mxnet"])
    env = {"cpu": "a CPU", "cores": 2, "versions": {"numpy": "2.4.6"}, "commit": "0" * 40}
    summary = timings.write(tmp_path / "out", o, ROWS, {"worker start-up": 1.0}, {}, 60.0, env, {})
    out = tmp_path / "out"
    readme = (out / "README.md").read_text()
    assert "## Operators (float64)" in readme and "not drawn" not in summary
    assert "- **mxnet** has no jvp: " in readme.split("## What a backend cannot run")[1]
    assert "- logistic vjp mxnet float64: crashed" in readme.split("## Failed cases")[1]
    lines = (out / "operators.csv").read_text().splitlines()
    assert lines[0].startswith("task,n,operator,backend,dtype,mode,parameters,") and len(lines) == 1 + len(ROWS)
    jit_vjp = next(line for line in lines if line.startswith("logistic,,vjp,jax-jit,"))
    assert ",4.0,4.0,4.0," in jit_vjp  # × loss and its interval: 20/5 and 24/6
    assert (out / "plots" / "operators_float64.png").stat().st_size > 10_000
    written = json.loads((out / "results.json").read_text())["cases"]
    assert [(c["kind"], c["operator"]) for c in written[:2]] == [(OPERATOR, "loss"), (OPERATOR, "hvp-fwd-rev")]


def test_diff_compares_operator_rows_and_runs_with_and_without_them(tmp_path):
    def write(name: str, rows: list[dict[str, Any]]) -> str:
        (tmp_path / name).write_text(json.dumps({"cases": rows, "environment": {}}))
        return str(tmp_path / name)

    speed = {"kind": "speed", "task": "logistic", "backend": "numpy", "dtype": "float64", "samples_s": [1e-5, 1e-5],
             "median_s": 1e-5, "sigma_log": 0.01}  # fmt: skip
    with_ops, without = write("a.json", [speed, *ROWS]), write("b.json", [speed])
    out, err, status = diff.diff(with_ops, with_ops)
    assert status == 0 and not err
    text = "\n".join(out)
    assert "| logistic hvp-fwd-rev jax-jit float64 " in text and "| wide-mlp width 256 jvp numpy float64 " in text
    out, _, status = diff.diff(without, with_ops)
    assert status == 0 and "- logistic hessian jax-jit float64" in "\n".join(out).split("## Only in NEW")[1]


def test_the_tasks_trained_by_newtons_method_are_timed_with_the_operators():
    import tasks
    from bench.core.options import SECOND_ORDER_TASKS
    from tasks import optimizers

    newton = {t for t in tasks.TASKS if optimizers.parse(tasks.get(t).optimizer).name == "newton"}
    assert set(SECOND_ORDER_TASKS) == newton and newton
    assert not newton & set(default_tasks(False)) and newton <= set(default_tasks(False, operators=True))
    command = options(tasks=default_tasks(False, operators=True)).command()
    assert command.startswith("python -m bench run --backends") and "--tasks" not in command
