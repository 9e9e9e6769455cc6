"""The pictures in results/plots/: the time per step of every task and mode, each task's data with every
backend's fit, its loss curve and every backend's distance from numpy step by step, scaling.

Every plot draws a backend alike, from one style table (``STYLES``, made from the backend registry): a
colour per framework, a marker per kind of mode (``backends.MODES``: eager, compiled step, compiled loop), a
line style per backend within its framework. Nothing here knows a tolerance or how a time is written: the report
passes them in."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, LogFormatter, MaxNLocator  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402

import backends  # noqa: E402
import tasks  # noqa: E402
from bench.report.formatting import scientific  # noqa: E402

EXACT = 1e-18  # where a difference of 0 (the same loss to the last bit) is drawn on a log axis

# -- the style table ----------------------------------------------------------------------------------------------
# matplotlib's tab10, written out (not "C0", which follows whatever colour cycle is set): a colour per framework,
# in registry order (numpy blue, torch orange, jax green, tensorflow red, autograd purple, mxnet brown)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f")  # fmt: skip
# a marker per kind of mode (backends.MODES); a kind not named here takes the next of SPARE_MARKERS
MARKERS = {"eager": "o", "compiled step": "s", "compiled loop": "D"}
SPARE_MARKERS = ("^", "v", "P", "X", "*", "<", ">")
LINES = ("-", "--", ":", "-.")  # the first, second, … backend of a framework, in registry order
UNKNOWN = "#7f7f7f"  # a backend the registry does not name (an older run's): grey, its own kind's marker


@dataclass(frozen=True)
class Style:
    """How every plot draws one backend."""

    colour: str  # its framework's
    marker: str  # its kind of mode's
    linestyle: str  # its place among its framework's backends
    kind: str  # the kind of mode: one of backends.MODES

    def line(self) -> dict[str, Any]:
        return {"color": self.colour, "marker": self.marker, "linestyle": self.linestyle}


def kinds() -> list[str]:
    """The kinds of mode the registry names, eager first, then in registry order."""
    return sorted(dict.fromkeys(s.mode for s in backends.BACKENDS.values()), key=lambda k: k != "eager")


def marker(kind: str) -> str:
    spare = [k for k in kinds() if k not in MARKERS]
    return MARKERS.get(kind) or SPARE_MARKERS[spare.index(kind) % len(SPARE_MARKERS) if kind in spare else -1]


def styles() -> dict[str, Style]:
    """The style table: every backend of the registry, keyed by name."""
    frameworks = list(dict.fromkeys(s.framework for s in backends.BACKENDS.values()))
    table = {}
    for name, s in backends.BACKENDS.items():
        mine = [b for b, t in backends.BACKENDS.items() if t.framework == s.framework]
        table[name] = Style(PALETTE[frameworks.index(s.framework) % len(PALETTE)], marker(s.mode),
                            LINES[mine.index(name) % len(LINES)], s.mode)  # fmt: skip
    return table


STYLES = styles()


def look(backend: str, mode: str | None = None) -> Style:
    """A backend's style; one the registry does not name is grey, with the marker of ``mode``."""
    return STYLES.get(backend) or Style(UNKNOWN, marker(mode or "eager"), "-", mode or "eager")


def colour(backend: str) -> str:
    """A colour per framework, in registry order: a framework's modes share it."""
    return look(backend).colour


def kind_of(r: dict[str, Any]) -> str:
    """A row's kind of mode: the registry's, else what the row says."""
    spec = backends.BACKENDS.get(r["backend"])
    return spec.mode if spec else r.get("mode", "eager")


def label(r: dict[str, Any]) -> str:
    """The backend, and how far it trained where that is not the whole schedule."""
    short = r["epochs_trained"] < r["epochs"]
    return r["backend"] + (f" (after {r['epochs_trained']} of {r['epochs']} epochs)" if short else "")


def width(i: int) -> float:
    """Curves that agree draw on top of each other: the first drawn widest, so that every one stays visible."""
    return max(0.7, 2.8 - 0.2 * i)


def step_ticks(ax: Any) -> None:
    """A step axis of 300 or of 80,000 steps: a few round ticks, written 0, 20k, 40k, never run together."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True, steps=[1, 2, 2.5, 5, 10], min_n_ticks=2))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: step_count(x)))


def step_count(x: float) -> str:
    """``0``, ``300``, ``2.5k``, ``80k``, ``1.2M``."""
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.0f}"


def figures(x: float) -> int:
    """1 where one significant figure writes ``x`` (a power of ten, 5e-5), else 2."""
    return 1 if math.isclose(float(f"{x:.0e}"), x, rel_tol=1e-9) else 2


class Plain(LogFormatter):
    """A log axis's labels, on the ticks matplotlib's LogFormatter would label, written as a reader does:
    ``0.2``, ``1``, ``30``, ``1e-27``, ``1e8`` (not ``2 × 10⁻¹``)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        if not super().__call__(x, pos):
            return ""
        return f"{x:g}" if 1e-4 <= abs(x) < 1e5 else scientific(x, figures(x))


def save(fig: Any, path: Path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the plots -----------------------------------------------------------------------------------------------------
def fit_plot(path: Path, task: tasks.Task, rows: list[dict[str, Any]]) -> None:
    """One input and one output: the data and every backend's curve. Several inputs: predicted against
    measured. 0/1 targets: every backend's output by class. One-hot targets: the confusion matrix of the
    first backend, every one's accuracy."""
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    params = [{k: np.asarray(v) for k, v in r["params"].items()} for r in rows]
    y = task.y.reshape(len(task.y), -1)
    title = f"{task.name}: data and every backend's fit ({rows[0]['dtype']})"
    binary = bool(np.all((y == 0) | (y == 1)))
    if binary and y.shape[1] > 1 and np.all(y.sum(axis=1) == 1):
        title = confusion(ax, task, rows, params)
    elif binary and y.shape[1] == 1:  # two classes, one output (a logit or a probability): how it separates them
        outputs = [np.ravel(task.model(p, task.x, np)) for p in params]
        bins = np.histogram_bin_edges(outputs[0], 40)  # one set of bins: backends that agree draw the same steps
        for c, shade in ((0, "0.85"), (1, "0.6")):  # the first backend's, filled grey: the data's shape
            ax.hist(outputs[0][y[:, 0] == c], bins=bins, color=shade, label=f"class {c} ({rows[0]['backend']})")
        for i, (r, out) in enumerate(zip(rows, outputs, strict=True)):
            s = look(r["backend"], r.get("mode"))
            for c in (0, 1):
                ax.hist(out[y[:, 0] == c], bins=bins, histtype="step", color=s.colour, linestyle=s.linestyle,
                        linewidth=width(i) / 2, label=legend_label(r) if c else None)  # fmt: skip
        ax.set(xlabel="model output (light grey: samples of class 0, dark grey: class 1)", ylabel="samples")
        title = f"{task.name}: model output by true class, every backend's outline ({rows[0]['dtype']})"
    elif y.shape[1] == 1 and task.x[0].size == 1:
        ax.scatter(task.x.ravel(), y.ravel(), s=8, color="0.75", label="data", zorder=0)
        grid = np.linspace(task.x.min(), task.x.max(), 400).reshape(-1, *task.x.shape[1:])
        for i, (r, p) in enumerate(zip(rows, params, strict=True)):  # markers staggered: each one's kind shows
            ax.plot(grid.ravel(), np.ravel(task.model(p, grid, np)), label=legend_label(r), linewidth=width(i),
                    markevery=(7 * i % 40, 40), markersize=5, **look(r["backend"], r.get("mode")).line())  # fmt: skip
        pad = 0.25 * np.ptp(task.y)  # a run cut short may be far off: keep the data readable
        ax.set(xlabel="x", ylabel="y", ylim=(task.y.min() - pad, task.y.max() + pad))
    else:  # more than one input or output: predicted against measured
        for i, (r, p) in enumerate(zip(rows, params, strict=True)):
            s = look(r["backend"], r.get("mode"))
            ax.scatter(y.ravel(), np.ravel(task.model(p, task.x, np)), s=max(6, 40 - 3 * i), label=legend_label(r),
                       marker=s.marker, facecolors="none", edgecolors=s.colour, linewidths=0.8)  # fmt: skip
        ax.plot([task.y.min(), task.y.max()], [task.y.min(), task.y.max()], color="0.3", linewidth=1)
        ax.set(xlabel="y (data)", ylabel="ŷ (fitted)")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beside the data, never over it
    fig.tight_layout()
    save(fig, path)


def legend_label(r: dict[str, Any]) -> str:
    """``torch-compile (compiled)``, and how far it trained where that is not the whole schedule."""
    return label({**r, "backend": f"{r['backend']} ({kind_of(r)})"})


def confusion(ax: Any, task: tasks.Task, rows: list[dict[str, Any]], params: list[dict[str, Any]]) -> str:
    """Predicted class (the largest output) against the true one on the training data; returns the title."""
    truth = np.argmax(task.y, axis=1)
    predicted = [np.argmax(task.model(p, task.x, np), axis=1) for p in params]
    k = task.y.shape[1]
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (truth, predicted[0]), 1)
    ax.imshow(counts, cmap="Greys")  # grey: the colours are the frameworks'
    for (i, j), c in np.ndenumerate(counts):
        if c:
            ax.text(j, i, str(c), ha="center", va="center", fontsize=7, color="w" if c > counts.max() / 2 else "k")
    ax.set(xlabel="predicted class", ylabel="true class", xticks=range(k), yticks=range(k))
    ax.text(1.04, 1.0, "training accuracy", transform=ax.transAxes, va="top", fontsize=8, weight="bold")
    for n, (r, q) in enumerate(zip(rows, predicted, strict=True)):
        ax.text(1.04, 0.94 - 0.06 * n, f"{legend_label(r)}: {np.mean(q == truth):.4f}", transform=ax.transAxes,
                va="top", fontsize=8, color=colour(r["backend"]))  # fmt: skip
    return f"{task.name}: predicted against true class, {rows[0]['backend']} ({rows[0]['dtype']})"


def loss_plot(path: Path, task: str, rows: list[dict[str, Any]], dtypes: list[str]) -> None:
    """numpy's loss, step by step, for the shape of training (every backend's distance from it: agreement_plot)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, dtype in enumerate(dtypes):
        for r in (r for r in rows if r["dtype"] == dtype and r["backend"] == "numpy"):
            loss = np.asarray(r["losses"]["loss"])
            s = look("numpy")
            ax.plot(r["losses"]["step"], np.where(loss > 0, loss, np.nan), label=f"{legend_label(r)} {dtype}",
                    color=s.colour, linestyle=LINES[i % len(LINES)], linewidth=1.4 - 0.4 * i, marker=s.marker,
                    markevery=[len(loss) - 1])  # fmt: skip
    ax.set(yscale="log", xlabel="training step", ylabel="loss (log scale)", title=f"{task}: numpy's loss")
    ax.yaxis.set_major_formatter(Plain())
    ax.yaxis.set_minor_formatter(Plain(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    step_ticks(ax)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path)


def agreement_plot(path: Path, task: str, rows: list[dict[str, Any]], tols: dict[str, float]) -> None:
    """Small multiples, a panel per backend on shared axes: its distance from numpy's loss step by step,
    |a − b| / max(1, |a| + |b|) (what the suite's tolerance bounds), the largest up to each step, on a log
    axis with the tolerance of each dtype drawn; 0 (the same loss to the last bit) at the bottom."""
    dtypes = [d for d in tols if any(r["dtype"] == d and "loss_diffs" in r for r in rows)]
    found = {(r["backend"], r["dtype"]): r for r in rows if r["backend"] != "numpy" and "loss_diffs" in r}
    order = list(backends.BACKENDS)
    mine = sorted({b for b, _ in found}, key=lambda b: (order.index(b) if b in order else len(order), b))
    columns = min(5, len(mine))
    grid = math.ceil(len(mine) / columns)
    fig, axes = plt.subplots(grid, columns, figsize=(2.15 * columns + 1.0, 1.9 * grid + 1.4), sharex=True,
                             sharey=True, squeeze=False)  # fmt: skip
    last = max(max(r["loss_diffs"]["step"], default=0) for r in found.values())
    notes = []
    for ax, b in zip(axes.flat, mine, strict=False):
        s, said, trained = look(b), [], {}
        for k, dtype in enumerate(dtypes):
            named = f" ({dtype})" if len(dtypes) > 1 else ""
            if math.isfinite(tols[dtype]):
                ax.axhline(tols[dtype], color="k", linestyle=":", linewidth=1.2)
                limit = scientific(tols[dtype], figures(tols[dtype]))
                ax.text(last, tols[dtype] * 2, f"tolerance {limit}{named}", ha="right", va="bottom", fontsize=6.5)
            r = found.get((b, dtype))
            if r is None:
                continue
            d = np.maximum.accumulate(np.maximum(np.asarray(r["loss_diffs"]["loss"], dtype=float), EXACT))
            ax.plot(r["loss_diffs"]["step"], d, color=s.colour, linestyle=s.linestyle, linewidth=1.6 - 0.6 * k,
                    marker=s.marker, markevery=[len(d) - 1], markersize=5)  # fmt: skip
            largest = max(r["loss_diffs"]["loss"], default=0.0)
            said.append((f"largest {scientific(largest)}" if largest else "always 0") + named)
            if r["epochs_trained"] < r["epochs"]:
                trained[dtype] = f"{r['epochs_trained']} of {r['epochs']} epochs"
        if len(set(trained.values())) == 1 and len(trained) == len(said):  # cut short alike in every dtype
            said.append(next(iter(trained.values())))
        else:
            said += [f"{v} ({d})" for d, v in trained.items()]
        notes.append(ax.text(0.03, 0.97, "\n".join(said), transform=ax.transAxes, va="top", fontsize=7))
        ax.set_title(f"{b} ({s.kind})", fontsize=9, color=s.colour)
        ax.set(yscale="log")
        ax.yaxis.set_major_locator(FixedLocator([EXACT, 1e-15, 1e-12, 1e-9, 1e-6, 1e-3, 1.0]))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "0" if v <= EXACT else scientific(v, 1)))
        ax.yaxis.set_minor_locator(FixedLocator([]))
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", color="0.93")
        step_ticks(ax)
    lines = max((len(t.get_text().splitlines()) for t in notes), default=1)
    axes[0][0].set_ylim(EXACT / 3, 3.0 * 10 ** (1.5 * (lines - 1)))  # shared: headroom above 1 for the notes
    for ax in list(axes.flat)[len(mine) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.tick_params(labelleft=True)
    fig.supylabel("distance from numpy's loss, relative\n(the largest so far; 0: the same to the last bit)", fontsize=9)
    fig.supxlabel("training step", fontsize=9)
    fig.suptitle(f"{task}: how far each backend's loss is from numpy's, step by step ({', '.join(dtypes)})\n"
                 "dotted: the suite's tolerance; a line that stops early trained part of the schedule, for time",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    save(fig, path)


def times(x: float) -> str:
    """A ratio as a cell prints it: ``0.17``, ``1.0``, ``3.5``, ``210``, ``4.8k``, ``20k``."""
    if x < 0.995:
        return f"{x:.2g}"
    if x < 9.95:
        return f"{x:.1f}"
    if x < 999.5:
        return f"{x:.0f}"
    return f"{x / 1e3:.1f}k" if x < 9950 else f"{x / 1e3:.0f}k"


def summary_plot(path: Path, rows: list[dict[str, Any]], dtype: str, names: list[str],
                 duration: Callable[[float], str] | None = None) -> None:  # fmt: skip
    """A heat map, task × mode: each mode's time per step (the median) over the task's fastest step-wise mode's
    (eager or compiled step: a compiled loop is another thing, and beats it below 1), on a log colour scale, the
    figure printed in each cell; rows the modes grouped by kind (eager, compiled step, compiled loop, each named
    on the right), within a kind by framework (registry order), labelled in the framework's colour with the
    kind's marker; a case without a figure grey, with "—" (the results' failure list says why); under each
    column, the reference's time (``duration`` writes it)."""
    found = {(r["task"], r["backend"]): r for r in rows if r["kind"] == "speed" and r["dtype"] == dtype}
    names = [n for n in names if any(t == n for t, _ in found)]
    order, kinds_here = list(backends.BACKENDS), kinds()
    mode_kind = {b: kind_of(r) for (_, b), r in found.items()}
    modes = sorted({b for _, b in found}, key=lambda b: (kinds_here.index(mode_kind[b]) if mode_kind[b] in kinds_here
                                                         else len(kinds_here), order.index(b) if b in order
                                                         else len(order), b))  # fmt: skip
    ratios = np.full((len(modes), len(names)), np.nan)
    fastest: list[float | None] = []
    for j, t in enumerate(names):
        timed = {b: found[(t, b)]["median_s"] for b in modes if found.get((t, b), {}).get("median_s")}
        stepwise = [v for b, v in timed.items() if mode_kind[b] != backends.LOOP] or list(timed.values())
        fastest.append(min(stepwise) if stepwise else None)
        for i, b in enumerate(modes):
            if b in timed:
                ratios[i, j] = timed[b] / min(stepwise)
    finite = np.isfinite(ratios).any()
    top = max(10.0, float(np.nanmax(ratios)) if finite else 10.0)
    norm = LogNorm(vmin=min(1.0, float(np.nanmin(ratios)) if finite else 1.0), vmax=top)
    cmap = plt.get_cmap("YlOrRd").with_extremes(bad="0.88")
    wide = max(6.4, 2.9 + 0.62 * len(names))  # inches: a few tasks still leave the title its room
    fig, ax = plt.subplots(figsize=(wide, 1.9 + 0.3 * len(modes)))
    image = ax.imshow(np.ma.masked_invalid(ratios), cmap=cmap, norm=norm, aspect="auto")
    for (i, j), v in np.ndenumerate(ratios):
        if np.isfinite(v):
            dark = norm(v) > 0.62
            ax.text(j, i, times(v), ha="center", va="center", fontsize=7.5, color="w" if dark else "k",
                    weight="bold" if abs(v - 1) < 5e-4 else "normal")  # fmt: skip
        else:
            ax.text(j, i, "—", ha="center", va="center", fontsize=8, color="0.35")
    for i, (a, b) in enumerate(zip(modes, modes[1:], strict=False)):  # a white rule between frameworks, a black
        if mode_kind[a] != mode_kind[b]:  # one between kinds
            ax.axhline(i + 0.5, color="k", linewidth=1.5)
        elif look(a).colour != look(b).colour or backends.BACKENDS.get(a) is None:
            ax.axhline(i + 0.5, color="w", linewidth=3)
    for k in dict.fromkeys(mode_kind[b] for b in modes):  # the kind's name beside its rows, on the right
        rows_of_kind = [i for i, b in enumerate(modes) if mode_kind[b] == k]
        ax.text(len(names) - 0.5 + 0.08, (rows_of_kind[0] + rows_of_kind[-1]) / 2, k.replace(" ", "\n"), ha="left",
                va="center", fontsize=7.5, clip_on=False)  # fmt: skip
    ax.set_yticks(range(len(modes)), modes, fontsize=8)
    for tick, b in zip(ax.get_yticklabels(), modes, strict=True):
        tick.set_color(look(b).colour)
    ax.tick_params(axis="y", length=0, pad=14)  # room for the mode's marker between its name and its row
    beside = offset_copy(ax.get_yaxis_transform(), fig=fig, x=-7, units="points")  # 7 points left of the map
    for i, b in enumerate(modes):
        s = look(b, next((r.get("mode") for (_, m), r in found.items() if m == b and r.get("mode")), None))
        ax.plot(0, i, marker=s.marker, color=s.colour, markersize=5, clip_on=False, transform=beside)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.xaxis.tick_top()
    ax.set_xticks(range(len(names)), names, fontsize=8, rotation=30, ha="left", rotation_mode="anchor")
    ax.tick_params(axis="x", length=0)
    say = duration or (lambda s: f"{s:.3g} s")
    under = ax.secondary_xaxis("bottom")
    crowded = len(names) > 12
    under.set_xticks(range(len(names)), ["—" if t is None else say(t) for t in fastest], fontsize=7,
                     rotation=30 if crowded else 0, ha="right" if crowded else "center")  # fmt: skip
    under.tick_params(length=0)
    under.set_xlabel("1.0: the task's fastest step-wise time per step", fontsize=8)
    bar = fig.colorbar(image, ax=ax, fraction=0.035, pad=0.1)
    bar.set_label("× the task's fastest step-wise mode (log scale)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}" if v < 1000 else f"{v / 1e3:g}k"))
    handles = [Line2D([], [], color="0.3", marker=marker(k), linestyle="none", label=k)
               for k in kinds() if any(look(b).kind == k for b in modes)]  # fmt: skip
    fig.legend(handles=handles, loc="lower left", fontsize=8, frameon=False, ncols=len(handles),
               handletextpad=0.2, borderaxespad=0.3)  # fmt: skip
    title = [f"Time per training step ({dtype}): × the fastest step-wise mode (eager or compiled step) of each task, "
             "median of each mode's processes, the modes by kind",
             "1.0 (bold): the task's fastest step-wise mode, its time under the column; a compiled loop under 1 beats "
             "it; —: no figure (the results' Failed cases say why)"]  # fmt: skip
    fig.suptitle("\n".join(textwrap.fill(t, int(13 * wide)) for t in title), fontsize=8.5)
    fig.tight_layout(rect=(0, 0.04, 1, 1))  # the legend of the markers below
    save(fig, path)


def scaling_plot(path: Path, fits: list[dict[str, Any]], bandwidth: float | None) -> None:
    dtypes = sorted({f["dtype"] for f in fits}, reverse=True)
    fig, axes = plt.subplots(1, len(dtypes), figsize=(6 * len(dtypes) + 2.5, 5), squeeze=False)
    for ax, dtype in zip(axes[0], dtypes, strict=True):
        mine = [f for f in fits if f["dtype"] == dtype]
        for f in mine:
            s = look(f["backend"], f["mode"])
            ax.plot(f["n"], f["t"], label=f"{f['backend']} ({s.kind})", markersize=5, **s.line())
        n = np.array(sorted({x for f in mine for x in f["n"]}), dtype=float)
        if bandwidth:  # None: the floor was not measured (the results say why)
            ax.plot(n, 2 * n * np.dtype(dtype).itemsize / bandwidth, color="k", linestyle=":", label="memory floor")
        ax.set(xscale="log", yscale="log", xlabel="N (points)", ylabel="time per step (s)",
               title=f"quadratic, time per step ({dtype})")  # fmt: skip
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    save(fig, path)


def plans(folder: Path, rows: list[dict[str, Any]], fits: list[dict[str, Any]], bandwidth: float | None,
          names: list[str], tols: dict[tuple[str, str], float] | None = None,
          duration: Callable[[float], str] | None = None) -> list[tuple[Path, Callable[[], None]]]:  # fmt: skip
    """Every plot there is data for: its path, and the call that draws it (the report runs each on its own).
    ``tols``: the suite's tolerance per (task, dtype), drawn in the agreement plots; ``duration``: how a time
    per step is written under the summary's columns."""
    made: list[tuple[Path, Callable[[], None]]] = []
    for dtype in dict.fromkeys(r["dtype"] for r in rows if r["kind"] == "speed" and r.get("median_s")):
        path = folder / f"summary_{dtype}.png"
        made.append((path, partial(summary_plot, path, rows, dtype, names, duration)))
    for name in names:
        done = [r for r in rows if r["kind"] == "speed" and r.get("task") == name and "params" in r]
        if not done:
            continue
        fit_rows = [r for r in done if r["dtype"] == "float64"] or done
        dtypes = sorted({r["dtype"] for r in done}, reverse=True)
        limits = {d: (tols or {}).get((name, d), math.nan) for d in dtypes}  # nan: no tolerance drawn
        made += [
            (folder / f"fit_{name}.png", partial(fit_plot, folder / f"fit_{name}.png", tasks.get(name), fit_rows)),
            (folder / f"loss_{name}.png", partial(loss_plot, folder / f"loss_{name}.png", name, done, dtypes)),
        ]
        if any(r["backend"] != "numpy" and "loss_diffs" in r for r in done):  # numpy alone: nothing to compare
            path = folder / f"agreement_{name}.png"
            made.append((path, partial(agreement_plot, path, name, done, limits)))
    if fits:
        made.append((folder / "scaling.png", partial(scaling_plot, folder / "scaling.png", fits, bandwidth)))
    return made
