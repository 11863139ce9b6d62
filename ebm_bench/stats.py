"""Small-sample statistics for tables over seeds: Student-t intervals and Welch's t-test, without SciPy.

The t distribution's CDF is the regularised incomplete beta function, evaluated by its continued fraction
(modified Lentz); quantiles come from bisection on the CDF. Accurate to ~1e-10, plenty for 3..30 seeds.
"""

from __future__ import annotations

import math


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
