"""The answer per kind of mode, from made-up rows: the fastest of each kind, never a loop ranked against
step-wise modes unlabelled, and after how many steps compiling pays."""

from __future__ import annotations

import math

import pytest

import backends
from bench.core import stats
from bench.report import kinds
from conftest import timed

SCAN = next(n for n, s in backends.BACKENDS.items() if s.framework == "jax" and s.mode == backends.LOOP)


def test_break_even_is_where_the_two_totals_meet():
    """A compiled mode whose first call is 1 s longer and whose step is 10 µs shorter: after n steps the two
    have taken as long (first call + n steps), checked by adding the totals up, not by the formula."""
    first_e, first_c, step_e, step_c = 0.002, 1.002, 30e-6, 20e-6
    n, low, high = stats.break_even(first_c - first_e, (step_e, 29e-6, 31e-6), (step_c, 19e-6, 21e-6))
    assert math.isclose(first_e + n * step_e, first_c + n * step_c, rel_tol=1e-12)
    # the interval's ends: the largest saving a step (31 - 19 µs) pays soonest, the smallest (29 - 21 µs) latest
    assert math.isclose(first_e + low * 31e-6, first_c + low * 19e-6, rel_tol=1e-12)
    assert math.isclose(first_e + high * 29e-6, first_c + high * 21e-6, rel_tol=1e-12)
    assert low < n < high


def test_break_even_is_never_where_the_compiled_step_is_slower_and_at_once_where_its_first_call_is_shorter():
    assert stats.break_even(1.0, (20e-6, 19e-6, 21e-6), (30e-6, 29e-6, 31e-6)) is None
    assert stats.break_even(-0.5, (30e-6, 29e-6, 31e-6), (20e-6, 19e-6, 21e-6)) == (0.0, 0.0, 0.0)
    assert stats.break_even(1.0, (30e-6, 25e-6, 35e-6), (28e-6, 26e-6, 30e-6))[2] == math.inf  # intervals overlap


@pytest.fixture
def rows():
    """quadratic: numpy the fastest eager mode, jax's compiled loop the fastest of all, torch-compile slower than
    numpy a step but faster than torch."""
    return [
        timed("quadratic", "numpy", 4e-6, first_call_s=2e-4),
        timed("quadratic", "torch", 60e-6, first_call_s=2e-3),
        timed("quadratic", "torch-compile", 35e-6, first_call_s=1.002),
        timed("quadratic", "jax", 300e-6, first_call_s=0.5),
        timed("quadratic", SCAN, 1.2e-6, first_call_s=0.2002),
    ]


def test_each_compiled_mode_pays_against_its_frameworks_eager_mode_and_the_fastest_eager_one(rows):
    found = {(p.backend, p.against): p for p in kinds.payoffs(rows, ["quadratic"], ["float64"])}
    assert set(found) == {("torch-compile", "torch"), ("torch-compile", "numpy"), (SCAN, "jax"),
                          (SCAN, "numpy")}  # fmt: skip
    assert found[("torch-compile", "numpy")].steps is None  # slower a step than numpy: never
    assert found[("torch-compile", "torch")].own and not found[("torch-compile", "numpy")].own
    assert math.isclose(found[("torch-compile", "torch")].steps, 1.0 / 25e-6)  # 1 s more, 25 µs less a step
    assert found[(SCAN, "jax")].steps == 0  # its first call is the shorter: it pays at once
    assert math.isclose(found[(SCAN, "numpy")].steps, 0.2 / 2.8e-6)
    table = kinds.payoff_table(list(found.values()), ["quadratic"], list(backends.BACKENDS), "float64")
    assert [line[0] for line in table] == [b for b, s in backends.BACKENDS.items() if s.mode != "eager"]
    cell = {line[0]: line[2] for line in table}
    # the intervals are ±10 %: 1 s / (66 - 31.5 µs) = 28,986 and 1 s / (54 - 38.5 µs) = 64,516 steps
    assert cell["torch-compile"] == "40,000 (29,000–64,500); never vs numpy"
    assert cell["mxnet-gluon"] == "—"


def test_the_headline_names_the_fastest_of_each_kind_and_never_ranks_kinds_against_each_other(rows):
    (paragraph,) = kinds.headline(rows, ["quadratic"], ["float64"])
    line = paragraph.splitlines()[-1]
    eager, step, loop = line.removeprefix("- **quadratic**: ").split(" · ")
    assert eager.startswith("eager **numpy** 4.00 µs") and "faster than torch" in eager
    assert step.startswith("compiled step **torch-compile** 35.0 µs") and "never pays" in step
    assert loop.startswith(f"compiled loop **{SCAN}** 1.20 µs") and "faster than" not in loop  # no other loop
    assert "pays for compiling against numpy after 71,400" in loop
