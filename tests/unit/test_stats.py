"""bench.core.stats against closed forms, textbook tables and brute-force enumeration; coverage by simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench.core import stats


def brute_u_p(a: list[float], b: list[float]) -> tuple[float, list[float]]:
    """Exact two-sided permutation p of U: every way of splitting the pooled values into groups of len(a)."""
    pooled, m = a + b, len(a)

    def u(x: list[float], y: list[float]) -> float:
        return sum((xi > yj) + 0.5 * (xi == yj) for xi in x for yj in y)

    observed = u(a, b)
    us = []
    for chosen in itertools.combinations(range(len(pooled)), m):
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        us.append(u([pooled[i] for i in chosen], rest))
    low = sum(v <= observed for v in us) / len(us)
    high = sum(v >= observed for v in us) / len(us)
    return min(1.0, 2 * min(low, high)), us


# Mann-Whitney, exact ------------------------------------------------------------------------------------------


def test_complete_separation_of_five_and_five_is_two_in_252():
    assert stats.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / math.comb(10, 5), abs=1e-15)
    assert stats.mann_whitney_u([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]) == pytest.approx(2 / 252, abs=1e-15)


@pytest.mark.parametrize("m, n, critical", [(5, 5, 2), (6, 6, 5), (7, 7, 8), (8, 8, 13), (10, 10, 23), (4, 6, 2)])
def test_textbook_critical_values_at_five_percent_two_sided(m, n, critical):
    """The published table of the largest U significant at α = 0.05, two-sided (e.g. 23 for 10 and 10)."""

    def with_u(u: int) -> tuple[list[float], list[float]]:
        """b = 0.5, 1.5, ...; a_i lies just above c_i of them, the c_i adding up to u: no ties, U = u."""
        counts = [min(n, max(0, u - n * i)) for i in range(m)]
        return [c + 0.1 + 0.01 * i for i, c in enumerate(counts)], [j + 0.5 for j in range(n)]

    def p_at(u: int) -> float:
        a, b = with_u(u)
        assert stats.u_statistic(a, b) == u
        return stats.mann_whitney_u(a, b)

    assert p_at(critical) < 0.05 <= p_at(critical + 1)


@pytest.mark.parametrize("seed", range(6))
def test_exact_p_equals_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    m, n = [(5, 5), (3, 7), (4, 6), (6, 5), (2, 8), (6, 6)][seed]
    a, b = list(rng.normal(size=m)), list(rng.normal(0.8, size=n))
    assert stats.mann_whitney_u(a, b) == pytest.approx(brute_u_p(a, b)[0], rel=1e-12)


def test_p_is_symmetric_in_the_samples():
    a, b = [1.0, 4.0, 2.5, 7.0], [3.0, 5.0, 6.0, 8.0, 9.0]
    assert stats.mann_whitney_u(a, b) == stats.mann_whitney_u(b, a)


# Mann-Whitney, normal approximation with ties --------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ([1, 2, 2, 3, 3, 3], [2, 3, 4, 4, 5, 5]),
        ([1, 1, 1, 2, 2, 5, 6], [1, 2, 3, 3, 6, 7]),
        ([10, 10, 10, 10], [10, 10, 11, 9]),
    ],
)
def test_ties_use_the_tie_corrected_variance_and_continuity(a, b):
    """The variance of U over every split of the pooled values (brute force) is what the approximation uses."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    _, us = brute_u_p(a, b)
    mean, var = np.mean(us), np.var(us)
    assert mean == pytest.approx(len(a) * len(b) / 2)
    u = stats.u_statistic(a, b)
    expected = math.erfc(max(0.0, abs(u - mean) - 0.5) / math.sqrt(var) / math.sqrt(2))
    assert stats.mann_whitney_u(a, b) == pytest.approx(min(1.0, expected), rel=1e-12)


def test_ties_approximation_is_close_to_the_permutation_p():
    a = [1.0, 2, 2, 3, 3, 3, 4, 5, 5, 6]
    b = [3.0, 4, 4, 5, 5, 6, 6, 7, 7, 8]
    exact, _ = brute_u_p(a, b)
    assert stats.mann_whitney_u(a, b) == pytest.approx(exact, abs=0.01)


def test_all_values_equal_is_p_one():
    assert stats.mann_whitney_u([2.0, 2.0, 2.0], [2.0, 2.0]) == 1.0


def test_bad_samples_raise():
    with pytest.raises(ValueError):
        stats.mann_whitney_u([], [1.0])
    with pytest.raises(ValueError):
        stats.mann_whitney_u([1.0, float("nan")], [1.0])


# Median CI -------------------------------------------------------------------------------------------------------


def test_median_ci_order_statistics():
    x = [5.0, 1.0, 4.0, 2.0, 3.0]  # n = 5: 95 % is out of reach, the whole range (93.75 %)
    assert stats.median_ci(x) == (3.0, 1.0, 5.0)
    assert stats.median_coverage(5) == pytest.approx(1 - 2 / 32)
    # n = 10: P(Bin(10, ½) ≤ 1) = 11/1024, so [x(2), x(9)] covers 1 - 22/1024 = 97.9 %; [x(3), x(8)] only 89 %
    y = list(range(1, 11))
    assert stats.median_ci(y) == (5.5, 2.0, 9.0)
    assert stats.median_coverage(10) == pytest.approx(1 - 22 / 1024)
    assert stats.median_coverage(6) == pytest.approx(1 - 2 / 64)
    assert stats.median_coverage(1) == 0.0


@pytest.mark.parametrize("n", [5, 6, 7, 10])
def test_median_ci_covers_the_true_median(n):
    """Lognormal timings (true median 1), 2000 trials: the exact interval covers at least its stated level."""
    rng = np.random.default_rng(1234 + n)
    trials, hits = 2000, 0
    for _ in range(trials):
        _, low, high = stats.median_ci(rng.lognormal(0.0, 0.3, size=n))
        hits += low <= 1.0 <= high
    coverage = hits / trials
    stated = stats.median_coverage(n)
    assert stated >= min(0.95, 1 - 2 / 2**n)
    assert coverage >= stated - 3 * math.sqrt(stated * (1 - stated) / trials)  # three standard errors
    if n == 5:
        assert coverage >= 0.90


def test_bootstrap_median_ci_covers_less_than_it_claims():
    """Why it is not the default: for 7 samples it picks [x(2), x(6)], which covers 87.5 %, not 95 %."""
    rng = np.random.default_rng(7)
    trials, hits = 2000, 0
    for i in range(trials):
        _, low, high = stats.median_ci(rng.lognormal(0.0, 0.3, size=7), method="bootstrap", resamples=2000, seed=i)
        hits += low <= 1.0 <= high
    assert abs(hits / trials - (1 - 2 * 8 / 128)) < 0.03


def test_median_ci_is_deterministic_and_checks_its_input():
    x = [1.0, 3.0, 2.0, 8.0]
    assert stats.median_ci(x, method="bootstrap") == stats.median_ci(x, method="bootstrap")
    with pytest.raises(ValueError):
        stats.median_ci(x, method="magic")
    with pytest.raises(ValueError):
        stats.median_ci([])


# Ratio CI --------------------------------------------------------------------------------------------------------


def test_ratio_is_the_ratio_of_medians():
    ratio, low, high = stats.ratio_ci([2.0, 4.0, 6.0], [1.0, 2.0, 30.0])
    assert ratio == 2.0
    assert low <= ratio <= high
    assert stats.ratio_ci([2.0, 4.0, 6.0], [1.0, 2.0, 30.0]) == (ratio, low, high)  # seeded


def test_ratio_ci_of_constant_samples_is_a_point():
    assert stats.ratio_ci([3.0] * 5, [2.0] * 5) == (1.5, 1.5, 1.5)


@pytest.mark.parametrize("n, floor", [(5, 0.95), (7, 0.93)])
def test_ratio_ci_coverage(n, floor):
    """True ratio 1.2 between lognormal timings; 1000 trials. The bootstrap's measured coverage."""
    rng = np.random.default_rng(99 + n)
    trials, hits = 1000, 0
    for i in range(trials):
        a, b = 1.2 * rng.lognormal(0, 0.1, size=n), rng.lognormal(0, 0.1, size=n)
        _, low, high = stats.ratio_ci(a, b, resamples=2000, seed=i)
        hits += low <= 1.2 <= high
    assert hits / trials >= floor


def test_ratio_ci_refuses_non_positive_durations():
    with pytest.raises(ValueError):
        stats.ratio_ci([1.0, 0.0], [1.0, 2.0])


# Verdict ---------------------------------------------------------------------------------------------------------

OLD = [1.00, 1.02, 0.99, 1.01, 1.03]


def test_fifty_percent_slower_with_tight_samples_is_slower():
    assert stats.verdict(OLD, [1.5 * t for t in OLD]) == "slower"
    assert stats.verdict([1.5 * t for t in OLD], OLD) == "faster"


def test_the_same_distribution_is_within_noise():
    rng = np.random.default_rng(5)
    verdicts = [stats.verdict(rng.lognormal(0, 0.05, 5), rng.lognormal(0, 0.05, 5), seed=i) for i in range(400)]
    # a false alarm needs p < 0.05 (U ≤ 2: probability 8/252 ≈ 3.2 %) and the 5 % threshold besides
    assert verdicts.count("within noise") / len(verdicts) >= 1 - 8 / 252 - 0.02


def test_a_significant_change_under_the_threshold_is_within_noise():
    new = [1.06 * t for t in OLD]  # separated (every new > every old: U = 25), ratio 1.06
    assert stats.mann_whitney_u(OLD, new) == pytest.approx(2 / 252)
    _, low, _ = stats.ratio_ci(new, OLD)
    assert low >= min(new) / max(OLD) > 1  # no resampled ratio can fall below that
    assert stats.verdict(OLD, new) == "slower"
    assert stats.verdict(OLD, new, threshold=0.10) == "within noise"


def test_a_significant_test_with_a_ratio_interval_over_1_is_within_noise():
    """Ten a side in two clusters (around 1 and around 2): old holds ranks 1-6 and 12-15, new 7-11 and 16-20.
    U = 4 × 5 = 20 ≤ 23, the table's critical value, so the test separates them; but half the resampled new
    medians fall in the low cluster and a sixth of the old ones in the high: the ratio's interval spans 1."""

    def value(rank: int) -> float:
        return 1 + 0.01 * rank if rank <= 11 else 2 + 0.01 * rank

    old = [value(r) for r in [1, 2, 3, 4, 5, 6, 12, 13, 14, 15]]
    new = [value(r) for r in [7, 8, 9, 10, 11, 16, 17, 18, 19, 20]]
    assert stats.u_statistic(old, new) == 20 and stats.mann_whitney_u(old, new) < 0.05
    ratio, low, high = stats.ratio_ci(new, old)
    assert ratio > 1.4 and low < 1 < high
    assert stats.verdict(old, new) == "within noise"


def test_overlapping_samples_are_within_noise_however_far_the_medians():
    old = [1.0, 1.0 + 1e-3, 1.0 + 2e-3, 5.0, 5.0 + 1e-3]
    new = [1.0 + 5e-4, 5.0 + 5e-4, 5.0 + 6e-4, 5.0 + 7e-4, 5.0 + 8e-4]  # median 1.002 -> 5.0006: 5 times
    assert stats.mann_whitney_u(old, new) > 0.05
    assert stats.verdict(old, new) == "within noise"


def test_three_against_three_can_never_be_significant():
    """The smallest exact p for 3 and 3 is 2/20 = 0.1: no change is reported, however large."""
    assert stats.mann_whitney_u([1.0, 1.1, 1.2], [10.0, 11.0, 12.0]) == pytest.approx(0.1)
    assert stats.verdict([1.0, 1.1, 1.2], [10.0, 11.0, 12.0]) == "within noise"


# The spread pooled over a backend's cases, the rerun interval and the shift test ----------------------------------


def test_median_variance_matches_the_known_values():
    assert stats.median_variance(1) == pytest.approx(1, rel=0.01)
    assert stats.median_variance(2) == pytest.approx(0.5, rel=0.01)  # the mean of two
    assert stats.median_variance(3) == pytest.approx(0.4487, rel=0.01)  # the textbook figure for n = 3
    assert stats.median_variance(101) == pytest.approx(np.pi / (2 * 101), rel=0.02)  # the large-n limit


def test_pooled_log_sd_recovers_the_spread_of_many_small_groups():
    rng = np.random.default_rng(3)
    groups = [np.exp(rng.normal(np.log(t), 0.02, 3)) for t in rng.uniform(1e-6, 1e-2, 60)]
    assert stats.pooled_log_sd(groups) == pytest.approx(0.02, rel=0.15)
    assert stats.pooled_log_sd([[1.0], [2.0]]) is None  # nothing to tell a spread from


@pytest.mark.parametrize("n", [3, 5])
def test_a_rerun_median_falls_in_the_interval_as_often_as_it_claims(n):
    """Two runs of n processes each from one distribution: the second's median is inside the first's
    interval at least 95 % of the time (a little more: the interval is never narrower than the range)."""
    rng = np.random.default_rng(n)
    sigma, inside, trials = 0.03, 0, 4000
    for _ in range(trials):
        first, second = np.exp(rng.normal(0, sigma, n)), np.exp(rng.normal(0, sigma, n))
        _, low, high = stats.rerun_interval(first, sigma)
        inside += low <= np.median(second) <= high
    assert stats.RERUN_LEVEL == 0.95 and 0.95 <= inside / trials <= 0.985


def test_an_interval_holds_a_rerun_of_a_drifting_machine_only_with_the_drift():
    """Each run moved as a whole by a normal drift of 2 %, its processes by 0.5 % about that: without the
    drift the interval holds far fewer reruns than it claims, with it as many."""
    rng = np.random.default_rng(7)
    sigma, drift, trials = 0.005, 0.02, 4000
    held = {0.0: 0, drift: 0}
    for _ in range(trials):
        first, second = (np.exp(rng.normal(rng.normal(0, drift), sigma, 3)) for _ in range(2))
        for d in held:
            _, low, high = stats.rerun_interval(first, sigma, drift=d)
            held[d] += low <= np.median(second) <= high
    assert held[0.0] / trials < 0.6
    assert 0.94 <= held[drift] / trials <= 0.97


def test_three_against_three_with_known_spreads_tell_ten_percent_apart_and_nothing_from_noise():
    rng = np.random.default_rng(11)
    sigma = 0.01
    old = np.exp(rng.normal(0, sigma, 3))
    assert stats.verdict(old, 1.10 * np.exp(rng.normal(0, sigma, 3)), old_sigma=sigma, new_sigma=sigma) == "slower"
    calls = [stats.verdict(np.exp(rng.normal(0, sigma, 3)), np.exp(rng.normal(0, sigma, 3)), old_sigma=sigma,
                           new_sigma=sigma) for _ in range(500)]  # fmt: skip
    assert calls.count("within noise") == 500  # 5 % is 5σ: the threshold, not the test, decides
    ratio, low, high, p = stats.shift_p([1.0, 1.0, 1.0], [1.1, 1.1, 1.1], 0.01, 0.01)
    assert ratio == pytest.approx(1.1) and low < 1.1 < high and p < 1e-6
    # a drift between runs of 5 %: a 10 % step is then within what two runs of one machine differ by
    assert stats.shift_p([1.0, 1.0, 1.0], [1.1, 1.1, 1.1], 0.01, 0.01, drift=0.05)[3] > 0.05
