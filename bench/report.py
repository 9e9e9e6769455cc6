"""Turn the workers' pytest-benchmark JSON into results/: Markdown tables, JSON, CSV and plots."""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import tasks
from bench import envs, stats
from bench.compare import tol
from bench.harness import Failed
from bench.timing import fit_overhead

HOW_TO_READ = """Every backend was timed in R fresh processes of its own environment, the processes interleaved
round-robin across backends (numpy, torch, …, then again), so that a drift of the machine hits each
alike. In each process a round trains a fixed slice of the task's schedule and ends in a blocking read;
the process's figure is its median round divided by the round's steps. *Per step* is the median over the
processes, with a confidence interval over them in brackets (95 %, or the processes' range where there
are too few for that: the line above says what it holds): the spread met when rerunning.
*× numpy* and *× fastest* are ratios of medians with their 95 % interval; one whose interval includes 1
reads *within noise*. *First call* is the first process's first call of the task's first 10 steps: tracing,
compiling or hybridizing included, with compile caches empty. *Step ÷ objective* is a training step's time over the
loss alone of the same batches (same blocking read): the cost of the gradient and update, which the
cheap gradient principle bounds by about 5 for reverse mode. *Final loss* and *max rel diff from numpy*
(`|a-b| / max(1, |a|+|b|)` over the final parameters and every step's loss) come from training the
schedule in one more process of the backend's environment. The memory floor is the time to read x and y
once at the best read bandwidth measured in the run (several kernels and thread counts); a figure that
beats it by more than 5 % is a measurement error, and is flagged rather than printed."""

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def instructions(value: float | None) -> str:
    """A count: ``71.8 k``, ``1.07 M``, ``2.34 G``, three significant digits."""
    if value is None or not math.isfinite(value):
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g}"


def rows_of(cases: list[Any], found: Any) -> list[dict[str, Any]]:
    """One row per case asked for: its figures (what the timing session put in each benchmark's
    extra_info), or the reason it has none."""
    benchmarks = {b["name"]: b for b in found.benchmarks}
    rows = []
    for c in cases:
        row: dict[str, Any] = {"kind": c.kind, "task": c.task, "backend": c.backend, "dtype": c.dtype}
        row |= {} if c.n is None else {"n": c.n}
        b = benchmarks.get(c.id)
        if b is None or c.id in found.failures:
            row["error"] = found.failures.get(c.id) or "the timing session never reported this case"
        else:
            row |= b["extra_info"]
        rows.append(row)
    return with_metrics(rows)


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
    parts = [f"{k.replace('_', ' ')} {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in metrics.items()]
    return ", ".join(parts)


SCALES = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


def with_interval(r: dict[str, Any]) -> str:
    """``16.3 µs (15.9–16.8)``: the median per step and its 95 % interval, in the median's unit."""
    unit, scale = next(((u, k) for u, k in SCALES if r["median_s"] >= k), SCALES[-1])
    return f"{r['median_s'] / scale:.3g} {unit} ({r['ci_low_s'] / scale:.3g}–{r['ci_high_s'] / scale:.3g})"


def ratio(a: list[float], b: list[float], flag_above: float | None = None, paired: bool = False) -> str:
    """The ratio of medians a / b with its interval (a bootstrap; ``paired``: a and b were timed side by
    side in the same processes, and the interval is that of the median of their ratios); *within noise*
    where the interval includes 1, and in bold with a note where it is above ``flag_above``."""
    if a is b:
        return "1"
    if paired:
        r, lo, hi = stats.median_ci([x / y for x, y in zip(a, b, strict=True)])
    else:
        r, lo, hi = stats.ratio_ci(a, b)
    text = f"{r:.3g} ({lo:.3g}–{hi:.3g})"
    if lo <= 1 <= hi:
        return text + " within noise"
    if flag_above is not None and r > flag_above:
        return f"**{text}** over {flag_above:g}"
    return text


def per_objective(r: dict[str, Any]) -> str:
    """A training step's median time over the objective's alone."""
    if not r.get("objective_samples_s"):
        return "—"
    return f"{statistics.median(r['samples_s']) / statistics.median(r['objective_samples_s']):.3g}"


def task_table(rows: list[dict[str, Any]], task: str, dtype: str) -> list[list[str]]:
    mine = [r for r in rows if r["kind"] == "speed" and r.get("task") == task and r["dtype"] == dtype]
    timed = sorted((r for r in mine if "median_s" in r), key=lambda r: r["median_s"])
    numpy = next((r for r in timed if r["backend"] == "numpy"), None)
    limit = tol(tasks.get(task), dtype)
    table = []
    for r in timed:
        loss = "—"
        if "final_loss" in r:
            loss = f"{r['final_loss']:.6g}" + (f"; {figures(r['metrics'])}" if r.get("metrics") else "")
            if r["epochs_trained"] < r["epochs"]:
                loss += f" (after {r['epochs_trained']} of {r['epochs']} epochs)"
        diff = "—"
        if "max_rel_diff" in r:
            diff = f"{r['max_rel_diff']:.1e}" + ("" if r["max_rel_diff"] <= limit else " DIFFERS")
            if r.get("lr_dtype", "float64") != "float64":
                diff += f" (numpy with {r['lr_dtype']} lr)"
        table.append([r["backend"], r["mode"], duration(r["first_call_s"]), with_interval(r),
                      f"{1 / r['median_s']:,.0f}",
                      ratio(r["samples_s"], numpy["samples_s"]) if numpy else "—",
                      ratio(r["samples_s"], timed[0]["samples_s"]), per_objective(r), loss,
                      diff])  # fmt: skip
    table += [[r["backend"], "", "", "", "", "", "", "", "", r["error"]] for r in mine if "median_s" not in r]
    return table


TASK_HEADER = ["backend", "mode", "first call", "per step: median (CI)", "steps/s", "× numpy", "× fastest",
               "step ÷ objective", "final loss", "max rel diff from numpy"]  # fmt: skip
FLOOR_SLACK = 0.95  # a figure under 0.95 × the memory floor is a measurement error, not a speed
HANDWRITTEN_LIMIT = 1.5  # an adapter slower than this × a hand-written loop of its framework is flagged


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
    """Each mode's time per step over a hand-written loop of its framework (quadratic, by N), timed in the
    same processes, interleaved."""
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
    return ["backend", *(f"N = {n:.0e}" for n in sizes)], table


def scaling_fits(rows: list[dict[str, Any]], bandwidth: float) -> list[dict[str, Any]]:
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
        fit["floor_n"], fit["floor_ratio"] = biggest["n"], biggest["median_s"] / (biggest["bytes_per_step"] / bandwidth)
        fits.append(fit)
    return fits


def floor_cell(f: dict[str, Any]) -> str:
    """× the memory floor at the largest N; a figure that beats the floor is flagged, not printed."""
    if f["floor_ratio"] < FLOOR_SLACK:
        return f"beats the floor at N = {f['floor_n']:.0e}: a measurement error"
    return f"{f['floor_ratio']:.2f} at N = {f['floor_n']:.0e}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def write_text(path: Path, text: str) -> None:
    """Write aside, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write(out: Path, o: Any, rows: list[dict[str, Any]], found: Any, floor: dict[str, Any], wall: float,
          env: dict[str, Any], workers: dict[str, Any]) -> str:  # fmt: skip
    """Write the results folder: the raw figures first (results.json, CSVs), then plots, each on its own
    (one that fails is a line in the README), then the README. Returns the summary."""
    out.mkdir(parents=True)
    bandwidth = floor["bytes_per_s"]
    fits = scaling_fits(rows, bandwidth)
    names = list(o.tasks)
    result = {"command": o.command(), "wall_s": wall, "environment": env, "read_bandwidth_bytes_per_s": bandwidth,
              "floor": floor, "threads": o.threads, "device": o.device, "quick": o.quick, "repeats": o.repeats,
              "cases": rows, "scaling": fits, "workers": workers, "machine_info": found.machine_info}  # fmt: skip
    (out / "results.json").write_text(json.dumps(result, indent=1))
    columns = ["task", "backend", "dtype", "mode", "device", "first_call_s", "median_s", "ci_low_s", "ci_high_s",
               "samples_s", "objective_samples_s", "rounds", "steps_per_round", "final_loss", "max_rel_diff",
               "epochs_trained", "epochs", "error"]  # fmt: skip
    write_csv(out / "results.csv", [r for r in rows if r["kind"] == "speed"], columns)
    write_csv(
        out / "scaling.csv",
        [r for r in rows if r["kind"] == "scaling"],
        ["n", "backend", "dtype", "mode", "first_call_s", "median_s", "ci_low_s", "ci_high_s", "samples_s",
         "handwritten_samples_s", "bytes_per_step", "error"],
    )  # fmt: skip
    pictures, not_drawn = draw_plots(out / "plots", rows, fits, bandwidth, names)

    try:
        summary, readme = readme_text(rows, names, o, env, bandwidth, fits, pictures, wall)
    except Exception as e:  # a bug in the tables must not cost the figures: results.json has them all
        summary = f"The tables could not be written ({type(e).__name__}: {e}); every figure is in results.json."
        readme = f"# autodiff-bench results\n\n{summary}\n"
    if not_drawn:
        summary += "\n\n" + "\n".join(f"- {line}" for line in not_drawn)
        readme += "\n" + "\n".join(f"- {line}" for line in not_drawn) + "\n"
    (out / "README.md").write_text(readme)
    return summary


def readme_text(rows: list[dict[str, Any]], names: list[str], o: Any, env: dict[str, Any], bandwidth: float,
                fits: list[dict[str, Any]], pictures: list[Path], wall: float) -> tuple[str, str]:  # fmt: skip
    """The summary, and the whole README around it: how to read, a table per task and dtype, plots, failures."""
    summary = summary_markdown(rows, names, o, env, bandwidth, fits, pictures)
    sections = [f"# autodiff-bench results\n\nMade by `{o.command()}` in {wall / 60:.1f} min. Do not edit: rerun it.",
                HOW_TO_READ, summary]  # fmt: skip
    for t in names:
        for d in o.dtypes:
            sections.append(f"## {t} ({d})\n\n" + markdown_table(TASK_HEADER, task_table(rows, t, d)))
    sections.append("## Plots\n\n" + "\n\n".join(f"![{p.stem}](plots/{p.name})" for p in pictures))
    failed = [r for r in rows if "error" in r]
    if failed:
        sections.append("## Failed cases\n\n" + failure_list(failed))
    return summary, "\n\n".join(sections) + "\n"


def draw_plots(folder: Path, rows: list[dict[str, Any]], fits: list[dict[str, Any]], bandwidth: float,
               names: list[str]) -> tuple[list[Path], list[str]]:  # fmt: skip
    """The plots drawn, and a line for each that could not be: why."""
    try:
        from bench import plots
    except Exception as e:  # matplotlib missing or broken: the figures are still written
        return [], [f"plots not drawn: {type(e).__name__}: {e}"]
    folder.mkdir(parents=True)
    drawn, not_drawn = [], []
    for path, draw in plots.plans(folder, rows, fits, bandwidth, names):
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
        what = r["task"] if r["kind"] == "speed" else f"{r['task']} N={r['n']:g}"
        return f"{what} {r['backend']} {r['dtype']}"

    return "\n".join(f"- {case(r)}: {r['error']}" for r in failed)


def summary_markdown(rows: list[dict[str, Any]], names: list[str], o: Any, env: dict[str, Any], bandwidth: float,
                     fits: list[dict[str, Any]], pictures: list[Path]) -> str:  # fmt: skip
    parts = [f"Machine: {env['cpu']}, {env['cores']} cores, {o.threads} threads, device {o.device}; "
             + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
             + f". Memory read bandwidth {bandwidth / 1e9:.1f} GB/s ({o.threads} threads)."
             + f" Each backend timed in {o.repeats} processes; a median's interval (order statistics over"
             + f" them) holds the true median with probability {stats.median_coverage(o.repeats):.1%}."
             + f" Commit {env['commit'][:12]}."]  # fmt: skip
    for d in o.dtypes:
        table = summary_table(rows, names, o.backends, d)
        parts.append(f"### Time per step ({d}, median (CI))\n\n" + markdown_table(["backend", *names], table))
    table = summary_table(rows, names, o.backends, o.dtypes[0], per_objective)
    parts.append(
        f"### Training step ÷ objective alone ({o.dtypes[0]})\n\n" + markdown_table(["backend", *names], table)
    )
    for d in o.dtypes:
        header, table = handwritten_table(rows, o.backends, d)
        if len(header) > 1:
            parts.append(f"### × a hand-written loop of the same framework (quadratic, {d})\n\n"
                         + markdown_table(header, table))  # fmt: skip
    if fits:
        body = [[f["backend"], f["mode"], f["dtype"], duration(f.get("overhead_s")),
                 f"{f['per_element_s'] * 1e9:.3g} ns" if "per_element_s" in f else "—", floor_cell(f)]
                for f in fits]  # fmt: skip
        parts.append(
            "### Overhead and throughput (quadratic, t(N) = a + b·N)\n\n"
            + markdown_table(["backend", "mode", "dtype", "fixed overhead a", "per element b", "× memory floor"], body)
        )
    parts.append("Plots: " + ", ".join(picture_link(p) for p in sorted(pictures, key=lambda p: p.stem != "scaling")))
    return "\n\n".join(parts)


def picture_link(path: Path) -> str:
    """``fit_plane.png`` -> ``[plane fit](plots/fit_plane.png)``."""
    kind, _, task = path.stem.partition("_")
    return f"[{f'{task} {kind}' if task else kind}](plots/{path.name})"


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def update_readme(summary: str) -> None:
    """Put a default run's summary between the top-level README's markers."""
    summary = summary.replace("](plots/", "](results/plots/")
    readme = envs.ROOT / "README.md"
    text = readme.read_text()
    if README_START in text and README_END in text:
        head, rest = text.split(README_START, 1)
        tail = rest.split(README_END, 1)[1]
        write_text(readme, f"{head}{README_START}\n{summary}\n{README_END}{tail}")
