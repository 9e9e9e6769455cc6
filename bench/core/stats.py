"""Statistics of timings measured in R separate processes, one figure (seconds per step) each.

Small and deterministic: numpy only, every random draw from a seeded generator. With R of 3 to 7
processes there is little to estimate from, so every function here says what its interval is worth.

- ``median_ci``: the median and a distribution-free confidence interval from order statistics.
- ``ratio_ci``: the ratio of two medians and a percentile-bootstrap interval.
- ``mann_whitney_u``: the two-sided p-value of the Mann-Whitney U test.
- ``pooled_log_sd``: the process-to-process spread of a figure, pooled over like cases.
- ``rerun_interval``: where a rerun's median of as many processes falls, from that spread and the drift.
- ``shift_p``: the two-sided p-value that two runs' medians differ, from their spreads.
- ``verdict``: "faster", "slower" or "within noise" for a case timed twice, by the rule in its docstring.
- ``power``: how often ``verdict`` calls a true change of a given size, from the spreads.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import numpy as np

FASTER, SLOWER, NOISE = "faster", "slower", "within noise"
THRESHOLD = 0.05  # changes of the median smaller than this fraction are "within noise" even when significant
RERUN_LEVEL = 0.95  # what a case's interval claims: a rerun's median falls inside it this often


def _values(samples: Sequence[float] | np.ndarray, name: str = "samples") -> np.ndarray:
    x = np.asarray(samples, dtype=float).ravel()
    if x.size == 0:
        raise ValueError(f"{name}: no values")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: not every value is a finite number")
    return x


def _order_rank(n: int, level: float) -> int:
    """The largest k (1-based) such that [x(k), x(n+1-k)] covers the median with probability ≥ level;
    1 (the whole range) when even that falls short."""
    below = 0  # P(Binomial(n, 1/2) <= k - 1) * 2**n
    best = 1
    for k in range(1, n // 2 + 1):
        below += math.comb(n, k - 1)
        if 1 - 2 * below / 2**n >= level:
            best = k
        else:
            break
    return best


def median_coverage(n: int, level: float = 0.95) -> float:
    """The probability that ``median_ci``'s interval from n samples covers the true median (any continuous
    distribution): ``1 - 2·P(Binomial(n, ½) < k)``. At least ``level`` where n allows it; with 95 % asked that
    needs n ≥ 6, and below it the interval is the whole range: 93.75 % for n = 5, 87.5 % for 4, 75 % for 3,
    50 % for 2 and 0 for one sample."""
    k = _order_rank(n, level)
    return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n


def median_ci(
    samples: Sequence[float] | np.ndarray,
    level: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
    method: str = "exact",
) -> tuple[float, float, float]:
    """The median of ``samples`` and a confidence interval for the true median: ``(median, low, high)``.

    ``method="exact"`` (the default, the honest one): the order-statistic interval ``[x(k), x(n+1-k)]``
    with the largest k whose coverage, ``1 - 2·P(Binomial(n, ½) < k)``, is at least ``level``. It holds
    for any continuous distribution, without resampling. With few samples the level is not always
    reachable: for n ≤ 5 at 95 % the interval is the whole range [min, max] and covers less than asked
    (93.75 % for n = 5; ``median_coverage`` gives the figure).

    ``method="bootstrap"``: the percentile bootstrap (``resamples`` draws of n with replacement from a
    generator seeded with ``seed``). With n of 3 to 7 it can only return sample values and is coarse; it
    covers less than it claims (for n = 7 it picks [x(2), x(6)], which covers 87.5 %, not 95 %), which is
    why it is not the default. ``resamples`` and ``seed`` are used by this method only.
    """
    x = np.sort(_values(samples))
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    median = float(np.median(x))
    if method == "exact":
        k = _order_rank(x.size, level)
        return median, float(x[k - 1]), float(x[x.size - k])
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        medians = np.median(x[rng.integers(0, x.size, size=(resamples, x.size))], axis=1)
        low, high = np.quantile(medians, [(1 - level) / 2, (1 + level) / 2])
        return median, float(low), float(high)
    raise ValueError(f"unknown method {method!r}: exact or bootstrap")


def paired_ratio_ci(a_samples: Sequence[float], b_samples: Sequence[float]) -> tuple[float, float, float]:
    """a over b where each pair was timed side by side (in the same process, the same rounds): the median of the
    pairs' ratios and its interval (``median_ci``), which the pairing keeps free of what moved both alike."""
    return median_ci([a / b for a, b in zip(a_samples, b_samples, strict=True)])


def ratio_ci(
    a_samples: Sequence[float] | np.ndarray,
    b_samples: Sequence[float] | np.ndarray,
    level: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``median(a) / median(b)`` and a percentile-bootstrap interval: ``(ratio, low, high)``.

    Each sample is resampled on its own (they come from different processes), ``resamples`` times, from
    a generator seeded with ``seed``; the interval is the central ``level`` of the resampled ratios.
    Measured coverage at 95 % (lognormal timings, 2000 trials; tests/unit/test_stats.py checks it): 97 % for 5
    samples a side, 96 % for 7 and 10, but 89 % for 3 a side, where the interval is too short to trust.
    Every value must be positive (they are durations).
    """
    a, b = _values(a_samples, "a_samples"), _values(b_samples, "b_samples")
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("ratio_ci: durations must be positive")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, a.size, size=(resamples, a.size))], axis=1)
    mb = np.median(b[rng.integers(0, b.size, size=(resamples, b.size))], axis=1)
    low, high = np.quantile(ma / mb, [(1 - level) / 2, (1 + level) / 2])
    return float(np.median(a) / np.median(b)), float(low), float(high)


def _u_counts(m: int, n: int) -> list[int]:
    """How many of the C(m+n, m) orderings of m a's and n b's give U = 0, 1, ..., m·n: the coefficients of
    the Gaussian binomial [m+n choose m]_q = Π_{i=1..m} (1 - q^(n+i)) / (1 - q^i), exact integers."""
    poly = [1]
    for i in range(1, m + 1):
        size = len(poly) + n + i
        times = poly + [0] * (n + i)
        for k in range(n + i, size):  # multiply by (1 - q^(n+i))
            times[k] -= poly[k - n - i]
        for k in range(i, size):  # divide by (1 - q^i): c[k] += c[k-i]
            times[k] += times[k - i]
        poly = times[: i * n + 1]  # the division is exact: what is cut off is zero
    return poly


def u_statistic(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Mann-Whitney U of ``a``: the pairs (a_i, b_j) with a_i > b_j, ties counted one half."""
    x, y = _values(a, "a"), _values(b, "b")
    return float(np.sum(x[:, None] > y[None, :]) + 0.5 * np.sum(x[:, None] == y[None, :]))


EXACT_MAX = 50  # an exact p-value up to this many values in all (and no ties)


def mann_whitney_u(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sided p-value of the Mann-Whitney U test that ``a`` and ``b`` come from one distribution.

    Exact when there are no ties and at most ``EXACT_MAX`` values in all: the null distribution of U is
    counted over all C(m+n, m) orderings (``_u_counts``), and p = min(1, 2·min(P(U ≤ u), P(U ≥ u))).
    Otherwise the normal approximation with the tie-corrected variance
    ``m·n/12 · ((N+1) - Σ(t³-t) / (N(N-1)))`` and a continuity correction of ½. For 5 against 5 the
    smallest possible p is 2/252 ≈ 0.0079 (complete separation).
    """
    x, y = _values(a, "a"), _values(b, "b")
    m, n = x.size, y.size
    u = u_statistic(x, y)
    both = np.concatenate([x, y])
    _, ties = np.unique(both, return_counts=True)
    if ties.max() == 1 and m + n <= EXACT_MAX:
        counts = _u_counts(m, n)
        k = int(u)
        low, high = sum(counts[: k + 1]), sum(counts[k:])
        return min(1.0, 2 * min(low, high) / math.comb(m + n, m))
    total = m + n
    variance = m * n / 12 * ((total + 1) - float(np.sum(ties**3 - ties)) / (total * (total - 1)))
    if variance <= 0:  # every value equal: nothing tells the samples apart
        return 1.0
    z = max(0.0, abs(u - m * n / 2) - 0.5) / math.sqrt(variance)
    return min(1.0, math.erfc(z / math.sqrt(2)))


def verdict(
    old_samples: Sequence[float] | np.ndarray,
    new_samples: Sequence[float] | np.ndarray,
    alpha: float = 0.05,
    threshold: float = THRESHOLD,
    resamples: int = 10_000,
    seed: int = 0,
    old_sigma: float | None = None,
    new_sigma: float | None = None,
    drift: float = 0.0,
) -> str:
    """How the new timings compare with the old ones: "slower", "faster" or "within noise".

    The rule (as asv's compare): a change is reported only when all three hold:

    1. a test tells the samples apart: two-sided p < ``alpha``. Where both runs' process-to-process
       spreads are known (``old_sigma``, ``new_sigma``: ``pooled_log_sd`` over like cases), the
       shift of the medians against that spread and the ``drift`` between runs (``shift_p``): with 3
       processes a side, σ = 1 % and no drift, a change of 2 % is told apart. Otherwise the
       Mann-Whitney test, which with 3 a side never is (its smallest p is 0.1);
    2. the ``1 - alpha`` interval of median(new)/median(old) excludes 1 (``shift_p``'s, else the
       bootstrap's, ``ratio_ci``);
    3. the ratio is past the threshold: above ``1 + threshold`` ("slower") or below
       ``1 / (1 + threshold)`` ("faster"). The old and new processes ran at different times, and a
       machine drifts by a few percent between runs (clock, load, memory layout) in ways that processes
       run back to back do not sample; a smaller change is "within noise" even when significant.

    Anything else is "within noise". With 5 processes a side, p < 0.05 needs U ≤ 2 of 25: the samples
    nearly separated (U = 2 gives p = 8/252 ≈ 0.032, U = 3 gives 14/252 ≈ 0.056).
    """
    old, new = _values(old_samples, "old_samples"), _values(new_samples, "new_samples")
    if old_sigma is not None and new_sigma is not None:
        ratio, low, high, p = shift_p(old, new, old_sigma, new_sigma, drift)
    else:
        ratio, low, high = ratio_ci(new, old, level=1 - alpha, resamples=resamples, seed=seed)
        p = mann_whitney_u(old, new)
    if p >= alpha:
        return NOISE
    if low > 1 and ratio > 1 + threshold:
        return SLOWER
    if high < 1 and ratio < 1 / (1 + threshold):
        return FASTER
    return NOISE


@functools.cache
def median_variance(n: int) -> float:
    """Var(median of n standard normal draws): how much a median of n processes' figures varies, in units
    of one process's variance (1 for n = 1, 0.5 for 2, 0.449 for 3, 0.287 for 5; about π/2n for large n).
    By simulation, 200,000 draws from a seeded generator: deterministic, and good to about 0.3 %."""
    if n < 1:
        raise ValueError(f"median_variance: n must be 1 or more, not {n}")
    draws = np.random.default_rng(0).standard_normal((200_000, n))
    return float(np.var(np.median(draws, axis=1)))


def pooled_log_sd(groups: Iterable[Sequence[float] | np.ndarray]) -> float | None:
    """σ, the standard deviation of log(figure) between the processes that timed one case, pooled over
    the groups given (like cases, each its processes' figures: bench.core.noise_model.pool):
    ``sqrt(Σ (nᵢ−1)·sᵢ² / Σ (nᵢ−1))``. One case's few processes say little about its spread; like cases
    share a machine, a framework and a harness, and together they say it well. None where no group has
    two figures."""
    squares, freedom = 0.0, 0
    for g in groups:
        x = np.log(_values(g))
        if x.size > 1:
            squares += float(np.sum((x - x.mean()) ** 2))
            freedom += x.size - 1
    return math.sqrt(squares / freedom) if freedom else None


def _z(level: float) -> float:
    """The standard normal's two-sided ``level`` quantile (1.645 for 0.90, 1.960 for 0.95), by bisection."""
    low, high = 0.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if math.erf(mid / math.sqrt(2)) < level else (low, mid)
    return (low + high) / 2


def rerun_interval(
    samples: Sequence[float] | np.ndarray, sigma: float | None, level: float = RERUN_LEVEL, drift: float = 0.0
) -> tuple[float, float, float]:
    """The median of ``samples`` (one case's per-process figures) and the interval in which a rerun's
    median of as many processes falls with probability ``level``: ``(median, low, high)``.

    Two medians of n processes each differ in log by a normal amount of variance
    ``2·median_variance(n)·σ² + 2·drift²``: σ the process-to-process spread (``pooled_log_sd``), and
    ``drift`` the standard deviation of what moves a whole run (the machine between runs, which no run's
    processes sample: bench.core.noise_model.drift). The interval is the median ×/÷ ``exp(z·sqrt(that))``, widened
    to the samples' own range where that is wider (a case whose processes disagree more than its like
    cases do). Without σ, the samples' range widened by the drift alone."""
    x = _values(samples)
    median, low, high = float(np.median(x)), float(x.min()), float(x.max())
    variance = 2 * median_variance(x.size) * (sigma or 0.0) ** 2 + 2 * drift**2
    if variance > 0:
        half = _z(level) * math.sqrt(variance)
        low, high = min(low, median * math.exp(-half)), max(high, median * math.exp(half))
    return median, low, high


def shift_p(
    old_samples: Sequence[float] | np.ndarray,
    new_samples: Sequence[float] | np.ndarray,
    old_sigma: float,
    new_sigma: float,
    drift: float = 0.0,
) -> tuple[float, float, float, float]:
    """Whether two runs' medians of one case differ, each run's process-to-process spread σ known from
    its backend's cases (``pooled_log_sd``): ``(ratio, low, high, p)``, the ratio of medians new/old,
    its 95 % interval, and the two-sided p-value of ``log(ratio) / sqrt(median_variance(m)·σ_old² +
    median_variance(n)·σ_new² + 2·drift²)`` against a standard normal (``drift``: what moves a whole run,
    as in ``rerun_interval``)."""
    old, new = _values(old_samples, "old_samples"), _values(new_samples, "new_samples")
    shift = math.log(float(np.median(new)) / float(np.median(old)))
    sd = _shift_sd(old.size, new.size, old_sigma, new_sigma, drift)
    half = _z(0.95) * sd
    p = math.erfc(abs(shift) / sd / math.sqrt(2)) if sd > 0 else float(shift == 0)
    return math.exp(shift), math.exp(shift - half), math.exp(shift + half), p


def _shift_sd(old_n: int, new_n: int, old_sigma: float, new_sigma: float, drift: float) -> float:
    """The standard deviation of log(median new / median old) where nothing changed."""
    return math.sqrt(median_variance(old_n) * old_sigma**2 + median_variance(new_n) * new_sigma**2 + 2 * drift**2)


def power(
    ratio: float, old_n: int, new_n: int, old_sigma: float, new_sigma: float, alpha: float = 0.05,
    threshold: float = THRESHOLD, drift: float = 0.0,
) -> float:  # fmt: skip
    """The probability that ``verdict`` (with known spreads) calls a true change of ``ratio`` (> 1: slower)
    slower: the observed log shift, normal about ``log(ratio)`` with the sd of ``shift_p``, must pass both
    the test's critical value and ``log(1 + threshold)``."""
    sd = _shift_sd(old_n, new_n, old_sigma, new_sigma, drift)
    bar = max(math.log(1 + threshold), _z(1 - alpha) * sd)
    if sd == 0:
        return float(math.log(ratio) > bar)
    return 0.5 * math.erfc((bar - math.log(ratio)) / sd / math.sqrt(2))


def fit_overhead(n: Sequence[float], t: Sequence[float]) -> tuple[float, float]:
    """``t(N) = a + b·N`` by least squares on relative error: (a seconds, b seconds per element)."""
    n, t = np.asarray(n, dtype=float), np.asarray(t, dtype=float)
    design = np.stack([np.ones_like(n), n], axis=1) / t[:, None]
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    return float(a), float(b)


def break_even(
    extra_s: float, eager: tuple[float, float, float], compiled: tuple[float, float, float]
) -> tuple[float, float, float] | None:
    """After how many steps a compiled mode has paid for its first call: ``extra_s`` (its first call's
    seconds over the eager mode's) over what it saves a step (the eager step's time less its own), each
    step a (median, low, high) interval. The interval is that of the step times alone, the first calls
    being one measurement each; its high end is infinite where the step intervals overlap. None where
    the compiled step is not faster (it never pays); 0 where its first call is not the slower."""
    gain = eager[0] - compiled[0]
    if gain <= 0:
        return None
    if extra_s <= 0:
        return 0.0, 0.0, 0.0
    most, least = eager[2] - compiled[1], eager[1] - compiled[2]
    return extra_s / gain, extra_s / most, extra_s / least if least > 0 else math.inf
