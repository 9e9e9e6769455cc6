"""A timing run's results folder: Markdown tables, JSON, CSV and plots."""

from __future__ import annotations

import datetime
import json
import os
import re
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import backends
import tasks
from bench.core import noise_model, stats
from bench.core.agreement import tol
from bench.core.cases import jobs
from bench.core.errors import Failed
from bench.core.stats import fit_overhead
from bench.host import envs, machine
from bench.report import kinds, operators, widths
from bench.report.formatting import (
    duration,
    general,
    markdown_table,
    number,
    power,
    scientific,
    size,
    with_interval,
    write_csv,
    write_text,
)

HOW_TO_READ = f"""Every backend was timed in R fresh processes of its own environment, each pinned to one CPU
of its own (with one thread, unless the line above says otherwise), the processes interleaved round-robin across
backends (numpy, torch, …, then again), so that a drift of the machine hits each alike. In each process
a round trains a fixed slice of the task's schedule and ends in a blocking read; rounds go on for about
a second, and the process's figure is its fastest round divided by the round's steps. *Per step* is the
median over the processes; the interval in brackets is where a rerun's median falls
{100 * stats.RERUN_LEVEL:g} % of the time, from the process-to-process spread pooled over a backend's task cases,
or over the sweep's cases of one size, an allowance for the machine's drift between runs
({100 * noise_model.DRIFT:g} %, or {100 * noise_model.DRIFT_STREAMING:g} % where the sweep's arrays outgrow a core's
cache; `bench diff` of two runs says what your host needs) and how far the machine moved within this run;
at least the processes' own range.
Beside its rounds each worker timed two fixed calibration kernels, and read its CPU share and the
steal time: a process that timed a case while the machine was busy was replaced by one more (*Noise*
says how many, and marks with † what stayed noisy). *× numpy* and *× fastest* are ratios of medians
with their 95 % interval; one whose interval includes 1 reads *within noise*. *First call* is the first
process's first call of the task's first 10 steps: tracing, compiling or hybridizing included, with
compile caches empty. *Step ÷ objective* is a training step's time over the loss alone of the same
batches (same blocking read): the cost of the gradient and update, which the cheap gradient principle
bounds by about 5 for reverse mode. *Final loss* and *max rel diff from numpy* (`|a-b| / max(1, |a|+|b|)`
over the final parameters and every step's loss) come from training the schedule in the backend's
last timing process, once every process of its round has timed (with `--jobs`, in one more process).
The memory floor is the time to read x and y once at the best read bandwidth measured in the run (several
kernels and thread counts); a figure that beats it by more than 5 % is a measurement error, and is flagged
rather than printed, unless x and y fit in the last-level cache (*in cache*), which may be read faster."""


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def with_metrics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A task's own figures of its trained parameters (digits: held-out accuracy), made here in the main
    process, which has what they need (scikit-learn's images), from the parameters a worker reported."""
    made: dict[str, tasks.Task] = {}
    for r in rows:
        if "params" not in r:
            continue
        t = made.setdefault(r["task"], tasks.get(r["task"]))
        if t.metrics is not None:
            try:
                r["metrics"] = t.metrics({k: np.asarray(v) for k, v in r["params"].items()})
            except Exception as e:  # a task's own code: its failure is a note, not a lost run
                r["metrics"] = {"not computed": f"{type(e).__name__}: {e}"}
    return rows


def figures(metrics: dict[str, Any]) -> str:
    """``{'test_accuracy': 0.949}`` -> ``test accuracy 0.949``."""
    parts = [f"{k.replace('_', ' ')} {general(v, 4)}" if isinstance(v, float) else f"{k}: {v}"
             for k, v in metrics.items()]  # fmt: skip
    return ", ".join(parts)


def ratio(a: list[float], b: list[float], flag_above: float | None = None, paired: bool = False) -> str:
    """The ratio of medians a / b with its interval (a bootstrap; ``paired``: a and b were timed side by
    side in the same processes, and the interval is that of the median of their ratios); *within noise*
    where the interval includes 1, and in bold with a note where it is above ``flag_above`` or below its
    inverse."""
    if a is b:
        return "1"
    if paired:
        r, lo, hi = stats.paired_ratio_ci(a, b)
    else:
        r, lo, hi = stats.ratio_ci(a, b)
    text = f"{number(r)} ({number(lo)}–{number(hi)})"
    if lo <= 1 <= hi:
        return text + " within noise"
    if flag_above is not None and r > flag_above:
        return f"**{text}** over {flag_above:g}"
    if flag_above is not None and r < 1 / flag_above:
        return f"**{text}** under 1/{flag_above:g}"
    return text


def first_call(r: dict[str, Any]) -> str:
    """``1.58 s (compile 1.52 s)``: the first call, and the part of it the framework says it spent compiling."""
    said = duration(r["first_call_s"])
    return said if r.get("compile_s") is None else f"{said} (compile {duration(r['compile_s'])})"


def per_objective(r: dict[str, Any]) -> str:
    """A training step's median time over the objective's alone."""
    if not r.get("objective_samples_s"):
        return "—"
    return number(statistics.median(r["samples_s"]) / statistics.median(r["objective_samples_s"]))


def task_table(rows: list[dict[str, Any]], task: str, dtype: str) -> list[list[str]]:
    mine = [r for r in rows if r["kind"] == "speed" and r.get("task") == task and r["dtype"] == dtype]
    timed = sorted((r for r in mine if "median_s" in r), key=lambda r: r["median_s"])
    numpy = next((r for r in timed if r["backend"] == "numpy"), None)
    limit = tol(tasks.get(task), dtype)
    table = []
    for r in timed:
        loss = "—"
        if "final_loss" in r:
            loss = general(r["final_loss"]) + (f"; {figures(r['metrics'])}" if r.get("metrics") else "")
            if r["epochs_trained"] < r["epochs"]:
                loss += f" (after {r['epochs_trained']} of {r['epochs']} epochs)"
        diff = "—"
        if "max_rel_diff" in r:
            diff = scientific(r["max_rel_diff"]) + ("" if r["max_rel_diff"] <= limit else " DIFFERS")
            if r.get("lr_dtype", "float64") != "float64":
                diff += f" (numpy with {r['lr_dtype']} lr)"
            if r.get("formula", "reference") != "reference":
                diff += f" (numpy with {r['formula']}'s optimiser formula: docs/optimisers.md)"
        table.append([r["backend"], r["mode"], first_call(r), with_interval(r),
                      number(1 / r["median_s"]),
                      ratio(r["samples_s"], numpy["samples_s"]) if numpy else "—",
                      ratio(r["samples_s"], timed[0]["samples_s"]), per_objective(r), loss,
                      diff])  # fmt: skip
    table += [[r["backend"], "", "", "", "", "", "", "", "", r["error"]] for r in mine if "median_s" not in r]
    return table


TASK_HEADER = ["backend", "mode", "first call", "per step: median (CI)", "steps/s", "× numpy", "× fastest",
               "step ÷ objective", "final loss", "max rel diff from numpy"]  # fmt: skip
FLOOR_SLACK = 0.95  # a figure under 0.95 × the memory floor is a measurement error, not a speed
# an adapter slower than this × a hand-written loop of its framework and kind is flagged, and one faster than its
# inverse: a yardstick that slow is of another kind (a loop held against step-wise code)
HANDWRITTEN_LIMIT = 1.5


def summary_table(rows: list[dict[str, Any]], names: list[str], backends: list[str], dtype: str,
                  cell: Callable[[dict[str, Any]], str] = with_interval) -> list[list[str]]:  # fmt: skip
    found = {(r["backend"], r["task"]): r for r in rows if r["kind"] == "speed" and r["dtype"] == dtype}
    out = []
    for b in backends:
        line = [b]
        for t in names:
            r = found.get((b, t), {})
            line.append(cell(r) if "median_s" in r else "failed" if r else "—")
        out.append(line)
    return out


def handwritten_table(rows: list[dict[str, Any]], backends: list[str], dtype: str) -> tuple[list[str], list[list[str]]]:
    """Each mode's time per step over a hand-written loop of its framework and kind of mode (quadratic, by N),
    timed in the same processes, interleaved."""
    found = {(r["backend"], r["n"]): r for r in rows if r["kind"] == "scaling" and r["dtype"] == dtype}
    sizes = sorted({n for _, n in found})
    table = []
    for b in backends:
        line = [b]
        for n in sizes:
            r = found.get((b, n), {})
            ok = r.get("handwritten_samples_s")
            line.append(ratio(r["samples_s"], ok, HANDWRITTEN_LIMIT, paired=True) if ok else "failed" if r else "—")
        table.append(line)
    return ["backend", *map(size, sizes)], table


def scaling_fits(rows: list[dict[str, Any]], bandwidth: float | None, llc: int | None = None) -> list[dict[str, Any]]:
    """quadratic's t(N) = a + b·N per backend and dtype, and at the largest N × the memory floor (none
    where the floor was not measured); ``in_cache`` where that N's arrays fit in the last-level cache of
    ``llc`` bytes, which may be read faster than memory: there the floor bounds nothing."""
    fits = []
    points: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] == "scaling" and "median_s" in r:
            points.setdefault((r["backend"], r["dtype"]), []).append(r)
    for (backend, dtype), pts in points.items():
        pts.sort(key=lambda r: r["n"])
        n, t = [r["n"] for r in pts], [r["median_s"] for r in pts]
        fit: dict[str, Any] = {"backend": backend, "mode": pts[0]["mode"], "dtype": dtype, "n": n, "t": t}
        if len(pts) >= 2:
            fit["overhead_s"], fit["per_element_s"] = fit_overhead(n, t)
        biggest = pts[-1]
        fit["floor_n"], fit["faults_per_step"] = biggest["n"], biggest.get("faults_per_step")
        if bandwidth:
            fit["floor_ratio"] = biggest["median_s"] / (biggest["bytes_per_step"] / bandwidth)
            fit["in_cache"] = llc is not None and biggest["bytes_per_step"] <= llc
        fits.append(fit)
    return fits


def noise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the run's own readings say of its noise: per backend, the process-to-process spread its
    intervals are made from (σ of log figure) and how far its calibration kernels strayed from their quiet
    level; over the run, the lowest CPU share, the most steal, and the processes replaced or still noisy."""
    timed = [r for r in rows if r.get("machine")]
    by: dict[str, dict[str, Any]] = {}
    sweep = {f"{r['n']:,} {r['dtype']}": r.get("sigma_log") for r in timed if r["kind"] == "scaling"}
    for r in timed:  # each process's calibration kernels against the case's quietest process (noise_model.quiet_levels)
        b = by.setdefault(r["backend"], {"sigma_log": None, "calibration": []})
        b["sigma_log"] = r.get("sigma_log") if r["kind"] == "speed" else b["sigma_log"]
        for k in noise_model.KERNELS:
            quiet = max(min(m[k] for m in r["machine"]), 1e-12)
            b["calibration"] += [m[k] / quiet for m in r["machine"]]
    for b in by.values():
        ratios = b.pop("calibration")
        b["calibration_median"], b["calibration_worst"] = float(np.median(ratios)), float(max(ratios))
    machines = [m for r in timed for m in r["machine"]]
    return {"backends": by, "sweep": sweep, "processes": len(machines), "by_round": noise_model.by_round(timed),
            "cpu_share_min": min((m["cpu_share"] for m in machines), default=None),
            "steal_max": max((m["steal"] for m in machines), default=None),
            "remeasured": sum(r.get("remeasured", 0) for r in timed),
            "noisy_processes": sum(sum(r.get("noisy", ())) for r in timed),
            "noisy_cases": sum(any(r.get("noisy", ())) for r in timed)}  # fmt: skip


def noise_line(n: dict[str, Any]) -> str:
    """The run's noise in a sentence."""
    if not n["processes"]:
        return "Noise: nothing was timed."
    spread = ", ".join(f"{b} {100 * v['sigma_log']:.1f} %" for b, v in n["backends"].items() if v["sigma_log"])
    sweep = ", ".join(f"N = {k} {100 * v:.1f} %" for k, v in n.get("sweep", {}).items() if v)
    spread += f"; the sweep's, per size: {sweep}" if sweep else ""
    spread = spread or "not known (one process a case)"
    worst = max(v["calibration_worst"] for v in n["backends"].values())
    typical = max(v["calibration_median"] for v in n["backends"].values())
    return (f"Noise: process-to-process spread (σ of log time, pooled over each backend's task cases) {spread}. "
            f"Calibration kernels: a backend's median process within {typical:.3g}× of its case's quietest "
            f"(worst {worst:.3g}×); CPU share ≥ {n['cpu_share_min']:.2f}; steal ≤ {100 * n['steal_max']:.1f} %. "
            f"{n['remeasured']} of {n['processes']} processes timed while the machine was busy were replaced; "
            f"{n['noisy_processes']} stayed noisy (in {n['noisy_cases']} cases, marked †).{rounds(n)}")  # fmt: skip


def levels(by_round: list[float]) -> str:
    """bench.core.noise_model.by_round's levels as the Noise line and bench diff say them: ``+1.6 %, +2.2 %``."""
    return ", ".join(f"{100 * v:+.1f} %" for v in by_round)


def rounds(n: dict[str, Any]) -> str:
    found = n.get("by_round") or []
    if not found:
        return ""
    return f" The machine by round of processes, the median case against its first round: {levels(found)}."


def time_spent(campaign: dict[str, float], floor_s: float, total_s: float) -> dict[str, float]:
    """Where the run's time went, in seconds: the timing session's parts (bench.campaign.timing.SPENT), the
    memory floor, and the rest (this process: pytest, the report)."""
    spent = {**campaign, "floor": floor_s}
    return spent | {"rest": max(0.0, total_s - sum(spent.values())), "total": total_s}


def time_line(spent: dict[str, float], jobs: int = 1) -> str:
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in spent.items() if k != "total")
    at_once = f" (workers ran {jobs} at a time: the parts add up to more)" if jobs > 1 else ""
    return f"Where the time went ({spent['total'] / 60:.1f} min{at_once}): {parts}."


def floor_cell(f: dict[str, Any]) -> str:
    """× the memory floor at the largest N; a figure that beats the floor is flagged, not printed."""
    if "floor_ratio" not in f:
        return "memory floor not measured"
    if f.get("in_cache"):  # read from the cache, not from memory: the floor bounds nothing
        return f"{number(f['floor_ratio'])} at {size(f['floor_n'])} (in cache)"
    if f["floor_ratio"] < FLOOR_SLACK:
        return f"beats the floor at {size(f['floor_n'])}: a measurement error"
    return f"{number(f['floor_ratio'])} at {size(f['floor_n'])}"


def write(out: Path, o: Any, rows: list[dict[str, Any]], spent: dict[str, float], floor: dict[str, Any], wall: float,
          env: dict[str, Any], workers: dict[str, Any]) -> str:  # fmt: skip
    """Write the results folder: the raw figures first (results.json, CSVs), then plots, each on its own
    (one that fails is a line in the README), then the README. Returns the summary."""
    out.mkdir(parents=True)
    bandwidth = floor.get("bytes_per_s")  # None where the floor was not measured: floor["error"] says why
    fits = scaling_fits(rows, bandwidth, env.get("llc_bytes"))
    names = list(o.tasks)
    paid = kinds.payoffs(rows, names, o.dtypes)
    result = {"command": o.command(), "date": started(wall), "wall_s": wall, "environment": env,
              "read_bandwidth_bytes_per_s": bandwidth, "floor": floor, "threads": o.threads, "device": o.device,
              "quick": o.quick, "repeats": o.repeats, "jobs": jobs(o.quick, o.jobs),
              "native_blas": getattr(o, "native_blas", False),
              "noise": noise(rows), "time_s": time_spent(spent, floor.get("wall_s", 0.0), wall),
              "cases": rows, "scaling": fits, "widths": widths.summary(rows, floor),
              "break_even": [p.record() for p in paid], "operators": operators.summary(rows),
              "workers": workers}  # fmt: skip
    (out / "results.json").write_text(json.dumps(result, indent=1))
    columns = ["task", "backend", "dtype", "mode", "device", "first_call_s", "compile_s", "median_s", "ci_low_s",
               "ci_high_s", "samples_s", "objective_samples_s", "rounds", "steps_per_round", "final_loss",
               "max_rel_diff", "epochs_trained", "epochs", "error"]  # fmt: skip
    write_csv(out / "results.csv", [r for r in rows if r["kind"] == "speed"], columns)
    write_csv(
        out / "scaling.csv",
        [r for r in rows if r["kind"] == "scaling"],
        ["n", "backend", "dtype", "mode", "first_call_s", "median_s", "ci_low_s", "ci_high_s", "samples_s",
         "handwritten_samples_s", "bytes_per_step", "faults_per_step", "error"],
    )  # fmt: skip
    write_csv(out / "break_even.csv", [p.record() for p in paid], list(kinds.Payoff.__dataclass_fields__))
    widths.write(out, rows, floor)
    operators.write(out, rows)
    pictures, not_drawn = draw_plots(out / "plots", rows, fits, bandwidth, names, floor)

    try:
        summary, readme = readme_text(rows, names, o, env, floor, fits, pictures, result["time_s"], workers,
                                      result["date"])  # fmt: skip
    except Exception as e:  # a bug in the tables must not cost the figures: results.json has them all
        summary = f"The tables could not be written ({type(e).__name__}: {e}); every figure is in results.json."
        readme = f"# autodiff-bench results\n\n{summary}\n"
    if not_drawn:
        plural = "s" if len(not_drawn) > 1 else ""
        summary += f"\n\n{len(not_drawn)} plot{plural} not drawn: [README.md](README.md) says why."
        readme += "\n" + "\n".join(f"- {line}" for line in not_drawn) + "\n"
    (out / "README.md").write_text(readme)
    return summary


def readme_text(rows: list[dict[str, Any]], names: list[str], o: Any, env: dict[str, Any], floor: dict[str, Any],
                fits: list[dict[str, Any]], pictures: list[Path], spent: dict[str, float],
                workers: dict[str, Any] | None = None, date: str | None = None) -> tuple[str, str]:  # fmt: skip
    """The summary (:func:`readme_block`), and the whole README: where its figures come from, the short answer,
    how to read, the machine and noise, a table per task and dtype, plots, failures."""
    top = headline(rows, names, o.dtypes, pictures, floor)
    rest = summary_markdown(rows, names, o, env, floor, fits, pictures, workers)
    made = f"Made by `{o.command()}`. Do not edit: rerun it. {time_line(spent, jobs(o.quick, o.jobs))}"
    here = {"environment": env, "date": date}
    sections = [f"# autodiff-bench results\n\n{made}", sources(here, o.out), top, HOW_TO_READ, rest]
    summary = readme_block(rows, names, o, here, pictures, floor)
    for t in names:
        for d in o.dtypes:
            sections.append(f"## {t} ({d})\n\n" + markdown_table(TASK_HEADER, task_table(rows, t, d)))
    sections += widths.sections(rows, o.dtypes, floor, list(o.backends))
    sections += operators.sections(rows, o.dtypes, list(o.backends))
    sections.append("## Plots\n\n" + "\n\n".join(f"![{p.stem}](plots/{p.name})" for p in pictures))
    failed = [r for r in rows if "error" in r and not r.get("cannot")]
    cannot = [r for r in rows if r.get("cannot")]
    if cannot:
        sections.append("## What a backend cannot run\n\nEach as its backend says (its class's `lacks`), with why, and "
                        "where.\n\n" + cannot_list(cannot))  # fmt: skip
    if failed:
        sections.append("## Failed cases\n\n" + failure_list(failed))
    return summary, "\n\n".join(sections) + "\n"


def draw_plots(folder: Path, rows: list[dict[str, Any]], fits: list[dict[str, Any]], bandwidth: float | None,
               names: list[str], floor: dict[str, Any] | None = None) -> tuple[list[Path], list[str]]:  # fmt: skip
    """The plots drawn, and a line for each that could not be: why."""
    try:  # here, not at the top: matplotlib takes half a second to import, and only a run that draws needs it
        from bench.report import plots
    except Exception as e:  # matplotlib missing or broken: the figures are still written
        return [], [f"plots not drawn: {type(e).__name__}: {e}"]
    folder.mkdir(parents=True)
    drawn, not_drawn = [], []
    dtypes = {r["dtype"] for r in rows if r["kind"] == "speed"}
    tols = {(t, d): tol(tasks.get(t), d) for t in names for d in dtypes}  # the suite's, drawn in agreement_*.png
    plans = plots.plans(folder, rows, fits, bandwidth, names, tols, duration) + widths.plans(folder, rows, floor or {})
    plans += operators.plans(folder, rows)
    for path, draw in plans:
        try:
            draw()
            drawn.append(path)
        except Exception as e:
            path.unlink(missing_ok=True)
            not_drawn.append(f"plot {path.name} not drawn: {Failed.of(e)}")
    return drawn, not_drawn


def failure_list(failed: list[dict[str, Any]]) -> str:
    """One line per case without figures: which case, and why."""

    def case(r: dict[str, Any]) -> str:
        if r["kind"] == operators.OPERATOR:
            what = r["task"] + (f" width {r['n']:,}" if r.get("n") is not None else "") + f" {r['operator']}"
        elif r["kind"] == widths.WIDTH:
            what = f"{r['task']} width {r['n']:,}"
        else:
            what = r["task"] if r["kind"] == "speed" else f"{r['task']} N={power(r['n'])}"
        return f"{what} {r['backend']} {r['dtype']}"

    return "\n".join(f"- {case(r)}: {r['error']}" for r in failed)


def cannot_list(cannot: list[dict[str, Any]]) -> str:
    """What the backends say they cannot run, a line per reason: the backends that give it, the reason, and where
    it holds (each task, with the sweep's points where it is a sweep's; an operator is named in its reason), in which
    dtypes. A reason a backend gives of itself ("mxnet has no jvp: ...") is one line for every backend giving it."""
    groups: dict[tuple[str, bool], tuple[list[str], dict[str, list[int]], list[str]]] = {}
    label = {}  # a task's sweep points are the quadratic sweep's N or the width sweep's n
    for r in cannot:
        b, error = r["backend"], r["error"]
        own = error.startswith(f"{b} ")
        names, where, dtypes = groups.setdefault((error.removeprefix(f"{b} ") if own else error, own), ([], {}, []))
        names += [] if b in names else [b]
        dtypes += [] if r["dtype"] in dtypes else [r["dtype"]]
        points = where.setdefault(r["task"], [])
        if r["kind"] != "speed" and r.get("n") is not None and r["n"] not in points:
            points.append(r["n"])
            label[r["task"]] = "N" if r["kind"] == "scaling" else "n"
    lines = []
    for (why, own), (names, where, dtypes) in groups.items():
        at = "; ".join(
            t + (f" ({label[t]} = {', '.join(f'{n:,}' for n in ns)})" if ns else "") for t, ns in where.items()
        )
        who = f"**{', '.join(names)}** " if own else ""
        lines.append(f"- {who}{why}: *{at}*, {', '.join(dtypes)}")
    return "\n".join(lines)


def headline(rows: list[dict[str, Any]], names: list[str], dtypes: list[str], pictures: list[Path],
             floor: dict[str, Any] | None = None, short: bool = False) -> str:  # fmt: skip
    """The short answer: per dtype and task, the fastest mode of each kind (bench.report.kinds); by model size
    (bench.report.widths, ``short``: its smallest and largest width); then the summary charts."""
    parts = kinds.headline(rows, names, dtypes) + widths.headline(rows, dtypes, floor or {}, short)
    charts = [p for p in pictures if p.stem.startswith("summary_")]
    parts += [f"![{p.stem}](plots/{p.name})" for p in charts]
    return "\n\n".join(parts)


def summary_markdown(rows: list[dict[str, Any]], names: list[str], o: Any, env: dict[str, Any],
                     floor: dict[str, Any], fits: list[dict[str, Any]], pictures: list[Path],
                     workers: dict[str, Any] | None = None) -> str:  # fmt: skip
    parts = [f"Machine: {env['cpu']}, {env['cores']} cores, {o.threads} threads, device {o.device}"
             + (f" ({machine.simd_summary(env['cpu_flags'])})" if env.get("cpu_flags") else "") + "; "
             + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
             + ". " + " ".join(filter(None, [blas_line(env, workers or {}, getattr(o, "native_blas", False)),
                                             floor_line(floor, o.threads)]))
             + f" Each backend timed in {o.repeats} processes, each pinned to {o.threads} CPU"
             + ("s" if o.threads > 1 else "") + (f", {o.jobs} at a time" if o.jobs > 1 and not o.quick else "")
             + "; a process's figure is its fastest round, a case's the"
             + f" median of its processes, and its interval holds a rerun's median {stats.RERUN_LEVEL:.0%} of"
             + " the time."
             + f" Commit {env['commit'][:12]}.", noise_line(noise(rows))]  # fmt: skip
    for d in o.dtypes:
        table = summary_table(rows, names, o.backends, d)
        parts.append(f"### Time per step ({d}, median (CI))\n\n" + markdown_table(["backend", *names], table))
    table = summary_table(rows, names, o.backends, o.dtypes[0], per_objective)
    parts.append(
        f"### Training step ÷ objective alone ({o.dtypes[0]})\n\n" + markdown_table(["backend", *names], table)
    )
    paid = kinds.payoffs(rows, names, o.dtypes)
    for d in o.dtypes:
        table = kinds.payoff_table(paid, names, o.backends, d)
        if table:
            parts.append(f"### When compiling pays ({d}): steps after which a compiled mode's first call is paid back"
                         f"\n\n{PAYS}\n\n" + markdown_table(["mode", "eager mode", *names], table))  # fmt: skip
    for d in o.dtypes:
        header, table = handwritten_table(rows, o.backends, d)
        if len(header) > 1:
            parts.append(f"### × a hand-written loop of the same framework and kind (quadratic, {d})\n\n"
                         + markdown_table(header, table))  # fmt: skip
    if fits:
        body = [[f["backend"], f["mode"], f["dtype"], duration(f.get("overhead_s")),
                 f"{number(f['per_element_s'] * 1e9)} ns" if "per_element_s" in f else "—", floor_cell(f),
                 pages(f)] for f in fits]  # fmt: skip
        header = ["backend", "mode", "dtype", "fixed overhead a", "per element b", "× memory floor",
                  f"fresh pages a step at {size(fits[0]['floor_n'])}"]  # fmt: skip
        parts.append("### Overhead and throughput (quadratic, t(N) = a + b·N)\n\n" + markdown_table(header, body))
    parts.append("Plots: " + ", ".join(picture_link(p) for p in sorted(pictures, key=lambda p: p.stem != "scaling")))
    return "\n\n".join(parts)


PAYS = (
    "Against its framework's eager mode (and the task's fastest eager mode, where that is another): (its first "
    "call − the eager first call) ÷ (the eager step − its step); the interval is the step times', the first calls "
    "one cold measurement each; *never* where its step is not the faster."
)


def pages(fit: dict[str, Any]) -> str:
    """The pages the kernel handed a step at the sweep's largest N: 0 where a framework reuses its memory."""
    faults = fit.get("faults_per_step")
    return "—" if faults is None else number(faults)


def floor_line(floor: dict[str, Any], threads: int) -> str:
    if not floor.get("bytes_per_s"):
        return f"Memory floor not measured: {floor.get('error', 'no figure')}."
    return f"Memory read bandwidth {floor['bytes_per_s'] / 1e9:.1f} GB/s ({threads} threads)."


def blas_line(env: dict[str, Any], workers: dict[str, Any], native: bool) -> str:
    """Each environment's numpy, with the BLAS its timing workers loaded and the kernel it ran:
    ``numpy 2.4.6 with OpenBLAS 0.3.31 (Haswell kernel: OPENBLAS_CORETYPE=Haswell set)``; then how the main
    environment's workers ran glibc's allocator."""
    seen: dict[str, dict[str, Any]] = {}
    for w in workers.values():
        mine = (w.get("machine_info") or {}).get("autodiff_bench") or {}
        if mine.get("versions"):
            seen.setdefault(mine.get("environment") or "main", mine)
    if not seen and env.get("blas") is not None:
        seen[env.get("environment") or "main"] = env
    said = [
        f"{envs.ENVS.get(e, e)}/: {machine.blas_summary(seen[e])}" for e in sorted(seen, key=lambda e: (e != "main", e))
    ]
    mode = ("--native-blas: the main environment's workers ran without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE"
            if native else "")  # fmt: skip
    held = [machine.allocator_summary(seen["main"])] if "main" in seen else []
    return "; ".join(said + ([mode] if mode else []) + held) + ("." if said or mode else "")


def picture_link(path: Path) -> str:
    """``fit_plane.png`` -> ``[plane fit](plots/fit_plane.png)``."""
    kind, _, task = path.stem.partition("_")
    return f"[{f'{task} {kind}' if task else kind}](plots/{path.name})"


# Where a results folder's figures come from --------------------------------------------------------------------


def started(wall: float) -> str:
    """When a run of ``wall`` seconds that ends now started: ISO 8601, UTC, to the second."""
    begun = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=wall)
    return begun.isoformat(timespec="seconds")


def commit_day(commit: str) -> str | None:
    """The day ``commit`` was made (``git show``), or None where this checkout does not know it."""
    try:
        out = subprocess.run(["git", "show", "-s", "--format=%cs", commit.removesuffix("+changes")], cwd=envs.ROOT,
                             capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    day = out.stdout.strip() if out.returncode == 0 else ""
    return day or None


def when(result: dict[str, Any]) -> str:
    """``on 2026-05-10 at 14:03 UTC``; a folder from before the date was recorded says so (and its commit's day)."""
    try:
        at = datetime.datetime.fromisoformat(result["date"]).astimezone(datetime.UTC)
    except (KeyError, TypeError, ValueError):
        day = commit_day(str((result.get("environment") or {}).get("commit") or ""))
        return "on a date it does not record" + (f" (its commit is of {day})" if day else "")
    return f"on {at:%Y-%m-%d} at {at:%H:%M} UTC"


def host(env: dict[str, Any]) -> str:
    """``Intel(R) Xeon(R) Processor, 2 cores``."""
    return f"{env.get('cpu') or 'an unknown CPU'}, {env.get('cores', '?')} cores"


def commit(env: dict[str, Any]) -> str:
    """``68b4c43de870``, and whether the checkout had changes not committed."""
    found = str(env.get("commit") or "unknown")
    return found.removesuffix("+changes")[:12] + (" with changes not committed" if found.endswith("+changes") else "")


def origin(result: dict[str, Any]) -> str:
    """``Intel(R) Xeon(R) Processor, 2 cores, at commit 68b4c43de870, on 2026-05-10 at 14:03 UTC``."""
    env = result.get("environment") or {}
    return f"{host(env)}, at commit {commit(env)}, {when(result)}"


def beside(mine: dict[str, Any], other: dict[str, Any], what: str, folder: str, link: str) -> str:
    """Where another results folder's figures come from, and plainly whether that is this folder's host and
    commit."""
    a, b = mine.get("environment") or {}, other.get("environment") or {}
    differ = [w for w, same in (("host", host(a) == host(b)), ("commit", commit(a) == commit(b))) if not same]
    said = f"{what} [{folder}]({link}) were made on {origin(other)}"
    if not differ:
        return f"{said}: the same host and commit as these."
    return f"{said}: **not the {' nor the '.join(differ)} of these**; set the two side by side with that in mind."


def sources(here: dict[str, Any], out: Path) -> str:
    """The timings' host, commit and date; and, where the results folder holds an instruction count
    (``count/``, ``python -m bench run --count``), the count's, saying whether they are the same."""
    lines = [f"These timings were made on {origin(here)}."]
    try:
        counted = json.loads((out / "count" / "results.json").read_text())
    except (OSError, ValueError):
        counted = None
    if isinstance(counted, dict) and "count" in counted:
        lines.append(beside(here, counted, "The instruction counts in", "count/", "count/README.md"))
    return " ".join(lines)


# What the top-level README shows ---------------------------------------------------------------------------------

KINDS = {
    "eager": "*eager* modes run each operation as Python reaches it",
    "compiled step": "*compiled step* ones ({}) trace one training step once and call what they built once a "
    "step, the build timed apart (*first call*)",
    "compiled loop": "*compiled loop* ones ({}) compile a chunk of steps, the loop included, into one program",
}


def readme_block(rows: list[dict[str, Any]], names: list[str], o: Any, here: dict[str, Any],
                 pictures: list[Path], floor: dict[str, Any] | None = None) -> str:  # fmt: skip
    """What the top-level README shows between its markers (at most 30 lines): the fastest mode of each kind
    per task, by model size at the sweep's ends, and the summary chart of the first dtype, what a figure is (and
    the command that made it) in four lines, and where the full tables are. Links are relative to the results
    folder (:func:`update_readme` moves them)."""
    first = o.dtypes[0]
    top = headline(rows, names, [first], [p for p in pictures if p.stem == f"summary_{first}"], floor, short=True)
    present = list(dict.fromkeys(backends.BACKENDS[b].mode for b in o.backends if b in backends.BACKENDS))
    modes = []
    for k in present:
        mine = ", ".join(b for b in o.backends if b in backends.BACKENDS and backends.BACKENDS[b].mode == k)
        modes.append(KINDS.get(k, f"*{k}* modes ({{}}): see docs/results.md").format(mine))
    threads = "one thread" if o.threads == 1 else f"{o.threads} threads"
    others = [d for d in o.dtypes if d != first]
    lines = [
        f"- A figure is the time of one training step on a CPU, {threads}, {first}: the median of {o.repeats} fresh "
        f"processes per mode, timed on {origin(here)}, by `{o.command()}`.",
        f"- {'; '.join(modes)}." if modes else "",
        f"- A figure's interval holds a rerun's median {100 * stats.RERUN_LEVEL:g} % of the time; how often whole "
        "reruns agreed, and what a figure does not tell: [docs/trust.md](../docs/trust.md).",
        "- How each figure is made, and how to read the tables and plots: [docs/results.md](../docs/results.md).",
    ]
    also = f" ({', '.join(others)} too)" if others else ""
    link = f"Every table{also}, the machine and the noise: [results/README.md](README.md)."
    return "\n\n".join([top, "\n".join(line for line in lines if line), link])


LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")  # a Markdown link's target: ](path) or ](path#anchor)


def rebased(text: str, folder: str) -> str:
    """``text``'s relative links, written from ``folder`` (inside the checkout), written from the checkout's
    root instead: ``](plots/a.png)`` -> ``](results/plots/a.png)``, ``](../docs/x.md)`` -> ``](docs/x.md)``."""

    def moved(m: re.Match[str]) -> str:
        target = m.group(2)
        if "://" in target or target.startswith(("/", "mailto:")):
            return m.group(0)
        return f"{m.group(1)}{os.path.normpath(os.path.join(folder, target))}{m.group(3) or ''}{m.group(4)}"

    return LINK.sub(moved, text)


def update_readme(summary: str) -> None:
    """Put a default run's summary (:func:`readme_block`) between the top-level README's markers."""
    summary = rebased(summary, "results")
    readme = envs.ROOT / "README.md"
    text = readme.read_text()
    if README_START in text and README_END in text:
        head, rest = text.split(README_START, 1)
        tail = rest.split(README_END, 1)[1]
        write_text(readme, f"{head}{README_START}\n{summary}\n{README_END}{tail}")
