"""The operators' part of a results folder (``bench run --operators``): per task, each operator beyond the gradient
(``tasks.operators``) on each mode, its time per call and its cost in losses (× loss: the call over the loss's
call, timed beside it in the same rounds); per framework, which Hessian-vector product wins and how the dense
Hessian compares with n of them; the matrix-free operators on wide-mlp by hidden width; ``operators.csv``; and
``plots/operators_<dtype>.png``.

It reads the rows the campaign made (``kind == "operator"``); matplotlib is imported only when the plot is drawn
(``plot``), as ``bench.report.timings`` does for its own."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import backends
from bench.core import stats
from bench.core.cases import OPERATOR, Case
from bench.report import kinds
from bench.report.formatting import duration, markdown_table, number, scientific, with_interval, write_csv
from tasks.operators import HVPS, OPERATORS

CSV = "operators.csv"
CSV_COLUMNS = ["task", "n", "operator", "backend", "dtype", "mode", "parameters", "first_call_s", "compile_s",
               "median_s", "ci_low_s", "ci_high_s", "samples_s", "objective_samples_s", "per_loss", "per_loss_low",
               "per_loss_high", "steps_per_round", "verdict", "rel_error", "tol", "reference", "error"]  # fmt: skip
NO_AUTODIFF = {"numpy": "the task's hand-written HVP, or its Hessian times v: one formula for both"}  # its two HVPs


def operator_rows(rows: list[dict[str, Any]], dtype: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["kind"] == OPERATOR and r["dtype"] == dtype]


def timed(r: dict[str, Any] | None) -> bool:
    return r is not None and "median_s" in r


def per_loss(r: dict[str, Any]) -> tuple[float, float, float] | None:
    """A call's time over the loss's call timed beside it in the same rounds, with its interval: the median over
    the processes of each process's ratio (``stats.median_ci``); (1, 1, 1) for the loss itself; None where the loss
    was not timed beside it."""
    if not timed(r):
        return None
    if r.get("operator") == "loss":
        return 1.0, 1.0, 1.0
    losses = r.get("objective_samples_s")
    if not losses:
        return None
    return stats.paired_ratio_ci(r["samples_s"], losses)


def verdict(r: dict[str, Any]) -> str:
    """`` DIFFERS (3.2e-5 from the reference)`` where the first call's value was off; nothing where it agreed or was
    not checked."""
    if r.get("verdict", "agrees") == "agrees":
        return ""
    return f" DIFFERS ({scientific(r['rel_error'])} from the reference)"


def cell(r: dict[str, Any] | None) -> str:
    """``12.3 µs (12.0–12.9); 4.1× loss``; ``lacks`` where the backend has no such operator (the run's *What a
    backend cannot run* says why), ``failed`` (its *Failed cases*) or ``—`` where not asked."""
    if r is None:
        return "—"
    if not timed(r):
        return "lacks" if r.get("cannot") else "failed"
    ratio = None if r.get("operator") == "loss" else per_loss(r)  # the loss itself: 1, by definition
    return with_interval(r) + ("" if ratio is None else f"; {number(ratio[0])}× loss") + verdict(r)


def modes(mine: list[dict[str, Any]], order: list[str]) -> list[str]:
    """The modes of these rows: eager first, then compiled step, then compiled loop (``backends.MODES``), each kind
    in ``order`` (the run's), then the registry's."""
    names = list(dict.fromkeys([*order, *backends.BACKENDS, *(r["backend"] for r in mine)]))
    here = {r["backend"]: kinds.mode_of(r) for r in mine}
    return sorted(here, key=lambda b: (backends.MODES.index(here[b]) if here[b] in backends.MODES else 9,
                                       names.index(b)))  # fmt: skip


def where(mine: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    """The (task, width) pairs of these rows, in their order: a task's operators, or wide-mlp's at width n."""
    return list(dict.fromkeys((r["task"], r.get("n")) for r in mine))


def task_table(rows: list[dict[str, Any]], task: str, dtype: str, order: list[str],
               n: int | None = None) -> tuple[list[str], list[list[str]]]:  # fmt: skip
    """Rows the modes (by kind), columns the operators: each cell the time per call (rerun interval) and × loss."""
    mine = [r for r in operator_rows(rows, dtype) if (r["task"], r.get("n")) == (task, n)]
    found = {(r["backend"], r["operator"]): r for r in mine}
    ops = [o for o in OPERATORS if any(r["operator"] == o for r in mine)]
    body = [[b, kinds.mode_of(next(r for r in mine if r["backend"] == b)), *(cell(found.get((b, o))) for o in ops)]
            for b in modes(mine, order)]  # fmt: skip
    return ["backend", "mode", *ops], body


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two cases' rerun intervals overlap: a rerun could order them either way."""
    return a["ci_low_s"] <= b["ci_high_s"] and b["ci_low_s"] <= a["ci_high_s"]


def times(a: dict[str, Any], b: dict[str, Any], scale: float = 1.0) -> str:
    """``1.32 (1.21–1.45)``: a's median call over ``scale`` × b's, with its bootstrap interval (``stats.ratio_ci``)."""
    r, low, high = stats.ratio_ci(a["samples_s"], [scale * s for s in b["samples_s"]])
    return f"{number(r)}× ({number(low)}–{number(high)})"


NAMES = {"hvp-fwd-rev": "forward over reverse", "hvp-rev-rev": "reverse over reverse"}


WITHIN_NOISE = "within noise"


def faster_hvp(found: dict[str, dict[str, Any]], backend: str) -> str | None:
    """Which Hessian-vector product of a mode is the faster: ``hvp-fwd-rev`` or ``hvp-rev-rev``, WITHIN_NOISE where
    their rerun intervals overlap; None where the mode did not time both, or has no HVP of its own (NO_AUTODIFF)."""
    fwd, rev = (found.get(h) for h in HVPS)
    if not (timed(fwd) and timed(rev)) or backend in NO_AUTODIFF:
        return None
    if overlap(fwd, rev):
        return WITHIN_NOISE
    return fwd["operator"] if fwd["median_s"] < rev["median_s"] else rev["operator"]


def hvp_text(found: dict[str, dict[str, Any]], backend: str) -> str | None:
    """``faster_hvp`` in words: the ratio of the two medians with its interval. None where the mode did not time
    both."""
    fwd, rev = (found.get(h) for h in HVPS)
    if not (timed(fwd) and timed(rev)):
        return None
    if backend in NO_AUTODIFF:
        return f"no HVP of its own ({NO_AUTODIFF[backend]})"
    winner = faster_hvp(found, backend)
    if winner == WITHIN_NOISE:
        return f"the two HVPs within noise (forward over reverse {times(fwd, rev)} reverse over reverse's time)"
    faster, slower = (fwd, rev) if winner == fwd["operator"] else (rev, fwd)
    return (f"**{NAMES[faster['operator']]}** wins, {times(slower, faster)} faster than "
            f"{NAMES[slower['operator']]}")  # fmt: skip


def hessian_text(found: dict[str, dict[str, Any]]) -> str | None:
    """A mode's dense Hessian against n × its faster HVP (n the entries of θ: a Hessian is n HVPs, one a column)."""
    hess = found.get("hessian")
    hvps = [found[h] for h in HVPS if timed(found.get(h))]
    if not (timed(hess) and hvps):
        return None
    best = min(hvps, key=lambda r: r["median_s"])
    n = hess["parameters"]
    return f"the Hessian {duration(hess['median_s'])}, {times(hess, best, n)} n × its faster HVP (n = {n:,})"


def strategy_lines(rows: list[dict[str, Any]], task: str, dtype: str, order: list[str]) -> list[str]:
    """Per framework (registry order), each of its modes: which HVP wins (``hvp_text``), and its dense Hessian
    against n HVPs (``hessian_text``)."""
    mine = [r for r in operator_rows(rows, dtype) if r["task"] == task and r.get("n") is None]
    out = []
    for b in sorted(modes(mine, order), key=framework_index):  # stable: a framework's modes by kind
        found = {r["operator"]: r for r in mine if r["backend"] == b}
        said = [t for t in (hvp_text(found, b), hessian_text(found)) if t]
        if said:
            out.append(f"- {b}: " + "; ".join(said))
    return out


def framework_index(backend: str) -> int:
    """Where a backend's framework comes in the registry (its modes are said together)."""
    spec = backends.BACKENDS.get(backend)
    frameworks = list(dict.fromkeys(s.framework for s in backends.BACKENDS.values()))
    return frameworks.index(spec.framework) if spec else len(frameworks)


def width_table(rows: list[dict[str, Any]], operator: str, dtype: str,
                order: list[str]) -> tuple[list[str], list[list[str]]]:  # fmt: skip
    """wide-mlp's ``operator`` by hidden width: rows the modes, columns the widths, each cell time per call and ×
    loss."""
    mine = [r for r in operator_rows(rows, dtype) if r.get("n") is not None and r["operator"] == operator]
    widths = sorted({r["n"] for r in mine})
    found = {(r["backend"], r["n"]): r for r in mine}
    body = [[b, kinds.mode_of(next(r for r in mine if r["backend"] == b)), *(cell(found.get((b, n))) for n in widths)]
            for b in modes(mine, order)]  # fmt: skip
    return ["backend", "mode", *(f"n = {n:,}" for n in widths)], body


def checked_line(mine: list[dict[str, Any]]) -> str:
    """How many values agreed with the reference, and which did not."""
    judged = [r for r in mine if "verdict" in r]
    off = [r for r in judged if r["verdict"] != "agrees"]
    said = f"**Values**: {len(judged) - len(off)} of {len(judged)} first calls agree with the reference"
    if off:
        said += "; differ: " + ", ".join(f"{r['task']} {r['operator']} {r['backend']} ({scientific(r['rel_error'])})"
                                         for r in off)  # fmt: skip
    return said + "."


HOW = (
    "Each operator of `tasks.operators` at the task's point (its initial parameters; docs/operators.md): a cell is "
    "the median time of one call (rerun interval), a round calling it k times and ending in a blocking read of the "
    "last value, and **× loss**, its call over the loss's call timed beside it in the same rounds (the median over "
    "the processes of their ratios; the cheap gradient principle bounds the gradient's, `vjp`, by about 5). Each "
    "case is timed in the first and last of the processes, on an eighth of a task case's rounds; its first call "
    "(tracing and compiling included) is in `operators.csv`, and its value, in the last process, is held against "
    "the hand-derived one. *lacks*: the backend has no such operator (*What a backend cannot run* says why)."
)


def sections(rows: list[dict[str, Any]], dtypes: list[str], order: list[str]) -> list[str]:
    """The README's Operators section, one per dtype timed: how to read it; per task the table, the HVP strategy and
    the dense Hessian per framework; wide-mlp's matrix-free operators by width; the values' agreement."""
    out = []
    for dtype in dtypes:
        mine = operator_rows(rows, dtype)
        if not mine:
            continue
        parts = [f"## Operators ({dtype})", HOW]
        for task, _ in where([r for r in mine if r.get("n") is None]):
            size = next(r["parameters"] for r in mine if r["task"] == task and r.get("n") is None)
            header, body = task_table(rows, task, dtype, order)
            parts += [f"### {task} ({dtype}, θ of {size:,} entries)", markdown_table(header, body)]
            lines = strategy_lines(rows, task, dtype, order)
            if lines:
                parts.append("**Which HVP, and the dense Hessian against n HVPs** (ratios of medians with their "
                             "95 % bootstrap interval; *within noise* where the two rerun intervals overlap):\n\n"
                             + "\n".join(lines))  # fmt: skip
        swept = [r for r in mine if r.get("n") is not None]
        for op in dict.fromkeys(r["operator"] for r in swept):
            header, body = width_table(rows, op, dtype, order)
            parts += [f"### {op} by model size (wide-mlp, hidden width n, {dtype})", markdown_table(header, body)]
        parts.append(checked_line(mine))
        out.append("\n\n".join(parts))
    return out


def named(r: dict[str, Any]) -> str:
    """An operator row's case, as the results and the suite name it: ``logistic-hvp-fwd-rev-jax-jit-float64``."""
    return Case(OPERATOR, r["task"], r["backend"], r["dtype"], r.get("n"), r["operator"]).params


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What results.json keeps of the operators, per dtype timed: how many first values agree with the reference
    (and the cases that differ), and per task (wide-mlp per width) and mode, the faster HVP (``faster_hvp``)."""
    out = {}
    for dtype in dict.fromkeys(r["dtype"] for r in rows if r["kind"] == OPERATOR):
        mine = operator_rows(rows, dtype)
        judged = [r for r in mine if "verdict" in r]
        faster: dict[str, dict[str, str]] = {}
        for task, n in where(mine):
            at = [r for r in mine if r["task"] == task and r.get("n") == n]
            for b in dict.fromkeys(r["backend"] for r in at):
                won = faster_hvp({r["operator"]: r for r in at if r["backend"] == b}, b)
                if won is not None:
                    faster.setdefault(task if n is None else f"{task} n={n}", {})[b] = won
        off = [named(r) for r in judged if r["verdict"] != "agrees"]
        out[dtype] = {"values_checked": len(judged), "values_agree": len(judged) - len(off), "differ": off,
                      "faster_hvp": faster}  # fmt: skip
    return out


def csv_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if r["kind"] != OPERATOR:
            continue
        ratio = per_loss(r)
        out.append(r | ({} if ratio is None else dict(zip(("per_loss", "per_loss_low", "per_loss_high"), ratio,
                                                               strict=True))))  # fmt: skip
    return out


def write(out: Path, rows: list[dict[str, Any]]) -> None:
    """``operators.csv``: one row per operator case, with × loss and its interval; none where no operator was
    asked for."""
    mine = csv_rows(rows)
    if mine:
        write_csv(out / CSV, mine, CSV_COLUMNS)


def plans(folder: Path, rows: list[dict[str, Any]]) -> list[tuple[Path, Callable[[], None]]]:
    """A plot per dtype where an operator case was timed: its path and the call that draws it."""
    dtypes = dict.fromkeys(r["dtype"] for r in rows if r["kind"] == OPERATOR and timed(r) and r["operator"] != "loss")
    return [(folder / f"operators_{d}.png", partial(plot, folder / f"operators_{d}.png", rows, d)) for d in dtypes]


def plot(path: Path, rows: list[dict[str, Any]], dtype: str) -> None:
    """Per task (and wide-mlp per width), a heat map mode × operator of × loss (log colour scale), the figure printed
    in each cell; the modes grouped by kind (a black rule between kinds), each named in its framework's colour with
    its kind's marker; a case without a figure grey, with "—"."""
    from bench.report import plots  # matplotlib: only where a run draws (bench.report.timings.draw_plots)

    mine = [r for r in operator_rows(rows, dtype) if r.get("operator") != "loss"]
    panels = where(mine)
    names = modes(mine, list(backends.BACKENDS))
    ratios = {(r["task"], r.get("n"), r["backend"], r["operator"]): per_loss(r) for r in mine}
    values = [v[0] for v in ratios.values() if v is not None]
    norm = plots.LogNorm(vmin=min(1.0, *values) if values else 1.0, vmax=max(10.0, *values) if values else 10.0)
    cmap = plots.plt.get_cmap("YlOrRd").with_extremes(bad="0.88")
    columns = {p: [o for o in OPERATORS if any((r["task"], r.get("n"), r["operator"]) == (*p, o) for r in mine)]
               for p in panels}  # fmt: skip
    wide = max(6.4, 3.2 + sum(0.55 * len(c) + 0.3 for c in columns.values()))
    fig, axes = plots.plt.subplots(1, len(panels), figsize=(wide, 2.6 + 0.3 * len(names)), squeeze=False,
                                   sharey=True, width_ratios=[max(1, len(columns[p])) for p in panels],
                                   layout="constrained")  # fmt: skip
    kind = {b: kinds.mode_of(next(r for r in mine if r["backend"] == b)) for b in names}
    for ax, p in zip(axes[0], panels, strict=True):
        ops = columns[p]
        grid = [[(ratios.get((*p, b, o)) or (math.nan,))[0] for o in ops] for b in names]
        image = ax.imshow(plots.np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                said, dark = ("—", False) if not math.isfinite(v) else (plots.times(v), norm(v) > 0.62)
                ax.text(j, i, said, ha="center", va="center", fontsize=7, color="w" if dark else "k")
        for i, (a, b) in enumerate(zip(names, names[1:], strict=False)):  # a black rule between kinds of mode
            if kind[a] != kind[b]:
                ax.axhline(i + 0.5, color="k", linewidth=1.5)
        ax.set_xticks(range(len(ops)), ops, fontsize=7.5, rotation=35, ha="right", rotation_mode="anchor")
        ax.set_title(p[0] if p[1] is None else f"{p[0]}, n = {p[1]:,}", fontsize=9)
        ax.tick_params(length=0)
    first, last = axes[0][0], axes[0][-1]
    first.set_yticks(range(len(names)), names, fontsize=8)
    for tick, b in zip(first.get_yticklabels(), names, strict=True):
        tick.set_color(plots.look(b).colour)
    for k in dict.fromkeys(kind[b] for b in names):  # the kind's name beside its rows, on the right
        mine_k = [i for i, b in enumerate(names) if kind[b] == k]
        last.text(len(columns[panels[-1]]) - 0.5 + 0.1, (mine_k[0] + mine_k[-1]) / 2, k.replace(" ", "\n"),
                  ha="left", va="center", fontsize=7.5, clip_on=False)  # fmt: skip
    bar = fig.colorbar(image, ax=list(axes[0]), fraction=0.03, pad=0.08)
    bar.set_label("× the loss's call (log scale)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    title = (
        f"Operators beyond the gradient ({dtype}): a call's time × the loss's call timed beside it, median of the "
        "processes; the modes by kind; —: no figure (the backend lacks it, or it failed)"
    )
    fig.suptitle(textwrap.fill(title, int(13 * wide)), fontsize=8.5)
    plots.save(fig, path)
