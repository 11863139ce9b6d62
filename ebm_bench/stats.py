"""Statistics for tables over seeds and grids, without SciPy (the GPU image has numpy only).

Intervals: Student-t (`ci95_half_width`), Welch's for a difference of means (`mean_difference_interval`),
bounds-respecting intervals for 3..10 seeds (`bounded_interval`), Wilson's for a share (`wilson_interval`),
percentile bootstrap (`bootstrap_ci`, `superiority_interval`). Tests: Welch's t, Mann-Whitney (normal
approximation and exact), permutation tests, Kruskal-Wallis, a quadratic trend; Holm and Benjamini-Hochberg
adjustments for families of tests. Also Spearman's correlation, per-run curve statistics and
`format_significant` for tables.

The t distribution's CDF is the regularised incomplete beta function, evaluated by its continued fraction
(modified Lentz); quantiles come from bisection on the CDF. The chi-square survival function is the regularised
upper incomplete gamma function (series or continued fraction). tests/ebm_bench/test_stats.py checks each
against SciPy to 1e-9 relative (t quantiles near p = 0.5: ~1e-12 absolute).
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, Sequence

import numpy as np

from .errors import ConfigError


def _betacf(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    low, high = -1e3, 1e3
    for _ in range(200):
        mid = (low + high) / 2.0
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2.0


def ci95_half_width(std: float, n: int) -> float:
    """Half-width of the 95% Student-t confidence interval of a mean of n values (NaN for n < 2)."""
    if n < 2 or std != std:
        return float("nan")
    return t_quantile(0.975, n - 1) * std / math.sqrt(n)


def welch_t_test(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int
                 ) -> tuple[float, float]:
    """(t, two-sided p) of Welch's unequal-variance t-test from summary statistics (NaN if n < 2)."""
    if n_a < 2 or n_b < 2:
        return float("nan"), float("nan")
    var_a, var_b = std_a ** 2 / n_a, std_b ** 2 / n_b
    if var_a + var_b == 0:
        return (0.0, 1.0) if mean_a == mean_b else (math.copysign(math.inf, mean_a - mean_b), 0.0)
    t = (mean_a - mean_b) / math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (n_a - 1) + var_b ** 2 / (n_b - 1))
    return t, 2.0 * (1.0 - t_cdf(abs(t), df))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (the Mann-Whitney convention)."""
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)  # rank of the last member of each tie group
    mean_rank = last_rank - (counts - 1) / 2.0
    return mean_rank[inverse.reshape(-1)]


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _u_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Mann-Whitney U of a: how many pairs (a_i, b_j) have a_i > b_j, a tie counting one half."""
    return float(average_ranks(np.concatenate([a, b]))[:a.size].sum() - a.size * (a.size + 1) / 2.0)


def mann_whitney(a, b) -> dict[str, float]:
    """Mann-Whitney U test of "a tends to be larger than b", normal approximation with the tie correction.

    Returns u (of a), auc = u / (n_a n_b) = P(A > B) + P(A = B) / 2, z, p_greater (one-sided, a > b) and
    p_two_sided. Fine from about 8 values a side; NaN where a side is empty or every value is tied.
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    n_a, n_b = a.size, b.size
    nan = float("nan")
    if n_a == 0 or n_b == 0:
        return {"u": nan, "auc": nan, "z": nan, "p_greater": nan, "p_two_sided": nan}
    both = np.concatenate([a, b])
    u = _u_statistic(a, b)
    n = n_a + n_b
    _, counts = np.unique(both, return_counts=True)
    variance = n_a * n_b / 12.0 * ((n + 1) - float((counts ** 3 - counts).sum()) / (n * (n - 1)))
    if variance <= 0:
        return {"u": u, "auc": u / (n_a * n_b), "z": nan, "p_greater": nan, "p_two_sided": nan}
    z = (u - n_a * n_b / 2.0) / math.sqrt(variance)
    return {"u": u, "auc": u / (n_a * n_b), "z": z, "p_greater": normal_sf(z),
            "p_two_sided": min(1.0, 2.0 * normal_sf(abs(z)))}


def spearman(x, y) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks (NaN if either is constant)."""
    rx, ry = average_ranks(np.asarray(x, dtype=float).ravel()), average_ranks(np.asarray(y, dtype=float).ravel())
    if rx.size != ry.size:
        raise ValueError(f"spearman needs paired values; got {rx.size} and {ry.size}")
    rx, ry = rx - rx.mean(), ry - ry.mean()
    norm = math.sqrt(float((rx ** 2).sum() * (ry ** 2).sum()))
    return float((rx * ry).sum() / norm) if norm > 0 else float("nan")


def bootstrap_ci(values, statistic: Callable[[np.ndarray], float] = np.mean, n_boot: int = 10_000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over `values` (resampled with replacement, seeded)."""
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, values.size, size=(n_boot, values.size))]
    stats = np.apply_along_axis(statistic, 1, draws) if statistic is not np.mean else draws.mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(stats, tail)), float(np.quantile(stats, 1.0 - tail))


# ----------------------------------------------------------------------------------------------------------------
# Distributions
# ----------------------------------------------------------------------------------------------------------------

_ACKLAM_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
             -3.066479806614716e+01, 2.506628277459239e+00)
_ACKLAM_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
             -1.328068155288572e+01)
_ACKLAM_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
             4.374664141464968e+00, 2.938163982698783e+00)
_ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)


def _polynomial(coefficients: Sequence[float], x: float) -> float:
    total = 0.0
    for coefficient in coefficients:
        total = total * x + coefficient
    return total


def normal_quantile(p: float) -> float:
    """z with P(Z <= z) = p for a standard normal Z (-inf at 0, inf at 1, NaN outside [0, 1]).

    Acklam's rational approximation (relative error 1e-9) refined by one Halley step on erfc, which brings it to
    about 1e-15. The upper half is the mirror of the lower one, so tail probabilities keep their precision.
    """
    if not 0.0 <= p <= 1.0:
        return float("nan")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p > 0.5:
        return -normal_quantile(1.0 - p)
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        x = _polynomial(_ACKLAM_C, q) / (_polynomial(_ACKLAM_D, q) * q + 1.0)
    else:
        q = p - 0.5
        r = q * q
        x = _polynomial(_ACKLAM_A, r) * q / (_polynomial(_ACKLAM_B, r) * r + 1.0)
    error = 0.5 * math.erfc(-x / math.sqrt(2.0)) - p
    u = error * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


def _log_gamma_front(a: float, x: float) -> float:
    return -x + a * math.log(x) - math.lgamma(a)


def _lower_gamma_series(a: float, x: float) -> float:
    """P(a, x) by its power series; converges fast for x < a + 1."""
    term = total = 1.0 / a
    denominator = a
    for _ in range(10_000):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * 1e-17:
            break
    return total * math.exp(_log_gamma_front(a, x))


def _upper_gamma_fraction(a: float, x: float) -> float:
    """Q(a, x) by its continued fraction (modified Lentz); converges fast for x >= a + 1."""
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 10_000):
        numerator = -i * (i - a)
        b += 2.0
        d = numerator * d + b
        d = d if abs(d) > tiny else tiny
        c = b + numerator / c
        c = c if abs(c) > tiny else tiny
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1.0) < 1e-16:
            break
    return math.exp(_log_gamma_front(a, x)) * h


def gammaincc(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function Q(a, x) = Gamma(a, x) / Gamma(a), for a > 0."""
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if x < a + 1.0:
        return 1.0 - _lower_gamma_series(a, x)
    return _upper_gamma_fraction(a, x)


def chi2_sf(x: float, df: float) -> float:
    """P(X > x) for X chi-square with df > 0 degrees of freedom (NaN for NaN input or df <= 0)."""
    if x != x or not df > 0:
        return float("nan")
    return gammaincc(df / 2.0, x / 2.0)


# ----------------------------------------------------------------------------------------------------------------
# Intervals
# ----------------------------------------------------------------------------------------------------------------

def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must lie strictly between 0 and 1 (e.g. 0.95); got {confidence}")


def _finite_values(values, name: str = "values") -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(array).all():
        raise ConfigError(f"{name} must be finite numbers; drop the NaN or infinite entries first")
    return array


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a share successes / n (NaN, NaN when n = 0).

    Use it for shares such as "runs that cover all 10 classes" or "configurations that converged": unlike the
    normal (Wald) interval it stays inside [0, 1] and keeps its coverage near 0 and 1, e.g. 0 of 64 gives
    (0, 0.0566) where Wald gives the empty (0, 0).
    """
    if n != int(n) or successes != int(successes) or not 0 <= successes <= n:
        raise ConfigError(f"wilson_interval needs whole numbers 0 <= successes <= n; got {successes} of {n}")
    _check_confidence(confidence)
    if n == 0:
        return float("nan"), float("nan")
    z = normal_quantile(0.5 + confidence / 2.0)
    share, z2 = successes / n, z * z
    centre = (share + z2 / (2.0 * n)) / (1.0 + z2 / n)
    half = z / (1.0 + z2 / n) * math.sqrt(share * (1.0 - share) / n + z2 / (4.0 * n * n))
    # at 0 (n) successes the centre and the half-width are equal in exact arithmetic: the bound is 0 (1) exactly
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    mean = float(values.mean())
    half = t_quantile(0.5 + confidence / 2.0, values.size - 1) * float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean - half, mean + half


def _expit(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    return math.exp(z) / (1.0 + math.exp(z))


def _exp(z: float) -> float:
    return math.exp(z) if z < 709.0 else math.inf


BOUNDED_INTERVAL_METHODS = ("transform", "clip", "bootstrap")


def bounded_interval(values, low: float | None = None, high: float | None = None, confidence: float = 0.95,
                     method: str = "transform", n_boot: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """An interval for the centre of a few values (3..10 seeds) of a score bounded by [low, high]; always inside.

    Use it for scores that cannot leave a range, e.g. I' in [0, inf) or a recall in [0, 1], where the plain
    t interval of 3 seeds often crosses the bound. `low`/`high` of None mean unbounded on that side.

    method "transform" (default): a Student-t interval on a scale where the bounds are at infinity, mapped back:
    log(x - low) for a lower bound, log(high - x) for an upper one, logit((x - low) / (high - low)) for both; with
    no bound it is the plain t interval of the mean. On the log scale the interval is for the geometric mean (the
    median if the values are log-normal), not the arithmetic mean, and like the data it is asymmetric.
    A value on a bound has no transform (log 0), so then, and for method "clip", the plain t interval of the
    mean is cut to [low, high]: cutting never removes a true mean, which lies inside the bounds, so the coverage
    is that of the t interval. A small epsilon was rejected because on the log scale the interval would depend
    on its arbitrary size by orders of magnitude.
    method "bootstrap": the percentile bootstrap of the mean (`bootstrap_ci`, seeded); it stays within the
    sample's range, so with under ~10 values it is too narrow and under-covers; prefer it only for larger n.

    Fewer than 2 values give (NaN, NaN); values outside the bounds are an error.
    """
    if method not in BOUNDED_INTERVAL_METHODS:
        raise ConfigError(f"unknown bounded_interval method {method!r}; "
                          f"choose one of {', '.join(BOUNDED_INTERVAL_METHODS)}")
    _check_confidence(confidence)
    if low is not None and high is not None and not low < high:
        raise ConfigError(f"bounded_interval needs low < high; got low={low}, high={high}")
    values = _finite_values(values)
    if (low is not None and (values < low).any()) or (high is not None and (values > high).any()):
        raise ConfigError(f"values lie outside their bounds [{low}, {high}]; fix the bounds or the values")
    if values.size < 2:
        return float("nan"), float("nan")
    at_bound = (low is not None and (values == low).any()) or (high is not None and (values == high).any())
    if method == "bootstrap":
        interval = bootstrap_ci(values, n_boot=n_boot, seed=seed, level=confidence)
    elif method == "clip" or at_bound or (low is None and high is None):
        interval = _t_interval(values, confidence)
    elif high is None:
        z_low, z_high = _t_interval(np.log(values - low), confidence)
        interval = low + _exp(z_low), low + _exp(z_high)
    elif low is None:
        z_low, z_high = _t_interval(np.log(high - values), confidence)
        interval = high - _exp(z_high), high - _exp(z_low)
    else:
        share = (values - low) / (high - low)
        z_low, z_high = _t_interval(np.log(share) - np.log1p(-share), confidence)
        interval = low + (high - low) * _expit(z_low), low + (high - low) * _expit(z_high)
    lower, upper = interval
    # also absorbs rounding of the transforms, e.g. 0.1 + (0.3 - 0.1) = 0.30000000000000004
    if low is not None:
        lower, upper = max(lower, low), max(upper, low)
    if high is not None:
        lower, upper = min(lower, high), min(upper, high)
    return float(lower), float(upper)


def mean_difference_interval(a, b, confidence: float = 0.95) -> tuple[float, float]:
    """Welch interval for mean(a) - mean(b), unequal variances (NaN, NaN when a side has under 2 values).

    Use it next to `welch_t_test` to say how large a difference is, not only whether it is there.
    """
    _check_confidence(confidence)
    a, b = _finite_values(a, "a"), _finite_values(b, "b")
    if a.size < 2 or b.size < 2:
        return float("nan"), float("nan")
    difference = float(a.mean() - b.mean())
    var_a, var_b = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
    if var_a + var_b == 0:
        return difference, difference
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (a.size - 1) + var_b ** 2 / (b.size - 1))
    half = t_quantile(0.5 + confidence / 2.0, df) * math.sqrt(var_a + var_b)
    return difference - half, difference + half


def probability_of_superiority(a, b) -> float:
    """P(A > B) + P(A = B) / 2 for a random value A of a and B of b: the common-language effect size.

    0.5 means no tendency either way, 1 that every a beats every b; it equals U / (n_a n_b) of Mann-Whitney and
    the AUC. NaN when a side is empty.
    """
    a, b = _finite_values(a, "a"), _finite_values(b, "b")
    if a.size == 0 or b.size == 0:
        return float("nan")
    return _u_statistic(a, b) / (a.size * b.size)


def superiority_interval(a, b, confidence: float = 0.95, n_boot: int = 10_000, seed: int = 0
                         ) -> tuple[float, float]:
    """Percentile bootstrap interval of `probability_of_superiority`, each side resampled on its own (seeded).

    Use it to give the effect size a range. With few values a side it is too narrow, and when every a beats
    every b each resample does too, so it collapses to (1, 1): read it with the sample sizes.
    """
    _check_confidence(confidence)
    a, b = _finite_values(a, "a"), _finite_values(b, "b")
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    # a resample weights each value by how often it was drawn, so its statistic is W S V^T / (n_a n_b) with S the
    # pairwise score matrix: no per-resample ranking
    score = (a[:, None] > b[None, :]) + 0.5 * (a[:, None] == b[None, :])
    rng = np.random.default_rng(seed)
    counts_a = _resample_counts(rng, a.size, n_boot)
    counts_b = _resample_counts(rng, b.size, n_boot)
    draws = ((counts_a @ score) * counts_b).sum(axis=1) / (a.size * b.size)
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(draws, tail)), float(np.quantile(draws, 1.0 - tail))


def _resample_counts(rng: np.random.Generator, size: int, n_boot: int) -> np.ndarray:
    """How often each of `size` values is drawn in each of n_boot resamples with replacement."""
    indices = rng.integers(0, size, size=(n_boot, size)) + size * np.arange(n_boot)[:, None]
    return np.bincount(indices.ravel(), minlength=n_boot * size).reshape(n_boot, size).astype(float)


# ----------------------------------------------------------------------------------------------------------------
# Adjusting a family of p-values
# ----------------------------------------------------------------------------------------------------------------

def _p_value_array(p_values) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p_values, dtype=float)
    present = ~np.isnan(p)
    if ((p[present] < 0) | (p[present] > 1)).any():
        raise ConfigError("p-values must lie in [0, 1]; got one outside")
    return p, present


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values: reject where adjusted <= alpha to hold the family-wise error <= alpha.

    Use it when any false claim in the family matters (a few planned comparisons). The i-th smallest of m
    p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)), so the result is monotone in p and capped at 1.
    NaN entries (tests that could not be run) stay NaN and do not count in m. Same shape as the input.
    """
    p, present = _p_value_array(p_values)
    adjusted = p.copy()
    values = p[present]
    order = np.argsort(values, kind="stable")
    m = values.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * values[order])
    result = np.empty(m)
    result[order] = np.maximum.accumulate(scaled)
    adjusted[present] = result
    return adjusted


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values ("q-values"): reject where adjusted <= q to hold the false
    discovery rate <= q (for independent or positively dependent tests).

    Use it for screening many comparisons (a grid of configurations) where a few false leads are acceptable.
    The i-th smallest of m p-values becomes min over j >= i of min(1, m p_(j) / j): monotone, capped at 1. NaN
    entries stay NaN and do not count in m. Same shape as the input.
    """
    p, present = _p_value_array(p_values)
    adjusted = p.copy()
    values = p[present]
    order = np.argsort(values, kind="stable")
    m = values.size
    scaled = np.minimum(1.0, m * values[order] / np.arange(1, m + 1))
    result = np.empty(m)
    result[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted[present] = result
    return adjusted


# ----------------------------------------------------------------------------------------------------------------
# Exact and permutation tests for small samples
# ----------------------------------------------------------------------------------------------------------------

def _mean_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.mean(axis=-1) - b.mean(axis=-1)


def _median_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.median(a, axis=-1) - np.median(b, axis=-1)


PERMUTATION_STATISTICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mean_difference": _mean_difference, "median_difference": _median_difference}
ALTERNATIVES = ("two-sided", "greater", "less")
MAX_EXACT_ARRANGEMENTS = 100_000


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ConfigError(f"unknown alternative {alternative!r}; choose one of {', '.join(ALTERNATIVES)}")


def permutation_test(a, b, statistic: str = "mean_difference", alternative: str = "two-sided",
                     n_resamples: int | None = None, seed: int = 0) -> dict[str, float | bool | int]:
    """Two-sample permutation test of "a and b come from one distribution", for small samples (3..10 seeds).

    Use it instead of a t-test when there are too few values to trust normality. statistic "mean_difference"
    (mean a - mean b) or "median_difference"; alternative "greater" asks whether a's statistic is larger.
    n_resamples None enumerates every split of the pooled values into sizes n_a, n_b when there are at most
    100,000 (exact p); otherwise, or when n_resamples is fewer than the splits, it draws n_resamples (None: 9999)
    seeded random splits and reports (count + 1) / (n_resamples + 1), which never gives p = 0.
    As in SciPy's permutation_test: the two-sided p is twice the smaller one-sided p (capped at 1), and null
    values within 100 machine epsilons (relative) of the observed statistic count as ties of it.

    Returns statistic, p_value, exact (enumerated or not) and n_resamples (splits enumerated or drawn).
    """
    if statistic not in PERMUTATION_STATISTICS:
        raise ConfigError(f"unknown permutation statistic {statistic!r}; choose one of "
                          f"{', '.join(PERMUTATION_STATISTICS)}")
    _check_alternative(alternative)
    if n_resamples is not None and not (n_resamples == int(n_resamples) and n_resamples >= 1):
        raise ConfigError(f"n_resamples must be a whole number >= 1 or None; got {n_resamples}")
    a, b = _finite_values(a, "a"), _finite_values(b, "b")
    if a.size == 0 or b.size == 0:
        raise ConfigError("permutation_test needs at least one value on each side")
    compute = PERMUTATION_STATISTICS[statistic]
    pooled = np.concatenate([a, b])
    n = pooled.size
    arrangements = math.comb(n, a.size)
    exact = arrangements <= MAX_EXACT_ARRANGEMENTS if n_resamples is None else n_resamples >= arrangements
    observed = float(compute(a[None, :], b[None, :])[0])
    if exact:
        chosen = np.array(list(itertools.combinations(range(n), a.size)), dtype=np.intp)
        rest = np.ones((arrangements, n), dtype=bool)
        rest[np.arange(arrangements)[:, None], chosen] = False
        others = np.nonzero(rest)[1].reshape(arrangements, b.size)
        null = compute(pooled[chosen], pooled[others])
        draws, adjustment = arrangements, 0
    else:
        draws, adjustment = int(n_resamples or 9999), 1
        rng = np.random.default_rng(seed)
        parts = []
        for start in range(0, draws, 1000):
            shuffled = rng.permuted(np.tile(pooled, (min(1000, draws - start), 1)), axis=1)
            parts.append(compute(shuffled[:, :a.size], shuffled[:, a.size:]))
        null = np.concatenate(parts)
    tolerance = abs(observed) * 100 * np.finfo(float).eps
    p_greater = (int((null >= observed - tolerance).sum()) + adjustment) / (draws + adjustment)
    p_less = (int((null <= observed + tolerance).sum()) + adjustment) / (draws + adjustment)
    p_value = {"greater": p_greater, "less": p_less, "two-sided": min(1.0, 2.0 * min(p_greater, p_less))}
    return {"statistic": observed, "p_value": p_value[alternative], "exact": bool(exact), "n_resamples": draws}


MAX_EXACT_PAIRS = 10_000


def _u_distribution(n_a: int, n_b: int) -> np.ndarray:
    """P(U = u), u = 0 .. n_a n_b, for Mann-Whitney's U of a without ties under the null.

    The largest of the n_a + n_b values is a's with probability n_a / (n_a + n_b), and then it beats all n_b of
    b: p[i, j](u) = i / (i + j) p[i - 1, j](u - j) + j / (i + j) p[i, j - 1](u). Probabilities, not counts, so
    nothing overflows, and sums of positive terms keep the tails' relative precision.
    """
    previous = [np.ones(1) for _ in range(n_b + 1)]
    for i in range(1, n_a + 1):
        current = [np.ones(1)]
        for j in range(1, n_b + 1):
            distribution = np.zeros(i * j + 1)
            distribution[j:] += i / (i + j) * previous[j]
            distribution[:i * (j - 1) + 1] += j / (i + j) * current[j - 1]
            current.append(distribution)
        previous = current
    return previous[n_b]


def mann_whitney_exact(a, b) -> dict[str, float]:
    """Mann-Whitney U test with the exact null distribution of U: for small samples without ties.

    Use it instead of `mann_whitney` (normal approximation, fine from ~8 values a side) for 3..10 seeds.
    Ties make the exact distribution wrong, so they are an error: use `permutation_test` or `mann_whitney`.
    Returns u (of a), p_greater (a tends to be larger), p_less and p_two_sided (twice the smaller, capped at 1,
    as SciPy's method="exact"); NaN where a side is empty.
    """
    a, b = _finite_values(a, "a"), _finite_values(b, "b")
    nan = float("nan")
    if a.size == 0 or b.size == 0:
        return {"u": nan, "p_greater": nan, "p_less": nan, "p_two_sided": nan}
    if np.unique(np.concatenate([a, b])).size < a.size + b.size:
        raise ConfigError("mann_whitney_exact needs values without ties; use permutation_test or mann_whitney")
    if a.size * b.size > MAX_EXACT_PAIRS:
        raise ConfigError(f"mann_whitney_exact is for small samples (n_a n_b <= {MAX_EXACT_PAIRS}); "
                          "use mann_whitney, whose normal approximation is accurate at this size")
    u = _u_statistic(a, b)
    distribution = _u_distribution(a.size, b.size)
    k = int(round(u))
    p_greater, p_less = float(distribution[k:].sum()), float(distribution[:k + 1].sum())
    return {"u": u, "p_greater": min(1.0, p_greater), "p_less": min(1.0, p_less),
            "p_two_sided": min(1.0, 2.0 * min(p_greater, p_less))}


# ----------------------------------------------------------------------------------------------------------------
# Trends over a grid
# ----------------------------------------------------------------------------------------------------------------

def kruskal_wallis(groups) -> dict[str, float]:
    """Kruskal-Wallis H test of "every group comes from one distribution", with the tie correction.

    Use it to ask whether a score changes at all across the levels of a grid axis (k >= 2 groups, e.g. seeds per
    value of m) without assuming normality; p is chi-square with k - 1 degrees of freedom, fine from ~5 values a
    group. Returns h, df and p; NaN h and p when every value is tied.
    """
    arrays = [_finite_values(group, "each group") for group in groups]
    if len(arrays) < 2 or any(array.size == 0 for array in arrays):
        raise ConfigError(f"kruskal_wallis needs at least 2 groups, none empty; got sizes {[x.size for x in arrays]}")
    pooled = np.concatenate(arrays)
    n = pooled.size
    ranks = average_ranks(pooled)
    bounds = np.cumsum([0] + [array.size for array in arrays])
    rank_term = sum(float(ranks[start:stop].sum()) ** 2 / (stop - start) for start, stop in zip(bounds, bounds[1:]))
    _, counts = np.unique(pooled, return_counts=True)
    tie_correction = 1.0 - float((counts ** 3 - counts).sum()) / (n ** 3 - n)
    df = len(arrays) - 1
    if tie_correction <= 0:
        return {"h": float("nan"), "df": df, "p": float("nan")}
    h = (12.0 / (n * (n + 1)) * rank_term - 3.0 * (n + 1)) / tie_correction
    return {"h": float(h), "df": df, "p": chi2_sf(float(h), df)}


def quadratic_trend(x, y) -> dict[str, float]:
    """Least-squares fit y ~ a + b x + c x^2 and the t test of the curvature c (Student t, n - 3 df).

    Use it to test a rise-then-fall (c < 0) or a dip (c > 0) of a score along a grid axis, with x e.g. log m.
    Returns a, b, c, se_c, t, p (two-sided) and df. Needs at least 3 distinct x; with exactly 3 points the fit
    is exact and se_c, t and p are NaN.
    """
    x, y = _finite_values(x, "x"), _finite_values(y, "y")
    if x.size != y.size:
        raise ConfigError(f"quadratic_trend needs paired x and y; got {x.size} and {y.size} values")
    if np.unique(x).size < 3:
        raise ConfigError("quadratic_trend needs at least 3 distinct x values to fit a curvature")
    design = np.column_stack([np.ones_like(x), x, x * x])
    # QR rather than the normal equations: (X^T X)^-1 = R^-1 R^-T without squaring the condition number
    q, r = np.linalg.qr(design)
    coefficients = np.linalg.solve(r, q.T @ y)
    df = x.size - 3
    a, b, c = (float(value) for value in coefficients)
    nan = float("nan")
    if df == 0:
        return {"a": a, "b": b, "c": c, "se_c": nan, "t": nan, "p": nan, "df": 0}
    residuals = y - design @ coefficients
    variance = float(residuals @ residuals) / df
    r_inverse = np.linalg.inv(r)
    se_c = math.sqrt(variance * float(r_inverse[2] @ r_inverse[2]))
    if se_c == 0:
        t = math.copysign(math.inf, c) if c != 0 else nan
        p = 0.0 if c != 0 else nan
    else:
        t = c / se_c
        p = min(1.0, 2.0 * t_cdf(-abs(t), df))
    return {"a": a, "b": b, "c": c, "se_c": se_c, "t": t, "p": p, "df": df}


# ----------------------------------------------------------------------------------------------------------------
# One run's evaluation curve
# ----------------------------------------------------------------------------------------------------------------

DIRECTIONS = ("higher", "lower")


def curve_statistics(steps, values, direction: str, last_k: int = 3, threshold: float | None = None
                     ) -> dict[str, float]:
    """Summaries of one run's evaluation curve (values at increasing steps) in which `direction` is better.

    Use them to compare runs by more than the final value: last_k_mean (mean of the last k points, steadier than
    the final one), best and best_step (the first step reaching it), final, drop (best minus final in the good
    direction, >= 0: how much was lost by stopping late), auc (trapezoidal area under the curve divided by the step
    span: the curve's time-average; the value itself for a single point) and time_to_threshold (the first
    evaluated step whose value reaches the threshold in the good direction, no interpolation; NaN if never or
    no threshold). NaN values (a diverged evaluation) propagate into final, drop, last_k_mean and auc; best and
    time_to_threshold use the finite points.
    """
    if direction not in DIRECTIONS:
        raise ConfigError(f"unknown direction {direction!r}; choose one of {', '.join(DIRECTIONS)}")
    if last_k != int(last_k) or last_k < 1:
        raise ConfigError(f"last_k must be a whole number >= 1; got {last_k}")
    steps, values = np.asarray(steps, dtype=float).ravel(), np.asarray(values, dtype=float).ravel()
    if steps.size != values.size or steps.size == 0:
        raise ConfigError(f"curve_statistics needs one value per step and at least one; got {steps.size} steps "
                          f"and {values.size} values")
    if not np.isfinite(steps).all() or (np.diff(steps) <= 0).any():
        raise ConfigError("curve steps must be finite and strictly increasing; sort the curve by step")
    nan = float("nan")
    sign = 1.0 if direction == "higher" else -1.0
    finite = np.isfinite(values)
    if finite.any():
        best_index = int(np.argmax(np.where(finite, sign * values, -math.inf)))
        best, best_step = float(values[best_index]), float(steps[best_index])
    else:
        best = best_step = nan
    final = float(values[-1])
    span = float(steps[-1] - steps[0])
    if span > 0:
        auc = float(((values[1:] + values[:-1]) / 2.0 * np.diff(steps)).sum() / span)
    else:
        auc = final
    time_to_threshold = nan
    if threshold is not None:
        reached = np.nonzero(finite & (sign * values >= sign * threshold))[0]
        time_to_threshold = float(steps[reached[0]]) if reached.size else nan
    return {"last_k_mean": float(values[-int(last_k):].mean()), "best": best, "best_step": best_step,
            "final": final, "drop": sign * (best - final), "auc": auc, "time_to_threshold": time_to_threshold}


NEAR_BEST = 0.1  # an evaluation within 10% of the run's best counts as near it (the stability share)
QUALITY_LAST_K = 3  # a record's last_k_mean: the mean of a run's last three evaluations


def quality_statistics(steps, values, direction: str, last_k: int = QUALITY_LAST_K, near_best: float = NEAR_BEST
                       ) -> dict[str, float]:
    """A run's scores over training as its record keeps them ({} when no evaluation is finite).

    `curve_statistics` of the finite evaluations (a NaN one is left out, so final is the last finite score) less
    time_to_threshold, which needs a threshold per metric, plus near_best_share: the share of those evaluations
    within `near_best` x |best| of the best, how steadily the run stays near its peak.
    """
    steps, values = np.asarray(steps, dtype=float).ravel(), np.asarray(values, dtype=float).ravel()
    if steps.size != values.size:
        raise ConfigError(f"quality_statistics needs one value per step; got {steps.size} steps and "
                          f"{values.size} values")
    finite = np.isfinite(values)
    steps, values = steps[finite], values[finite]
    if values.size == 0:
        return {}
    summary = curve_statistics(steps, values, direction, last_k)
    del summary["time_to_threshold"]
    summary["near_best_share"] = float((np.abs(values - summary["best"]) <= near_best * abs(summary["best"])).mean())
    return summary


# ----------------------------------------------------------------------------------------------------------------
# Numbers for tables
# ----------------------------------------------------------------------------------------------------------------

def format_significant(x: float, digits: int = 3) -> str:
    """x rounded to `digits` significant digits for a table, in plain decimals for ordinary magnitudes.

    Rules: trailing zeros are kept, as they are significant (0.5 -> "0.500"); digits left of the point are never
    rounded away (1718 -> "1718", 123.4 -> "123", 99.96 -> "100"); no thousands separator, so the text still
    parses as a number (CSV cells, float()); magnitudes, after rounding, below 1e-4 or from 1e15 on use a compact
    exponent, 2e-7 -> "2.00e-7", 1e20 -> "1.00e20"; 0 -> "0"; NaN -> "nan", infinities -> "inf" and "-inf".
    """
    if digits != int(digits) or digits < 1:
        raise ConfigError(f"digits must be a whole number >= 1; got {digits}")
    digits = int(digits)
    x = float(x)
    if x != x:
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    # the exponent after rounding, so that 99.96 counts as 100 and 9.9996e-5 as 1.00e-4
    mantissa, exponent_text = f"{x:.{digits - 1}e}".split("e")
    exponent = int(exponent_text)
    if exponent < -4 or exponent >= 15:
        return f"{mantissa}e{exponent}"
    return f"{x:.{max(0, digits - 1 - exponent)}f}"
