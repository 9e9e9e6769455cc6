"""The answer per kind of mode (``backends.MODES``): the fastest mode of each kind for a task, against the
fastest of another framework of the same kind, and after how many steps a compiled mode has paid for its
first call (tracing and compiling) against an eager mode.

A compiled loop is never ranked against step-wise modes unlabelled: every figure here names its kind."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import backends
from bench.core import stats
from bench.report.formatting import duration, number


@dataclass(frozen=True)
class Payoff:
    """When a compiled mode pays for its first call against an eager mode, on one task in one dtype: after
    ``steps`` steps (interval ``low``–``high``, from the step times' intervals; ``high`` infinite where they
    overlap), or never (``steps`` None: its step is not faster). ``extra_s``: its first call's seconds over
    the eager mode's; ``saved_s``: the eager step's median less its own."""

    task: str
    dtype: str
    backend: str
    mode: str
    against: str  # the eager mode: the framework's own, or the fastest of the task
    own: bool  # whether ``against`` is the backend's framework's eager mode
    extra_s: float
    saved_s: float
    steps: float | None
    low: float | None
    high: float | None

    def text(self) -> str:
        """``41,000 (35,000–50,000)``, ``at once`` or ``never``."""
        if self.steps is None:
            return "never"
        if self.steps == 0:
            return "at once"
        high = "∞" if self.high == float("inf") else whole(self.high)
        return f"{whole(self.steps)} ({whole(self.low)}–{high})"

    def record(self) -> dict[str, Any]:
        """As results.json and break_even.csv hold it (an infinite end as None: JSON has no infinity)."""
        return {k: (None if v == float("inf") else v) for k, v in asdict(self).items()}


def whole(steps: float | None) -> str:
    """A count of steps to three significant figures: ``67,600``, ``247``, ``0.547``."""
    if steps is None:
        return "—"
    if steps < 100:
        return number(steps)
    return f"{round(steps, 2 - math.floor(math.log10(steps))):,.0f}"


def eager_of(backend: str) -> str | None:
    """The eager mode of a backend's framework: the first eager backend of that framework in the registry."""
    spec = backends.BACKENDS.get(backend)
    if spec is None:
        return None
    mine = (n for n, s in backends.BACKENDS.items() if s.framework == spec.framework and s.mode == backends.EAGER)
    return next(mine, None)


def mode_of(r: dict[str, Any]) -> str:
    """A row's kind of mode: the registry's, else what the row says."""
    spec = backends.BACKENDS.get(r["backend"])
    return spec.mode if spec else r.get("mode", backends.EAGER)


def timed(rows: list[dict[str, Any]], task: str, dtype: str) -> list[dict[str, Any]]:
    """A task's timed task cases in a dtype, fastest first."""
    mine = [r for r in rows if r["kind"] == "speed" and (r["task"], r["dtype"]) == (task, dtype) and r.get("samples_s")]
    return sorted(mine, key=lambda r: r["median_s"])


def step(r: dict[str, Any]) -> tuple[float, float, float]:
    return r["median_s"], r["ci_low_s"], r["ci_high_s"]


def payoff(compiled: dict[str, Any], eager: dict[str, Any]) -> Payoff | None:
    """When ``compiled`` pays for its first call against ``eager`` (None where either has no first call)."""
    if compiled.get("first_call_s") is None or eager.get("first_call_s") is None:
        return None
    extra = compiled["first_call_s"] - eager["first_call_s"]
    found = stats.break_even(extra, step(eager), step(compiled))
    steps, low, high = found if found is not None else (None, None, None)
    return Payoff(compiled["task"], compiled["dtype"], compiled["backend"], mode_of(compiled), eager["backend"],
                  eager["backend"] == eager_of(compiled["backend"]), extra, eager["median_s"] - compiled["median_s"],
                  steps, low, high)  # fmt: skip


def payoffs(rows: list[dict[str, Any]], names: list[str], dtypes: list[str]) -> list[Payoff]:
    """Every compiled mode's payoff on every task and dtype: against its framework's eager mode, and against
    the fastest eager mode of the task where that is another."""
    out = []
    for d in dtypes:
        for t in names:
            found = timed(rows, t, d)
            by_name = {r["backend"]: r for r in found}
            fastest_eager = next((r for r in found if mode_of(r) == backends.EAGER), None)
            for r in found:
                if mode_of(r) == backends.EAGER:
                    continue
                own = by_name.get(eager_of(r["backend"]) or "")
                for e in dict.fromkeys(x["backend"] for x in (own, fastest_eager) if x is not None):
                    p = payoff(r, by_name[e])
                    if p is not None:
                        out.append(p)
    return out


def payoff_table(found: list[Payoff], names: list[str], modes: list[str], dtype: str) -> list[list[str]]:
    """Rows the compiled modes, columns the tasks: steps to pay against the framework's eager mode; then, where
    the task's fastest eager mode is another, against it."""
    cells: dict[tuple[str, str], list[Payoff]] = {}
    for p in found:
        if p.dtype == dtype:
            cells.setdefault((p.backend, p.task), []).append(p)
    table = []
    for b in modes:
        if b not in backends.BACKENDS or backends.BACKENDS[b].mode == backends.EAGER:
            continue
        line = [b, eager_of(b) or "—"]
        for t in names:
            mine = sorted(cells.get((b, t), []), key=lambda p: not p.own)
            parts = [p.text() if p.own else f"{p.text()} vs {p.against}" for p in mine]
            line.append("; ".join(parts) or "—")
        table.append(line)
    return table


def fastest_by_kind(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The fastest timed row of each kind of mode, in the order of ``backends.MODES``."""
    best: dict[str, dict[str, Any]] = {}
    for r in found:  # fastest first
        best.setdefault(mode_of(r), r)
    return {k: best[k] for k in sorted(best, key=lambda k: backends.MODES.index(k) if k in backends.MODES else 9)}


def against_others(best: dict[str, Any], found: list[dict[str, Any]]) -> str:
    """How the fastest of a kind compares with the fastest of another framework of the same kind."""
    other = next((r for r in found if mode_of(r) == mode_of(best) and framework(r) != framework(best)), None)
    if other is None:
        return ""
    r, low, high = stats.ratio_ci(other["samples_s"], best["samples_s"])
    times = f"{number(r)}× ({number(low)}–{number(high)})"
    if low <= 1:
        return f", within noise of {other['backend']} ({times})"
    return f", {times} faster than {other['backend']}"


def framework(r: dict[str, Any]) -> str:
    spec = backends.BACKENDS.get(r["backend"])
    return spec.framework if spec else r["backend"]


def task_line(rows: list[dict[str, Any]], task: str, dtype: str, found_payoffs: list[Payoff]) -> str | None:
    """One task's answer: per kind of mode its fastest mode and time, against the fastest of another framework
    of that kind; for a compiled kind, after how many steps it pays against the fastest eager mode."""
    found = timed(rows, task, dtype)
    if not found:
        return None
    kinds = fastest_by_kind(found)
    eager = kinds.get(backends.EAGER)
    parts = []
    for kind, best in kinds.items():
        said = f"{kind} **{best['backend']}** {duration(best['median_s'])}{against_others(best, found)}"
        if eager is not None and kind != backends.EAGER:
            p = next((p for p in found_payoffs if (p.task, p.dtype, p.backend, p.against)
                      == (task, dtype, best["backend"], eager["backend"])), None)  # fmt: skip
            if p is not None:
                said += (f"; slower a step than {eager['backend']}: never pays" if p.steps is None
                         else f"; pays for compiling against {eager['backend']} after {p.text()} steps")  # fmt: skip
        parts.append(said)
    return f"- **{task}**: " + " · ".join(parts)


def headline(rows: list[dict[str, Any]], names: list[str], dtypes: list[str]) -> list[str]:
    """Per dtype, a paragraph of one line per task (:func:`task_line`)."""
    found = payoffs(rows, names, dtypes)
    parts = []
    for d in dtypes:
        lines = [line for t in names if (line := task_line(rows, t, d, found))]
        if lines:
            parts.append(f"**Fastest of each kind of mode, per task ({d})**, per step:\n\n" + "\n".join(lines))
    return parts
