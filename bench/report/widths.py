"""The width sweep's part of a results folder: wide-mlp at each hidden width, per mode, its time per step, the
FLOP/s it reached (the task's count of a step's matrix products, ``Task.flops``, over that time) and how many
times the compute floor's time it took (the step's operations at the best FLOP/s a matrix product reached here,
``bench.worker.floor.compute``); the crossover, where each eager mode comes within CROSSOVER× of the fastest
mode; the agreement with numpy at every width; ``widths.csv``; and ``plots/widths.png``.

It reads the rows the campaign made (``kind == "width"``) and the floor record of the run; matplotlib is imported
only when the plot is drawn (``plot``), as ``bench.report.timings`` does for its own."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import backends
import tasks
from bench.core.agreement import tol
from bench.core.cases import WIDTH
from bench.report import kinds
from bench.report.formatting import duration, markdown_table, number, scientific, with_interval, write_csv

CROSSOVER = 1.2  # an eager mode within this many times the fastest mode's time per step has crossed over
CSV = "widths.csv"
PLOT = "widths.png"
CSV_COLUMNS = ["n", "backend", "dtype", "mode", "first_call_s", "median_s", "ci_low_s", "ci_high_s", "samples_s",
               "flops_per_step", "flop_per_s", "floor_ratio", "final_loss", "max_rel_diff", "epochs_trained", "epochs",
               "error"]  # fmt: skip


@dataclass(frozen=True)
class ComputeFloor:
    """The run's compute floor in one dtype: the best FLOP/s of a square matrix product (None where not measured,
    and ``error`` says why), the kernel that reached it, and numpy's BLAS as the floor's process ran it."""

    flop_per_s: float | None
    kernel: str | None = None
    blas: str | None = None
    threads: int | None = None
    error: str | None = None

    @classmethod
    def of(cls, floor: dict[str, Any], dtype: str) -> ComputeFloor:
        """From a run's floor record (results.json's ``floor``: its ``compute``)."""
        record = floor.get("compute")
        if not isinstance(record, dict):
            return cls(None, error="not measured in this run")
        if "error" in record:
            return cls(None, error=str(record["error"]))
        mine = (record.get("by_dtype") or {}).get(dtype) or {}
        if not mine.get("flop_per_s"):
            return cls(None, error=f"not measured in {dtype}")
        return cls(float(mine["flop_per_s"]), mine.get("kernel"), record.get("blas"), record.get("threads"))

    def line(self, dtype: str) -> str:
        if self.flop_per_s is None:
            return f"Compute floor ({dtype}) not measured: {self.error}."
        threads = "one thread" if self.threads in (None, 1) else f"{self.threads} threads"
        return (f"Compute floor ({dtype}): {number(self.flop_per_s / 1e9)} GFLOP/s, the best square matrix product "
                f"measured in this run on {threads}, on a timing worker's CPU ({self.kernel}; "
                f"{self.blas}).")  # fmt: skip


@dataclass(frozen=True)
class Cell:
    """One mode at one width: its row, and what the width table says of it."""

    row: dict[str, Any]
    flops: int | None  # a step's floating-point operations
    floor: float | None  # the compute floor's FLOP/s

    @property
    def timed(self) -> bool:
        return "median_s" in self.row

    @property
    def flop_per_s(self) -> float | None:
        return self.flops / self.row["median_s"] if self.timed and self.flops else None

    @property
    def floor_ratio(self) -> float | None:
        """The time per step over the least the compute floor allows (the step's operations at its FLOP/s)."""
        if not (self.timed and self.flops and self.floor):
            return None
        return self.row["median_s"] / (self.flops / self.floor)


def width_rows(rows: list[dict[str, Any]], dtype: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["kind"] == WIDTH and r["dtype"] == dtype]


def cells(rows: list[dict[str, Any]], dtype: str, floor: dict[str, Any]) -> dict[tuple[str, int], Cell]:
    """Every width case of the dtype, by (backend, width)."""
    flop_per_s = ComputeFloor.of(floor, dtype).flop_per_s
    return {(r["backend"], r["n"]): Cell(r, r.get("flops_per_step"), flop_per_s) for r in width_rows(rows, dtype)}


def fastest(found: dict[tuple[str, int], Cell], n: int) -> Cell | None:
    timed = [c for (_, w), c in found.items() if w == n and c.timed]
    return min(timed, key=lambda c: c.row["median_s"], default=None)


def eager(backend: str, mode: str | None = None) -> bool:
    spec = backends.BACKENDS.get(backend)
    return (spec.mode if spec else mode) == backends.EAGER


def crossover(found: dict[tuple[str, int], Cell], backend: str) -> int | None:
    """The smallest width at which the backend's median time per step is within CROSSOVER× of the fastest mode's
    at that width; None where it is at none of the sweep's widths."""
    for n in sorted({w for _, w in found}):
        mine, best = found.get((backend, n)), fastest(found, n)
        if mine is not None and best is not None and mine.timed:
            if mine.row["median_s"] <= CROSSOVER * best.row["median_s"]:
                return n
    return None


def summary(rows: list[dict[str, Any]], floor: dict[str, Any]) -> dict[str, Any]:
    """What results.json keeps of the sweep, per dtype: the compute floor, the fastest mode at each width, and
    each eager mode's crossover (None: none in the sweep)."""
    out = {}
    for dtype in dict.fromkeys(r["dtype"] for r in rows if r["kind"] == WIDTH):
        found = cells(rows, dtype, floor)
        widths = sorted({n for _, n in found})
        best = {n: fastest(found, n) for n in widths}
        modes = list(dict.fromkeys(b for b, _ in found))
        out[dtype] = {"compute_floor_flop_per_s": ComputeFloor.of(floor, dtype).flop_per_s,
                      "fastest": {str(n): c.row["backend"] for n, c in best.items() if c is not None},
                      "crossover": {b: crossover(found, b) for b in modes if eager(b, mode(found, b))}}  # fmt: skip
    return out


def mode(found: dict[tuple[str, int], Cell], backend: str) -> str | None:
    return next((c.row.get("mode") for (b, _), c in found.items() if b == backend and c.row.get("mode")), None)


def cell_text(c: Cell | None) -> str:
    """``35.1 ms (34.2–36.0); 48.2 GFLOP/s; 1.10×``; ``failed`` or ``—``."""
    if c is None:
        return "—"
    if not c.timed:
        return "failed"
    parts = [with_interval(c.row)]
    if c.flop_per_s is not None:
        parts.append(f"{number(c.flop_per_s / 1e9)} GFLOP/s")
    if c.floor_ratio is not None:
        parts.append(f"{number(c.floor_ratio)}×")
    return "; ".join(parts)


def table(rows: list[dict[str, Any]], dtype: str, floor: dict[str, Any],
          order: list[str]) -> tuple[list[str], list[list[str]]]:  # fmt: skip
    """Rows = modes (fastest at the largest width first), columns = widths: time per step (interval), GFLOP/s,
    × the compute floor; then each eager mode's crossover; a last row names the fastest mode at each width."""
    found = cells(rows, dtype, floor)
    widths = sorted({n for _, n in found})
    modes = [b for b in dict.fromkeys([*order, *(b for b, _ in found)]) if any((b, n) in found for n in widths)]
    widest = widths[-1] if widths else None

    def key(b: str) -> float:
        c = found.get((b, widest))
        return c.row["median_s"] if c is not None and c.timed else math.inf

    body = []
    for b in sorted(modes, key=key):
        said = mode(found, b) or "—"
        if eager(b, mode(found, b)):
            n = crossover(found, b)
            cross = f"n = {n:,}" if n is not None else "none in the sweep"
        else:
            cross = "— (not eager)"
        body.append([b, said, *(cell_text(found.get((b, n))) for n in widths), cross])
    best = [fastest(found, n) for n in widths]
    body.append(["**fastest**", "", *(c.row["backend"] if c else "—" for c in best), ""])
    header = ["backend", "mode", *(f"n = {n:,}" for n in widths), f"crossover (within {CROSSOVER:g}× of the fastest)"]
    return header, body


def agreement_table(rows: list[dict[str, Any]], dtype: str, order: list[str]) -> tuple[list[str], list[list[str]]]:
    """Rows = modes, columns = widths: the largest relative difference from numpy (every step's loss and the
    parameters the steps end at), ``DIFFERS`` past the suite's tolerance; over the steps its last process checked
    (the first call of its slice, ``steps_checked``) or, where the cell is the task's own case, the epochs it
    trained."""
    mine = width_rows(rows, dtype)
    widths = sorted({r["n"] for r in mine})
    found = {(r["backend"], r["n"]): r for r in mine}
    modes = [b for b in dict.fromkeys([*order, *(r["backend"] for r in mine)]) if any((b, n) in found for n in widths)]
    limits = {t: tol(tasks.get(t), dtype) for t in dict.fromkeys(r["task"] for r in mine)}

    def said(r: dict[str, Any] | None) -> str:
        if r is None:
            return "—"
        if "max_rel_diff" not in r:
            return "failed" if "error" in r else "—"
        text = scientific(r["max_rel_diff"]) + ("" if r["max_rel_diff"] <= limits[r["task"]] else " DIFFERS")
        if "steps_checked" in r:
            return text + f" ({r['steps_checked']} step{'s' if r['steps_checked'] != 1 else ''})"
        return text + f" ({r['epochs_trained']} of {r['epochs']} epochs)" if "epochs" in r else text

    body = [[b, *(said(found.get((b, n))) for n in widths)] for b in modes]
    return ["backend", *(f"n = {n:,}" for n in widths)], body


def operations(flops: float) -> str:
    """``1.69 MFLOP``, ``121 MFLOP``, ``1.69 GFLOP``."""
    unit, scale = next(((u, k) for u, k in (("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)) if flops >= k), ("FLOP", 1))
    return f"{number(flops / scale)} {unit}"


def spread(rows: list[dict[str, Any]], dtype: str) -> str:
    """The process-to-process spread (σ of log time) pooled at each width, as the Noise line says it."""
    by = {r["n"]: r.get("sigma_log") for r in width_rows(rows, dtype) if r.get("sigma_log") is not None}
    return ", ".join(f"n = {n:,} {100 * v:.1f} %" for n, v in sorted(by.items()))


def sections(rows: list[dict[str, Any]], dtypes: list[str], floor: dict[str, Any], order: list[str]) -> list[str]:
    """The README's sections of the sweep, one per dtype timed: how to read it, the compute floor, the table, the
    crossover said in a line, the agreement with numpy."""
    out = []
    for dtype in dtypes:
        mine = width_rows(rows, dtype)
        if not mine:
            continue
        header, body = table(rows, dtype, floor, order)
        flops = {r["n"]: r.get("flops_per_step") for r in mine}
        work = ", ".join(f"{operations(f)} at n = {n:,}" for n, f in sorted(flops.items()) if f)
        cross = summary(rows, floor)[dtype]["crossover"]
        crossed = "; ".join(f"{b} at n = {n:,}" if n is not None else f"{b} none in the sweep"
                            for b, n in cross.items())  # fmt: skip
        sigma = spread(rows, dtype)
        how = (f"wide-mlp (64-n-n-10 tanh, batches of 256) at each hidden width n: a step's matrix products are {work} "
               "(counted from the shapes). A cell: the median time per step (rerun interval); the FLOP/s reached "
               "(those operations over that time); × the compute floor (the time over the least the compute floor "
               f"allows). The crossover: the smallest width at which an eager mode's median is within {CROSSOVER:g}× "
               "of the fastest mode's there. Each cell is timed on an eighth of a task case's rounds (where the run "
               "times wide-mlp as a task too, its own width is that case: "
               "[docs/fair-timing.md](../docs/fair-timing.md#the-width-sweep))"
               + (f"; the process-to-process spread per width: {sigma}." if sigma else "."))  # fmt: skip
        a_header, a_body = agreement_table(rows, dtype, order)
        out.append("\n\n".join([
            f"## The width sweep ({dtype})", how, ComputeFloor.of(floor, dtype).line(dtype),
            markdown_table(header, body), f"**Crossover** ({dtype}): {crossed or 'no eager mode timed'}.",
            f"**Max rel diff from numpy** ({dtype}), `|a-b| / max(1, |a|+|b|)` over every step's loss and the "
            "parameters the steps end at: the first call of each cell's slice in its last process, from the initial "
            "parameters, against numpy's over the same batches (the task's own case: its training):",
            markdown_table(a_header, a_body)]))  # fmt: skip
    return out


def csv_rows(rows: list[dict[str, Any]], floor: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for dtype in dict.fromkeys(r["dtype"] for r in rows if r["kind"] == WIDTH):
        for c in cells(rows, dtype, floor).values():
            out.append(c.row | {"flop_per_s": c.flop_per_s, "floor_ratio": c.floor_ratio})
    return out


def write(out: Path, rows: list[dict[str, Any]], floor: dict[str, Any]) -> None:
    """``widths.csv``: one row per width case, with the FLOP/s and × the compute floor; none where no width was
    asked for."""
    mine = csv_rows(rows, floor)
    if mine:
        write_csv(out / CSV, mine, CSV_COLUMNS)


def plans(folder: Path, rows: list[dict[str, Any]], floor: dict[str, Any]) -> list[tuple[Path, Callable[[], None]]]:
    """The sweep's plot, where a width case was timed: its path and the call that draws it."""
    if not any(r["kind"] == WIDTH and "median_s" in r for r in rows):
        return []
    return [(folder / PLOT, partial(plot, folder / PLOT, rows, floor))]


def leading(y: float) -> int:
    """The first significant digit of ``y`` (a log axis labels its minor ticks at 2 and 5)."""
    return int(f"{y:.0e}"[0]) if y > 0 else 0


def plot(path: Path, rows: list[dict[str, Any]], floor: dict[str, Any]) -> None:
    """Per dtype, time per step against width (log-log) with the least the compute floor allows, and the FLOP/s
    reached with the compute floor, every mode drawn in its style (bench.report.plots.look)."""
    from bench.report import plots  # matplotlib: only where a run draws (bench.report.timings.draw_plots)

    dtypes = sorted({r["dtype"] for r in rows if r["kind"] == WIDTH and "median_s" in r}, reverse=True)
    fig, axes = plots.plt.subplots(len(dtypes), 2, figsize=(15, 4.8 * len(dtypes)), squeeze=False)
    for (left, right), dtype in zip(axes, dtypes, strict=True):
        found = cells(rows, dtype, floor)
        for b in dict.fromkeys(b for b, _ in found):
            mine = sorted((n, c) for (k, n), c in found.items() if k == b and c.timed)
            if not mine:
                continue
            s = plots.look(b, mine[0][1].row.get("mode"))
            widths = [n for n, _ in mine]
            left.plot(widths, [c.row["median_s"] for _, c in mine], label=f"{b} ({s.kind})", markersize=5, **s.line())
            if all(c.flop_per_s for _, c in mine):
                right.plot(widths, [c.flop_per_s / 1e9 for _, c in mine], markersize=5, **s.line())
        best = ComputeFloor.of(floor, dtype).flop_per_s
        flops = sorted({(n, c.flops) for (_, n), c in found.items() if c.flops})
        if best and flops:
            n = [w for w, _ in flops]
            left.plot(n, [f / best for _, f in flops], color="k", linestyle=":", label="compute floor")
            right.axhline(best / 1e9, color="k", linestyle=":")
        left.set(xscale="log", yscale="log", xlabel="hidden width n", ylabel="time per step (s)",
                 title=f"wide-mlp, time per step ({dtype})")  # fmt: skip
        right.set(xscale="log", yscale="log", xlabel="hidden width n", ylabel="GFLOP/s (a step's matrix products)",
                  title=f"wide-mlp, FLOP/s reached ({dtype}); dotted: the compute floor")  # fmt: skip
        right.yaxis.set_major_formatter(plots.FuncFormatter(lambda y, _: f"{y:g}"))
        right.yaxis.set_minor_formatter(plots.FuncFormatter(lambda y, _: f"{y:g}" if leading(y) in (2, 5) else ""))
        for ax in (left, right):
            ticks = sorted({n for _, n in found})
            ax.xaxis.set_major_locator(plots.FixedLocator(ticks))
            ax.xaxis.set_major_formatter(plots.FuncFormatter(lambda x, _: f"{x:,.0f}"))
            ax.xaxis.set_minor_locator(plots.FixedLocator([]))
        right.legend(*left.get_legend_handles_labels(), fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    plots.save(fig, path)


def headline(rows: list[dict[str, Any]], dtypes: list[str], floor: dict[str, Any], short: bool = False) -> list[str]:
    """The answer by model size, per dtype: at each width the fastest mode of each kind (bench.report.kinds),
    the fastest's FLOP/s and × the compute floor; then each eager mode's crossover. ``short``: one sentence, the
    smallest and the largest width and the crossovers (the top-level README's)."""
    out = []
    for dtype in dtypes:
        found = cells(rows, dtype, floor)
        widths = sorted({n for _, n in found})
        if not widths:
            continue
        lines = []
        for n in widths if not short else [widths[0], widths[-1]]:
            timed = sorted((c.row for (_, w), c in found.items() if w == n and c.timed), key=lambda r: r["median_s"])
            if not timed:
                continue
            best = found[(timed[0]["backend"], n)]
            rate = f"{number(best.flop_per_s / 1e9)} GFLOP/s" if best.flop_per_s else ""
            rate += f", {number(best.floor_ratio)}× the compute floor" if best.floor_ratio else ""
            each = " · ".join(f"{k} **{r['backend']}** {duration(r['median_s'])}"
                              for k, r in kinds.fastest_by_kind(timed).items())  # fmt: skip
            flops = best.flops
            work = f" ({operations(flops)} a step)" if flops else ""
            lines.append(f"- **n = {n:,}**{work}: {each}" + (f"; the fastest at {rate}" if rate else ""))
        cross = summary(rows, floor)[dtype]["crossover"]
        by: dict[int | None, list[str]] = {}
        for b, n in cross.items():
            by.setdefault(n, []).append(b)
        said = "; ".join(f"{', '.join(bs)} from n = {n:,}" for n, bs in sorted((k, v) for k, v in by.items()
                                                                                 if k is not None))  # fmt: skip
        if None in by:
            said += ("; " if said else "") + f"{', '.join(by[None])} at no width of the sweep"
        lines.append(f"- Eager modes within {CROSSOVER:g}× of the fastest: {said or 'none timed'}.")
        title = f"**By model size** (wide-mlp, hidden width n, {dtype}), the fastest of each kind of mode per step:"
        out.append(title + "\n\n" + "\n".join(lines))
    return out
