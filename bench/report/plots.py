"""The pictures in results/plots/: the time per step of every task and mode, each task's data with every
backend's fit, its loss curve and every backend's distance from numpy step by step, scaling."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import backends  # noqa: E402
import tasks  # noqa: E402
from bench.core.agreement import tol

STYLES = ["-", "--", "-.", ":"]
EXACT = 1e-18  # where a difference of 0 (the same loss to the last bit) is drawn on a log axis


def label(r: dict[str, Any]) -> str:
    """The backend, and how far it trained where that is not the whole schedule."""
    short = r["epochs_trained"] < r["epochs"]
    return r["backend"] + (f" (after {r['epochs_trained']} of {r['epochs']} epochs)" if short else "")


def style(i: int) -> dict[str, Any]:
    """Backends that agree draw on top of each other: vary the dash so every one stays visible."""
    return {"linestyle": STYLES[i % len(STYLES)], "linewidth": max(0.6, 2.5 - 0.2 * i)}


def colour(backend: str) -> str:
    """A colour per framework, in registry order: a framework's modes share it."""
    frameworks = list(dict.fromkeys(s.framework for s in backends.BACKENDS.values()))
    return f"C{frameworks.index(backends.BACKENDS[backend].framework) % 10}"


def mode_line(backend: str, mode: str) -> dict[str, Any]:
    """A line per mode: the framework's colour, dashed where compiled, a marker per mode of the framework."""
    mine = [b for b, s in backends.BACKENDS.items() if s.framework == backends.BACKENDS[backend].framework]
    return {"color": colour(backend), "linestyle": "--" if mode == "compiled" else "-",
            "marker": "o^vD"[mine.index(backend) % 4], "markersize": 4}  # fmt: skip


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
        for i, (r, out) in enumerate(zip(rows, outputs, strict=True)):
            for c in (0, 1):
                ax.hist(out[y[:, 0] == c], bins=bins, histtype="step", color=f"C{c}", label=label(r) if c else None,
                        **style(i))  # fmt: skip
        ax.set(xlabel="model output (blue: samples of class 0, orange: class 1)", ylabel="samples")
        title = f"{task.name}: model output by true class ({rows[0]['dtype']})"
    elif y.shape[1] == 1 and task.x[0].size == 1:
        ax.scatter(task.x.ravel(), y.ravel(), s=8, color="0.6", label="data", zorder=0)
        grid = np.linspace(task.x.min(), task.x.max(), 400).reshape(-1, *task.x.shape[1:])
        for i, (r, p) in enumerate(zip(rows, params, strict=True)):
            ax.plot(grid.ravel(), np.ravel(task.model(p, grid, np)), label=label(r), **style(i))
        pad = 0.25 * np.ptp(task.y)  # a run cut short may be far off: keep the data readable
        ax.set(xlabel="x", ylabel="y", ylim=(task.y.min() - pad, task.y.max() + pad))
    else:  # more than one input or output: predicted against measured
        for i, (r, p) in enumerate(zip(rows, params, strict=True)):
            ax.scatter(y.ravel(), np.ravel(task.model(p, task.x, np)), s=30 - 3 * i, label=label(r),
                       facecolors="none", edgecolors=f"C{i}")  # fmt: skip
        ax.plot([task.y.min(), task.y.max()], [task.y.min(), task.y.max()], color="0.3", linewidth=1)
        ax.set(xlabel="y (data)", ylabel="ŷ (fitted)")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beside the data, never over it
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion(ax: Any, task: tasks.Task, rows: list[dict[str, Any]], params: list[dict[str, Any]]) -> str:
    """Predicted class (the largest output) against the true one on the training data; returns the title."""
    truth = np.argmax(task.y, axis=1)
    predicted = [np.argmax(task.model(p, task.x, np), axis=1) for p in params]
    k = task.y.shape[1]
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (truth, predicted[0]), 1)
    ax.imshow(counts, cmap="Blues")
    for (i, j), c in np.ndenumerate(counts):
        if c:
            ax.text(j, i, str(c), ha="center", va="center", fontsize=7, color="w" if c > counts.max() / 2 else "k")
    ax.set(xlabel="predicted class", ylabel="true class", xticks=range(k), yticks=range(k))
    accuracy = "\n".join(f"{label(r)}: {np.mean(q == truth):.4f}" for r, q in zip(rows, predicted, strict=True))
    ax.text(1.02, 1.0, "training accuracy\n" + accuracy, transform=ax.transAxes, va="top", fontsize=8)
    return f"{task.name}: predicted against true class, {rows[0]['backend']} ({rows[0]['dtype']})"


def loss_plot(path: Path, task: str, rows: list[dict[str, Any]], dtypes: list[str]) -> None:
    """numpy's loss, step by step, for the shape of training (every backend's distance from it: agreement_plot)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, dtype in enumerate(dtypes):
        for r in (r for r in rows if r["dtype"] == dtype and r["backend"] == "numpy"):
            loss = np.asarray(r["losses"]["loss"])
            ax.plot(r["losses"]["step"], np.where(loss > 0, loss, np.nan), label=f"{label(r)} {dtype}", **style(i))
    ax.set(yscale="log", xlabel="step", ylabel="loss", title=f"{task}: numpy's loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def agreement_plot(path: Path, task: str, rows: list[dict[str, Any]], tols: dict[str, float]) -> None:
    """Per dtype, every backend's distance from numpy's loss, |a − b| / max(1, |a| + |b|) (what the suite's
    tolerance bounds), the largest up to each step, on a log axis with the tolerance drawn; 0 at EXACT."""
    dtypes = [d for d in tols if any(r["dtype"] == d and "loss_diffs" in r for r in rows)]
    fig, axes = plt.subplots(1, len(dtypes), figsize=(5.5 * len(dtypes) + 2.5, 4.5), squeeze=False, sharey=True)
    for ax, dtype in zip(axes[0], dtypes, strict=True):
        mine = [r for r in rows if r["dtype"] == dtype and r["backend"] != "numpy" and "loss_diffs" in r]
        for i, r in enumerate(mine):
            d = np.maximum.accumulate(np.maximum(np.asarray(r["loss_diffs"]["loss"], dtype=float), EXACT))
            ax.plot(r["loss_diffs"]["step"], d, label=label(r), color=f"C{i % 10}", **style(i))
        ax.axhline(tols[dtype], color="k", linestyle=":", linewidth=1.5, label="the suite's tolerance")
        ax.set(yscale="log", ylim=(EXACT / 3, 1.0), xlabel="step", title=f"{task} ({dtype}): distance from numpy")
    axes[0][0].set_ylabel(
        f"largest |loss − numpy's| / max(1, |loss| + |numpy's|)\nup to the step (0 drawn at {EXACT:g})"
    )
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_plot(path: Path, rows: list[dict[str, Any]], dtype: str, names: list[str]) -> None:
    """Every task × mode: the time per step (median, the rerun interval as a whisker) on a log axis, the modes
    grouped by framework (registry order: eager beside compiled), a colour per framework, a filled marker
    for a compiled mode."""
    timed = {(r["task"], r["backend"]): r for r in rows
             if r["kind"] == "speed" and r["dtype"] == dtype and r.get("median_s")}  # fmt: skip
    names = [n for n in names if any(t == n for t, _ in timed)]
    modes = [b for b in backends.BACKENDS if any(m == b for _, m in timed)]
    columns = min(4, len(names))
    grid = (len(names) + columns - 1) // columns
    fig, axes = plt.subplots(grid, columns, figsize=(3.3 * columns + 1.2, 0.28 * len(modes) * grid + 1.4),
                             squeeze=False, sharey=True)  # fmt: skip
    for ax, name in zip(axes.flat, names, strict=False):
        for y, b in enumerate(modes):
            r = timed.get((name, b))
            if r is None:
                continue
            c, compiled = colour(b), r.get("mode") == "compiled"
            ax.errorbar(r["median_s"], y, xerr=[[r["median_s"] - r["ci_low_s"]], [r["ci_high_s"] - r["median_s"]]],
                        fmt="s" if compiled else "o", color=c, markerfacecolor=c if compiled else "white",
                        markersize=5, capsize=2, linewidth=1)  # fmt: skip
        for y, (a, b) in enumerate(zip(modes, modes[1:], strict=False)):
            if backends.BACKENDS[a].framework != backends.BACKENDS[b].framework:
                ax.axhline(y + 0.5, color="0.85", linewidth=0.8)
        ax.set(xscale="log", title=name, yticks=range(len(modes)), yticklabels=modes, ylim=(len(modes) - 0.5, -0.5))
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", which="major", color="0.92")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("time per step (s)")
    fig.suptitle(f"Time per training step ({dtype}), log scale: the median, and the interval a rerun falls in\n"
                 "open marker: eager; filled: compiled; a colour per framework", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scaling_plot(path: Path, fits: list[dict[str, Any]], bandwidth: float | None) -> None:
    dtypes = sorted({f["dtype"] for f in fits}, reverse=True)
    fig, axes = plt.subplots(1, len(dtypes), figsize=(6 * len(dtypes) + 2.5, 5), squeeze=False)
    for ax, dtype in zip(axes[0], dtypes, strict=True):
        mine = [f for f in fits if f["dtype"] == dtype]
        for f in mine:
            ax.plot(f["n"], f["t"], label=f"{f['backend']} ({f['mode']})", **mode_line(f["backend"], f["mode"]))
        n = np.array(sorted({x for f in mine for x in f["n"]}), dtype=float)
        if bandwidth:  # None: the floor was not measured (the results say why)
            ax.plot(n, 2 * n * np.dtype(dtype).itemsize / bandwidth, color="k", linestyle=":", label="memory floor")
        ax.set(xscale="log", yscale="log", xlabel="N (points)", ylabel="time per step (s)",
               title=f"quadratic, time per step ({dtype})")  # fmt: skip
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plans(folder: Path, rows: list[dict[str, Any]], fits: list[dict[str, Any]], bandwidth: float | None,
          names: list[str]) -> list[tuple[Path, Callable[[], None]]]:  # fmt: skip
    """Every plot there is data for: its path, and the call that draws it (the report runs each on its own)."""
    made: list[tuple[Path, Callable[[], None]]] = []
    for dtype in dict.fromkeys(r["dtype"] for r in rows if r["kind"] == "speed" and r.get("median_s")):
        path = folder / f"summary_{dtype}.png"
        made.append((path, partial(summary_plot, path, rows, dtype, names)))
    for name in names:
        done = [r for r in rows if r["kind"] == "speed" and r.get("task") == name and "params" in r]
        if not done:
            continue
        fit_rows = [r for r in done if r["dtype"] == "float64"] or done
        dtypes = sorted({r["dtype"] for r in done}, reverse=True)
        tols = {d: tol(tasks.get(name), d) for d in dtypes}
        made += [
            (folder / f"fit_{name}.png", partial(fit_plot, folder / f"fit_{name}.png", tasks.get(name), fit_rows)),
            (folder / f"loss_{name}.png", partial(loss_plot, folder / f"loss_{name}.png", name, done, dtypes)),
            (
                folder / f"agreement_{name}.png",
                partial(agreement_plot, folder / f"agreement_{name}.png", name, done, tols),
            ),  # fmt: skip
        ]
    if fits:
        made.append((folder / "scaling.png", partial(scaling_plot, folder / "scaling.png", fits, bandwidth)))
    return made
