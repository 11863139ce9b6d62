"""Rank statistics and bootstrap intervals, against values worked out by hand."""

import math

import numpy as np
import pytest

from ebm_bench.stats import bootstrap_ci, mann_whitney, normal_sf, spearman


def test_mann_whitney_without_ties():
    # every a beats every b: U = 6 of 6 pairs; variance n_a n_b (n + 1) / 12 = 3, z = (6 - 3) / sqrt(3)
    result = mann_whitney([3, 4, 5], [1, 2])
    assert result["u"] == 6 and result["auc"] == 1.0
    assert result["z"] == pytest.approx(math.sqrt(3))
    assert result["p_greater"] == pytest.approx(0.041632, abs=1e-6)
    assert result["p_two_sided"] == pytest.approx(2 * 0.041632, abs=1e-6)


def test_mann_whitney_with_a_tie():
    # ranks of [1, 2 | 2, 3] are [1, 2.5 | 2.5, 4]: U = 3.5 - 3 = 0.5; one tie pair corrects the variance to
    # 2 * 2 / 12 * (5 - 6 / 12) = 1.5
    result = mann_whitney([1, 2], [2, 3])
    assert result["u"] == 0.5 and result["auc"] == 0.125
    assert result["z"] == pytest.approx((0.5 - 2) / math.sqrt(1.5))
    assert result["p_greater"] == pytest.approx(1 - normal_sf(1.5 / math.sqrt(1.5)))


def test_mann_whitney_undefined_cases_are_nan():
    assert math.isnan(mann_whitney([], [1.0])["auc"])
    constant = mann_whitney([1.0, 1.0], [1.0])
    assert constant["auc"] == 0.5 and math.isnan(constant["p_greater"])


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 1000]) == pytest.approx(1.0)
    # ranks (1, 2, 3) and (3, 1, 2): centred (-1, 0, 1) . (1, -1, 0) = -1, norms sqrt(2) each
    assert spearman([1, 2, 3], [3, 1, 2]) == pytest.approx(-0.5)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="paired"):
        spearman([1, 2], [1, 2, 3])


def test_bootstrap_interval_of_a_share():
    # a share of 0.5 over 100 runs: the normal interval is 0.5 +- 1.96 * 0.05
    values = np.array([0.0, 1.0] * 50)
    low, high = bootstrap_ci(values, n_boot=4000, seed=1)
    assert low == pytest.approx(0.402, abs=0.02) and high == pytest.approx(0.598, abs=0.02)
    assert bootstrap_ci(values, seed=1, n_boot=4000) == (low, high)  # seeded
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert bootstrap_ci([1.0, 5.0, 9.0], statistic=np.median, n_boot=2000)[1] <= 9.0
