"""The pictures: one style per backend in every plot (a colour per framework, a marker per kind of mode), the
summary's heat map, the agreement plot's small multiples, axes that stay readable. Drawn from made-up rows:
no timing runs here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import backends
import tasks
from bench.host import envs
from bench.report import formatting, plots


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every figure a plot saves, kept open (drawn) for the test to read."""
    kept: list[Any] = []

    def save(fig: Any, path: Path) -> None:
        fig.canvas.draw()
        kept.append(fig)

    monkeypatch.setattr(plots, "save", save)
    yield kept
    for fig in kept:
        plots.plt.close(fig)


def speed_row(task: str, backend: str, median: float | None, steps: int = 300, epochs: int = 1,
              dtype: str = "float64") -> dict[str, Any]:  # fmt: skip
    """A timed (or, with ``median`` None, failed) case of one task and mode."""
    row: dict[str, Any] = {"kind": "speed", "task": task, "backend": backend, "dtype": dtype}
    if median is None:
        return row | {"error": "it broke"}
    diff = 0.0 if backend == "numpy" else 1e-16 * (1 + list(backends.BACKENDS).index(backend))
    step = list(range(0, steps + 1, max(1, steps // 100)))
    return row | {"mode": backends.BACKENDS[backend].mode, "median_s": median, "epochs_trained": epochs,
                  "epochs": epochs, "losses": {"step": step, "loss": [1.0 / (1 + s) for s in step]},
                  "loss_diffs": {"step": step, "loss": [diff] * len(step)}}  # fmt: skip


def test_one_style_per_backend_keyed_by_the_registry():
    """A framework's backends share a colour, and differ in line style; a kind of mode has one marker; no two
    backends look alike."""
    s = plots.STYLES
    assert list(s) == list(backends.BACKENDS)
    for a, sa in backends.BACKENDS.items():
        for b, sb in backends.BACKENDS.items():
            assert (s[a].colour == s[b].colour) == (sa.framework == sb.framework), (a, b)
            assert (s[a].marker == s[b].marker) == (sa.mode == sb.mode), (a, b)
            assert s[a].kind == sa.mode
            if a != b:
                assert (s[a].colour, s[a].marker, s[a].linestyle) != (s[b].colour, s[b].marker, s[b].linestyle)
    assert {x.marker for n, x in s.items() if backends.BACKENDS[n].mode == "eager"} == {"o"}


def test_a_fourth_kind_of_mode_gets_a_marker_of_its_own(monkeypatch):
    """A registry with a kind of mode the style table does not name draws a marker of its own for it."""
    spec = backends.Spec("jax-loop", "jax", "main", "backends.jax_loop:JaxLoop", mode="compiled epoch")
    monkeypatch.setattr(backends, "BACKENDS", {**backends.BACKENDS, spec.name: spec})
    table = plots.styles()
    markers = {k: {x.marker for x in table.values() if x.kind == k} for k in (*backends.MODES, "compiled epoch")}
    assert all(len(m) == 1 for m in markers.values()) and len(set.union(*markers.values())) == 4
    assert spec.compiles and table["jax-loop"].colour == table["jax"].colour
    assert table["jax-loop"].linestyle not in {table["jax"].linestyle, table["jax-jit"].linestyle}


def test_the_summary_is_a_heat_map_of_times_the_fastest(figures):
    names = ["linear", "digits"]
    rows = [speed_row("linear", b, t) for b, t in (("numpy", 3e-6), ("jax", 6.3e-4), ("jax-jit", 5e-7))]
    rows += [speed_row("digits", "numpy", 3e-5), speed_row("digits", "jax", None), speed_row("digits", "jax-jit", 2e-5)]
    plots.summary_plot(Path("unused.png"), rows, "float64", names, lambda s: f"{s * 1e9:.0f} ns")
    (fig,) = figures
    ax = fig.axes[0]
    shown = np.ma.filled(ax.images[0].get_array(), np.nan)
    expect = np.array([[6.0, 1.5], [1260.0, np.nan], [1.0, 1.0]])  # rows numpy, jax, jax-jit; columns the tasks
    np.testing.assert_allclose(shown, expect, rtol=1e-12)
    assert type(ax.images[0].norm).__name__ == "LogNorm" and ax.images[0].norm.vmin == 1.0
    cells = [t.get_text() for t in ax.texts]
    assert cells == ["6.0", "1.5", "1.3k", "—", "1.0", "1.0"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["numpy", "jax", "jax-jit"]
    assert [t.get_color() for t in ax.get_yticklabels()] == [plots.colour(b) for b in ("numpy", "jax", "jax-jit")]
    assert [line.get_marker() for line in ax.lines if line.get_marker() != "None"] == [
        plots.STYLES[b].marker for b in ("numpy", "jax", "jax-jit")
    ]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    (under,) = ax.child_axes  # the secondary x axis below the map
    assert [t.get_text() for t in under.get_xticklabels()] == ["500 ns", "20000 ns"]  # the fastest's time


def test_agreement_is_a_panel_per_backend_with_the_tolerance_and_step_ticks_that_never_collide(figures):
    """parabola-sgd's 80,000 steps: ticks written 0, 25k, …, apart from each other; each backend in a panel of
    its own, in its style, the suite's tolerance drawn in each, the y axis said in words."""
    mine = ["numpy", "torch", "torch-compile", "jax-jit", "mxnet-gluon"]
    rows = [speed_row("parabola-sgd", b, 1e-6, steps=80_000, epochs=100) for b in mine]
    rows[1] |= {"epochs_trained": 14}  # cut short: its panel says so
    plots.agreement_plot(Path("unused.png"), "parabola-sgd", rows, {"float64": 1e-9})
    (fig,) = figures
    panels = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in panels] == [f"{b} ({backends.BACKENDS[b].mode})" for b in mine[1:]]
    renderer = fig.canvas.get_renderer()
    for ax, b in zip(panels, mine[1:], strict=True):
        data = [line for line in ax.lines if len(line.get_xdata()) > 2]
        assert len(data) == 1 and data[0].get_color() == plots.colour(b)
        assert data[0].get_marker() == plots.STYLES[b].marker and data[0].get_linestyle() == plots.STYLES[b].linestyle
        assert any(list(line.get_ydata()) == [1e-9, 1e-9] for line in ax.lines), "no tolerance line"
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticklabels() if t.get_text() and low <= t.get_position()[0] <= high]
        assert {t.get_text() for t in ticks} <= {"0", "20k", "25k", "40k", "50k", "60k", "75k", "80k"}
        boxes = sorted((t.get_window_extent(renderer) for t in ticks), key=lambda b: b.x0)
        assert len(boxes) >= 2 and all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:], strict=False)), "ticks collide"
    assert "14 of 100 epochs" in panels[0].texts[-1].get_text()
    assert "distance from numpy's loss, relative" in fig._supylabel.get_text()
    assert "|" not in fig._supylabel.get_text()  # words, not a formula


@pytest.mark.parametrize("steps", [10, 300, 2_500, 80_000, 1_200_000])
def test_step_ticks_are_round_and_few(figures, steps):
    fig, ax = plots.plt.subplots(figsize=(2, 1.5))
    ax.plot([0, steps], [1, 1])
    plots.step_ticks(ax)
    plots.save(fig, Path("unused.png"))
    low, high = ax.get_xlim()
    said = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and low <= t.get_position()[0] <= high]
    assert 2 <= len(said) <= 6 and all(len(s) <= 5 for s in said), said


def test_every_plot_draws_a_backend_in_the_same_colour_and_marker(figures):
    """scaling, fit and loss: a backend's line has its framework's colour and its kind's marker, whatever
    else the plot draws (the matplotlib cycle would give torch-compile another colour in each)."""
    t = tasks.get("mlp")
    mine = ["numpy", "torch-compile", "jax-jit", "mxnet-gluon"]
    params = {k: v.tolist() for k, v in t.init.items()}
    rows = [speed_row("mlp", b, 1e-6) | {"params": params} for b in mine]
    fits = [{"backend": b, "mode": backends.BACKENDS[b].mode, "dtype": "float64", "n": [100, 10_000],
             "t": [1e-6, 1e-5]} for b in mine]  # fmt: skip
    plots.fit_plot(Path("unused.png"), t, rows)
    plots.scaling_plot(Path("unused.png"), fits, 1e10)
    plots.loss_plot(Path("unused.png"), "mlp", rows, ["float64"])
    fit, scaling, loss = figures
    for fig in (fit, scaling):
        drawn = {line.get_label().split(" ")[0]: line for line in fig.axes[0].lines if line.get_label()[0] != "_"}
        for b in mine:
            assert drawn[b].get_color() == plots.colour(b) and drawn[b].get_marker() == plots.STYLES[b].marker, b
            assert f"({backends.BACKENDS[b].mode})" in drawn[b].get_label()
    (numpy,) = [line for line in loss.axes[0].lines if line.get_label().startswith("numpy")]
    assert numpy.get_color() == plots.colour("numpy") and numpy.get_marker() == "o"


def test_numbers_as_a_reader_writes_them():
    for say in (plots.scientific, formatting.scientific):
        assert [say(x) for x in (1.7e-15, 2e-9, 0.0, 3.14159, 2.5e8)] == ["1.7e-15", "2.0e-9", "0", "3.1", "2.5e8"]
    assert plots.scientific(1e-9, 1) == "1e-9" and plots.scientific(1.0, 1) == "1"
    fig, ax = plots.plt.subplots()
    ax.set(yscale="log", ylim=(1e-30, 1e8))
    ax.yaxis.set_major_formatter(plots.Plain())
    ax.yaxis.set_major_locator(plots.FixedLocator([10.0**-17, 0.01, 1.0, 1000.0, 1e8]))
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1e-17", "0.01", "1", "1000", "1e8"]
    plots.plt.close(fig)
    assert [plots.times(x) for x in (1.0, 3.46, 9.96, 210.4, 4_810, 19_800)] == ["1.0", "3.5", "10", "210", "4.8k",
                                                                                 "20k"]  # fmt: skip
    assert [plots.step_count(x) for x in (0, 300, 2_500, 80_000, 1_200_000)] == ["0", "300", "2.5k", "80k", "1.2M"]


def test_the_plots_import_nothing_above_them():
    """bench.report.plots takes the tolerances and the time format as arguments: drawing imports neither the
    comparison nor the report (nor anything of bench but what it imported before)."""
    code = (
        "import sys, json; from pathlib import Path; from bench.report import plots; "
        "rows = [{'kind': 'speed', 'task': 'linear', 'backend': b, 'dtype': 'float64', 'median_s': 1e-6, "
        "'params': {}, 'epochs_trained': 1, 'epochs': 1} for b in ('numpy', 'torch')]; "
        "plots.plans(Path('.'), rows, [], None, ['linear'], {('linear', 'float64'): 1e-9}, str); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('bench'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=envs.ROOT, capture_output=True, text=True, check=True)
    assert set(json.loads(out.stdout)) <= {
        "bench",
        "bench.core",
        "bench.core.agreement",
        "bench.core.records",
        "bench.report",
        "bench.report.formatting",
        "bench.report.plots",
    }
