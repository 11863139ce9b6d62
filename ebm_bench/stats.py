"""Statistics for tables over seeds and grids, without SciPy: Student-t intervals and Welch's t-test; ranks,
the Mann-Whitney test, Spearman's correlation and percentile bootstrap intervals.

The t distribution's CDF is the regularised incomplete beta function, evaluated by its continued fraction
(modified Lentz); quantiles come from bisection on the CDF. Accurate to ~1e-10, plenty for 3..30 seeds.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


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
    u = float(average_ranks(both)[:n_a].sum() - n_a * (n_a + 1) / 2.0)
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
