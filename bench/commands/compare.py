"""``python -m bench compare``: every backend trained through each task's whole schedule, against the numpy
reference, with how far each is from it and whether it reaches the task's stated end."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

import backends
import tasks
from bench.campaign.remote import call_many
from bench.core import agreement
from bench.core.agreement import end_error, end_tol, rel_diffs, run_diff, tol
from bench.core.errors import BenchError, Unsupported
from bench.core.records import TrainingRun
from bench.report.formatting import parameter, scientific
from bench.worker import serve
from tasks import formulas, operators, optimizers


def header(dtype: str) -> tuple[str, ...]:
    """The table's header, which names the dtype."""
    return ("task", "backend", f"final parameters ({dtype})", "final loss", "max rel diff", "stated end", "verdict")


def compare(chosen: list[str], dtype: str, among: Sequence[str] = tuple(backends.BACKENDS)
            ) -> tuple[list[tuple[str, ...]], bool]:  # fmt: skip
    """Every backend (of ``among``) trained through each task's whole schedule, against the numpy reference
    (``agreement.reference``): a row each, and whether every one agrees and reaches its task's stated end."""
    calls = [("train", {"task": t, "backend": b, "dtype": dtype}) for t in chosen for b in among]
    outcomes = call_many(calls)
    refs: dict[str, TrainingRun | BenchError] = {}  # the numpy runs, by their call (agreement.reference)

    def reference(run: TrainingRun, formula: str | None = None) -> TrainingRun | BenchError:
        call = agreement.reference(run, None, formula)  # compare trains every schedule whole
        key = json.dumps(call, sort_keys=True)
        if key not in refs:
            refs[key] = serve.call_here("train", call)
        return refs[key]

    rows, ok = [], True
    for (_, kw), out in zip(calls, outcomes, strict=True):
        if isinstance(out, Unsupported):  # what the backend's class says it cannot do, and why: not a disagreement
            rows.append((kw["task"], kw["backend"], "", "", "", "", f"cannot: {out}"))
            continue
        ref = None if isinstance(out, BenchError) else reference(out)
        if isinstance(out, BenchError) or isinstance(ref, BenchError):
            why = str(out) if isinstance(out, BenchError) else f"the numpy reference failed: {ref}"
            rows.append((kw["task"], kw["backend"], "", "", "", "", why))
            ok = False
            continue
        task, diff = tasks.get(out.task), run_diff(out, ref)
        limit = tol(task, dtype)
        agrees = diff <= limit
        ok &= agrees
        verdict = "agrees" if agrees else "DIFFERS"
        if out.digest != ref.digest:
            verdict = f"task data differ between environments ({out.digest} here, {ref.digest} in numpy's)"
        if out.lr_dtype != "float64":
            verdict += f" (reference with its {out.lr_dtype} learning rate)"
        if out.formula != "reference":
            verdict += " " + parting(out, reference(out, "reference"), limit)
        end = end_error(out, task.expected)
        near = end <= end_tol(task.expected_tol, dtype)
        reached = f"{'yes' if near else 'NO'} ({scientific(end)})" if task.expected else "-"
        if task.metrics is not None and task.metric_floors:
            got = task.metrics({k: np.asarray(v) for k, v in out.params.items()})
            good = all(got[k] >= floor for k, floor in task.metric_floors.items())
            ok &= good
            floors = ", ".join(f"{k} {got[k]:.4g} ≥ {f:g}" for k, f in task.metric_floors.items())
            reached = f"{'yes' if good else 'NO'} ({floors})"
        params = ", ".join(f"{k}={parameter(v)}" for k, v in out.params.items())
        rows.append((out.task, out.backend, params, f"{out.losses[-1]:.6g}", scientific(diff), reached, verdict))
    return rows, ok


def parting(run: TrainingRun, published: TrainingRun | BenchError, limit: float) -> str:
    """Why a run is checked against its framework's formula, and how far that parts from the published
    definition: ``(against Keras's formula: ...; 3.1e-03 from the published definition, past 1e-09 at step 3)``."""
    why = "; ".join(formulas.differences(run.formula, optimizers.parse(run.optimizer)))
    if isinstance(published, BenchError):
        return f"(against {run.formula}'s formula: {why})"
    apart = rel_diffs(run.losses, published.losses)
    past = np.flatnonzero(apart > limit)
    where = f"past {scientific(limit, 1)} at step {past[0] + 1}" if past.size else f"within {scientific(limit, 1)}"
    apart_by = run_diff(run, published)
    return f"(against {run.formula}'s formula: {why}; {scientific(apart_by)} from the published definition, {where})"


def operator_header() -> tuple[str, ...]:
    return ("task", "backend", *operators.OPERATORS)


def compare_operators(chosen: list[str], dtype: str, among: Sequence[str] = tuple(backends.BACKENDS)
                      ) -> tuple[list[tuple[str, ...]], list[str], bool]:  # fmt: skip
    """Every backend's (of ``among``) operators beyond the gradient (``tasks.operators``) at each task's point,
    against the hand-derived references: a row per task and backend, a cell per operator (its relative error,
    ``lacks``, or what failed); then the summary lines (the count agreeing, and what each backend lacks, with why); and
    whether every value a backend has agrees."""
    calls = [("operators", {"task": t, "backend": b, "dtype": dtype}) for t in chosen for b in among]
    rows, lacking, ok = [], {}, True
    agreeing = total = 0
    refs: dict[str, dict[str, operators.Reference]] = {}
    for (_, kw), out in zip(calls, call_many(calls), strict=True):
        t = kw["task"]
        if t not in refs:
            task = tasks.get(t)
            refs[t] = operators.references(task, operators.point(task))
        if isinstance(out, BenchError):
            rows.append((t, kw["backend"], *[str(out)] + [""] * (len(operators.OPERATORS) - 1)))
            ok = False
            continue
        verdicts = operators.judge(out, refs[t], dtype)
        cells = []
        for name in operators.OPERATORS:
            v = verdicts.get(name)
            if v is None:  # a dense operator of a large model (tasks.operators.asked)
                cells.append(f"n > {operators.DENSE_LIMIT:,}")
            elif v.kind == "lacks":
                lacking.setdefault(v.why, []).append(t)
                cells.append("lacks")
            elif v.kind == "fails":
                total += 1
                ok = False
                cells.append(f"FAILS: {v.why}")
            else:
                total += 1
                agreeing += v.kind == "agrees"
                ok &= v.kind == "agrees"
                cells.append(scientific(v.error) + ("" if v.kind == "agrees" else " DIFFERS")
                             + ("" if v.how == "by hand" else " ~"))  # fmt: skip
        rows.append((t, kw["backend"], *cells))
    lines = [f"{agreeing} of {total} operator values agree with the hand-derived references ({dtype}: within "
             f"{operators.TOL[dtype]:g} of the largest entry; ~: a reference by central differences, within "
             f"{max(operators.FD_TOL, operators.TOL[dtype]):g})"]  # fmt: skip
    lines += [f"lacks: {why} ({', '.join(sorted(set(ts)))})" for why, ts in lacking.items()]
    return rows, lines, ok
