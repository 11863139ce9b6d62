"""ebm_bench.stats against values worked out by hand and against SciPy (a test dependency: the package itself
must run without it)."""

import itertools
import math

import numpy as np
import pytest

from ebm_bench.errors import ConfigError
from ebm_bench.stats import (average_ranks, benjamini_hochberg, betainc, bootstrap_ci, bounded_interval, chi2_sf,
                             ci95_half_width, curve_statistics, format_significant, gammaincc, holm, kruskal_wallis,
                             mann_whitney, mann_whitney_exact, mean_difference_interval, normal_quantile, normal_sf,
                             permutation_test, probability_of_superiority, quadratic_trend, quality_statistics,
                             spearman, superiority_interval, t_cdf, t_quantile, welch_t_test, wilson_interval)


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


# ----------------------------------------------------------------------------------------------------------------
# Checks against SciPy (a test dependency only: the GPU image has numpy but no SciPy, so these skip there)
# ----------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sp():
    return pytest.importorskip("scipy.stats")


@pytest.fixture(scope="module")
def special():
    return pytest.importorskip("scipy.special")


def test_betainc_and_t_distribution_match_scipy(sp, special):
    for a, b, x in itertools.product([0.5, 1.0, 2.5, 10.0, 40.0], [0.5, 1.0, 3.0, 20.0], [1e-4, 0.1, 0.5, 0.9, 0.999]):
        assert betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-9)
    for df, t in itertools.product([1, 2, 3, 4.5, 9, 29, 100], [-30.0, -3.0, -1.0, -0.1, 0.2, 2.0, 5.0, 40.0]):
        assert t_cdf(t, df) == pytest.approx(sp.t.cdf(t, df), rel=1e-9)
    # the quantiles intervals use; near p = 0.5 the bisection's error is ~1e-12 absolute, not relative
    for df, p in itertools.product([1, 2, 3, 4.5, 9, 29, 100], [0.001, 0.025, 0.1, 0.9, 0.95, 0.975, 0.999]):
        assert t_quantile(p, df) == pytest.approx(sp.t.ppf(p, df), rel=1e-9)


def test_ci95_half_width_and_welch_match_scipy(sp):
    for std, n in [(1.0, 2), (0.3, 3), (2.5, 10), (0.01, 30)]:
        assert ci95_half_width(std, n) == pytest.approx(sp.t.ppf(0.975, n - 1) * std / math.sqrt(n), rel=1e-9)
    for args in [(1.0, 0.5, 3, 0.2, 0.7, 4), (10.0, 2.0, 10, 12.0, 5.0, 5), (0.0, 1.0, 3, 0.0, 1.0, 3)]:
        expected = sp.ttest_ind_from_stats(*args, equal_var=False)
        t, p = welch_t_test(*args)
        assert t == pytest.approx(expected.statistic, rel=1e-9, abs=1e-15)
        assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_ranks_normal_sf_and_spearman_match_scipy(sp):
    rng = np.random.default_rng(3)
    values = rng.integers(0, 6, size=25).astype(float)  # many ties
    assert average_ranks(values) == pytest.approx(sp.rankdata(values), rel=1e-12)
    for z in [-5.0, -1.0, 0.0, 0.7, 3.0, 8.0]:
        assert normal_sf(z) == pytest.approx(sp.norm.sf(z), rel=1e-9)
    x, y = rng.normal(size=12), rng.integers(0, 4, size=12)
    assert spearman(x, y) == pytest.approx(sp.spearmanr(x, y).statistic, rel=1e-9)


def test_mann_whitney_matches_scipy_asymptotic(sp):
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 8, size=9).astype(float), rng.integers(2, 10, size=11).astype(float)
    result = mann_whitney(a, b)
    assert result["u"] == sp.mannwhitneyu(a, b).statistic
    for key, alternative in [("p_greater", "greater"), ("p_two_sided", "two-sided")]:
        expected = sp.mannwhitneyu(a, b, alternative=alternative, use_continuity=False, method="asymptotic").pvalue
        assert result[key] == pytest.approx(expected, rel=1e-9)


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap(sp):
    values = np.random.default_rng(5).lognormal(size=15)
    expected = sp.bootstrap((values,), np.mean, method="percentile", n_resamples=10_000,
                            rng=np.random.default_rng(6)).confidence_interval
    low, high = bootstrap_ci(values, seed=6)
    # two Monte Carlo estimates of the same quantiles: the spread of the mean is ~0.3 here, so 0.05 is generous
    assert low == pytest.approx(expected.low, abs=0.05) and high == pytest.approx(expected.high, abs=0.05)


def test_normal_quantile_matches_scipy(sp):
    for p in [1e-300, 1e-20, 1e-5, 0.01, 0.02425, 0.3, 0.7, 0.975, 0.999, 1 - 1e-10]:
        assert normal_quantile(p) == pytest.approx(sp.norm.ppf(p), rel=1e-12)
    assert normal_quantile(0.5) == 0.0
    assert normal_quantile(0.0) == -math.inf and normal_quantile(1.0) == math.inf
    assert math.isnan(normal_quantile(1.5))


def test_chi2_sf_and_gammaincc_match_scipy(sp, special):
    for x, df in itertools.product([1e-8, 0.001, 0.5, 3.0, 10.0, 29.0, 30.0, 50.0, 200.0, 1000.0],
                                   [0.5, 1, 2, 3, 4, 7, 30, 50]):
        assert chi2_sf(x, df) == pytest.approx(sp.chi2.sf(x, df), rel=1e-9)
    for a, x in [(0.5, 0.2), (3.0, 2.0), (3.0, 4.0), (12.5, 40.0)]:
        assert gammaincc(a, x) == pytest.approx(special.gammaincc(a, x), rel=1e-9)
    assert chi2_sf(0.0, 3) == 1.0 and chi2_sf(math.inf, 3) == 0.0
    assert math.isnan(chi2_sf(1.0, 0)) and math.isnan(chi2_sf(float("nan"), 2))


# ----------------------------------------------------------------------------------------------------------------
# Wilson interval
# ----------------------------------------------------------------------------------------------------------------

def test_wilson_interval_by_hand():
    # 0 of n: centre = (z^2 / 2n) / (1 + z^2 / n) equals the half-width, so low = 0 and high = z^2 / (n + z^2);
    # z = 1.959963984540054 for 95%: 3.841458820694124 / 67.841458820694124 = 0.056624059792805...
    low, high = wilson_interval(0, 64)
    assert low == 0.0 and high == pytest.approx(0.05662405979280534, rel=1e-9)
    # 32 of 64: centre 0.5, half = z / (1 + z^2/64) * sqrt(0.25/64 + z^2 / (4 * 64^2)) = 0.119042...
    z = 1.959963984540054
    half = z / (1 + z * z / 64) * math.sqrt(0.25 / 64 + z * z / (4 * 64 * 64))
    assert wilson_interval(32, 64) == pytest.approx((0.5 - half, 0.5 + half), rel=1e-9)
    assert wilson_interval(64, 64) == pytest.approx((1 - 0.05662405979280534, 1.0), rel=1e-9)
    assert all(math.isnan(bound) for bound in wilson_interval(0, 0))


def test_wilson_interval_matches_scipy(sp):
    for successes, n, confidence in [(0, 64, 0.95), (1, 10, 0.95), (7, 9, 0.9), (50, 200, 0.99), (3, 3, 0.8)]:
        expected = sp.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
        low, high = wilson_interval(successes, n, confidence)
        assert low == pytest.approx(expected.low, rel=1e-9, abs=1e-15)
        assert high == pytest.approx(expected.high, rel=1e-9)


@pytest.mark.parametrize("successes, n, confidence", [(5, 4, 0.95), (-1, 4, 0.95), (1.5, 4, 0.95), (1, 4, 1.0)])
def test_wilson_interval_rejects_bad_input(successes, n, confidence):
    with pytest.raises(ConfigError):
        wilson_interval(successes, n, confidence)


# ----------------------------------------------------------------------------------------------------------------
# Holm and Benjamini-Hochberg
# ----------------------------------------------------------------------------------------------------------------

def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times m - j + 1 = 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04; running maximum
    # 0.02, 0.03, 0.06, 0.06. The NaN stays and does not count in m = 4
    adjusted = holm([0.01, float("nan"), 0.04, 0.03, 0.005])
    assert math.isnan(adjusted[1])
    assert adjusted[[0, 2, 3, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-9)
    # 0.5 * 2 = 1.0 caps; 0.6 * 1 = 0.6 rises to the running maximum 1.0
    assert holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])
    assert holm([]).size == 0


def test_benjamini_hochberg_by_hand_and_against_scipy(sp):
    # sorted 0.005, 0.01, 0.03, 0.04 times m / j = 4, 2, 4/3, 1: 0.02, 0.02, 0.04, 0.04; running minimum from the
    # top leaves them
    adjusted = benjamini_hochberg([0.01, 0.04, float("nan"), 0.03, 0.005])
    assert math.isnan(adjusted[2])
    assert adjusted[[0, 1, 3, 4]] == pytest.approx([0.02, 0.04, 0.04, 0.02], rel=1e-9)
    # 0.04 * 3 / 2 = 0.06 is lowered to 0.05 (= 0.05 * 3 / 3) by the step-up minimum
    assert benjamini_hochberg([0.01, 0.04, 0.05]) == pytest.approx([0.03, 0.05, 0.05], rel=1e-9)
    p = np.random.default_rng(7).uniform(size=30) ** 2
    assert benjamini_hochberg(p) == pytest.approx(sp.false_discovery_control(p, method="bh"), rel=1e-9)
    grid = p.reshape(5, 6)
    assert benjamini_hochberg(grid).shape == (5, 6)


def test_adjustments_are_monotone_and_capped():
    p = np.random.default_rng(8).uniform(size=40)
    order = np.argsort(p)
    for adjust in (holm, benjamini_hochberg):
        adjusted = adjust(p)
        assert (np.diff(adjusted[order]) >= 0).all() and (adjusted >= p).all() and (adjusted <= 1).all()
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        holm([0.2, 1.5])


# ----------------------------------------------------------------------------------------------------------------
# Bounded intervals
# ----------------------------------------------------------------------------------------------------------------

def test_bounded_interval_log_scale_for_a_lower_bound(sp):
    values = np.array([0.1, 5.0, 12.0])  # I' of three seeds: the plain t interval goes below 0
    plain = bounded_interval(values)
    assert plain[0] < 0
    logs = np.log(values)
    half = sp.t.ppf(0.975, 2) * logs.std(ddof=1) / math.sqrt(3)
    low, high = bounded_interval(values, low=0.0)
    assert low >= 0.0
    assert (low, high) == pytest.approx((math.exp(logs.mean() - half), math.exp(logs.mean() + half)), rel=1e-9)


def test_bounded_interval_without_bounds_is_the_t_interval(sp):
    values = np.array([0.1, 5.0, 12.0])
    expected = sp.t.interval(0.95, 2, loc=values.mean(), scale=values.std(ddof=1) / math.sqrt(3))
    assert bounded_interval(values) == pytest.approx(expected, rel=1e-9)
    assert bounded_interval(values, confidence=0.9) == pytest.approx(
        sp.t.interval(0.9, 2, loc=values.mean(), scale=values.std(ddof=1) / math.sqrt(3)), rel=1e-9)


def test_bounded_interval_logit_scale_for_a_share(sp, special):
    values = np.array([0.2, 0.25, 0.3])
    logits = special.logit(values)
    half = sp.t.ppf(0.975, 2) * logits.std(ddof=1) / math.sqrt(3)
    expected = special.expit(logits.mean() - half), special.expit(logits.mean() + half)
    assert bounded_interval(values, low=0.0, high=1.0) == pytest.approx(expected, rel=1e-9)
    # on [0, 2] the same numbers are shares 0.1, 0.125, 0.15
    logits = special.logit(values / 2)
    half = sp.t.ppf(0.975, 2) * logits.std(ddof=1) / math.sqrt(3)
    expected = 2 * special.expit(logits.mean() - half), 2 * special.expit(logits.mean() + half)
    assert bounded_interval(values, low=0.0, high=2.0) == pytest.approx(expected, rel=1e-9)


def test_bounded_interval_upper_bound_only(sp):
    values = np.array([0.9, 0.95, 0.99])  # e.g. a loss known to stay below 1
    logs = np.log(1.0 - values)
    half = sp.t.ppf(0.975, 2) * logs.std(ddof=1) / math.sqrt(3)
    low, high = bounded_interval(values, high=1.0)
    assert (low, high) == pytest.approx((1 - math.exp(logs.mean() + half), 1 - math.exp(logs.mean() - half)),
                                        rel=1e-9)
    assert high <= 1.0


def test_bounded_interval_with_a_value_on_the_bound_cuts_the_t_interval(sp):
    values = np.array([0.0, 0.0001, 0.0004])  # a recall of three seeds, one exactly 0: no log-odds
    t_high = values.mean() + sp.t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3)
    low, high = bounded_interval(values, low=0.0, high=1.0)
    assert low == 0.0 and high == pytest.approx(t_high, rel=1e-9)
    assert bounded_interval(values, low=0.0, high=1.0, method="clip") == (low, high)


def test_bounded_interval_always_inside_the_bounds():
    rng = np.random.default_rng(9)
    for _ in range(50):
        values = np.clip(rng.normal(0.05, 0.2, size=int(rng.integers(2, 11))), 0.0, 1.0)
        for method in ("transform", "clip", "bootstrap"):
            low, high = bounded_interval(values, 0.0, 1.0, method=method, n_boot=200)
            assert 0.0 <= low <= high <= 1.0
    # the transform's rounding: 0.1 + (0.3 - 0.1) * expit(large) is 0.30000000000000004 in floating point
    assert bounded_interval([0.2999999, 0.29999999, 0.2999999999], 0.1, 0.3)[1] <= 0.3


def test_bounded_interval_bootstrap_method_and_edge_cases():
    values = [0.2, 0.25, 0.3, 0.6]
    assert bounded_interval(values, 0.0, 1.0, method="bootstrap", seed=4) == bootstrap_ci(values, seed=4)
    assert all(math.isnan(bound) for bound in bounded_interval([0.5], 0.0, 1.0))
    assert bounded_interval([0.5, 0.5, 0.5], 0.0, 1.0) == pytest.approx((0.5, 0.5))


@pytest.mark.parametrize("kwargs, match", [
    ({"values": [0.5, 1.5], "low": 0.0, "high": 1.0}, "outside"),
    ({"values": [0.5, 0.6], "low": 1.0, "high": 0.0}, "low < high"),
    ({"values": [0.5, 0.6], "method": "wald"}, "method"),
    ({"values": [0.5, float("nan")]}, "finite"),
    ({"values": [0.5, 0.6], "confidence": 95}, "confidence"),
])
def test_bounded_interval_rejects_bad_input(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        bounded_interval(**kwargs)


# ----------------------------------------------------------------------------------------------------------------
# format_significant
# ----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("x, digits, text", [
    (123.4, 3, "123"), (0.012345, 3, "0.0123"), (1718, 3, "1718"), (1718.4, 3, "1718"), (99.96, 3, "100"),
    (0.5, 3, "0.500"), (-2.3456, 3, "-2.35"), (1.0, 3, "1.00"), (0.0001, 3, "0.000100"), (9.9996e-5, 3, "0.000100"),
    (2e-7, 3, "2.00e-7"), (1.2345e-5, 3, "1.23e-5"), (-2e-7, 2, "-2.0e-7"), (1e20, 3, "1.00e20"),
    (123456789.0, 3, "123456789"), (0.26, 1, "0.3"), (np.float64(3.14159), 4, "3.142"), (0, 3, "0"),
    (float("nan"), 3, "nan"), (math.inf, 3, "inf"), (-math.inf, 3, "-inf"),
])
def test_format_significant(x, digits, text):
    assert format_significant(x, digits) == text


def test_format_significant_rejects_bad_digits():
    with pytest.raises(ConfigError, match="digits"):
        format_significant(1.0, 0)


# ----------------------------------------------------------------------------------------------------------------
# Effect sizes
# ----------------------------------------------------------------------------------------------------------------

def test_probability_of_superiority_by_hand_and_against_scipy(sp):
    # the 6 pairs of a = [1, 2, 3], b = [1, 2]: wins 3 > 1, 3 > 2, 2 > 1; ties 1 = 1, 2 = 2 count one half each;
    # 1 < 2 counts 0: (3 + 2 * 0.5) / 6
    assert probability_of_superiority([1, 2, 3], [1, 2]) == pytest.approx(4 / 6)
    rng = np.random.default_rng(10)
    a, b = rng.integers(0, 5, size=7).astype(float), rng.integers(1, 6, size=6).astype(float)
    assert probability_of_superiority(a, b) == pytest.approx(sp.mannwhitneyu(a, b).statistic / 42, rel=1e-12)
    assert math.isnan(probability_of_superiority([], [1.0]))


def test_superiority_interval_agrees_with_scipy_bootstrap(sp):
    rng = np.random.default_rng(11)
    a, b = rng.normal(0.5, 1.0, size=12), rng.normal(0.0, 1.0, size=10)
    low, high = superiority_interval(a, b, seed=2)
    assert low < probability_of_superiority(a, b) < high
    assert superiority_interval(a, b, seed=2) == (low, high)  # seeded

    def auc(x, y, axis):
        return ((x[..., :, None] > y[..., None, :]) + 0.5 * (x[..., :, None] == y[..., None, :])).mean(axis=(-2, -1))

    expected = sp.bootstrap((a, b), auc, method="percentile", n_resamples=10_000, vectorized=True,
                            rng=np.random.default_rng(3)).confidence_interval
    # two Monte Carlo estimates of the same 2.5% and 97.5% quantiles, each off by ~0.005
    assert low == pytest.approx(expected.low, abs=0.03) and high == pytest.approx(expected.high, abs=0.03)
    # complete separation: every resample separates too
    assert superiority_interval([5, 6, 7], [1, 2, 3], n_boot=500) == (1.0, 1.0)


def test_mean_difference_interval_matches_scipy_welch(sp):
    rng = np.random.default_rng(12)
    a, b = rng.normal(1.0, 1.0, size=5), rng.normal(0.0, 3.0, size=4)
    for confidence in (0.95, 0.8):
        expected = sp.ttest_ind(a, b, equal_var=False).confidence_interval(confidence_level=confidence)
        assert mean_difference_interval(a, b, confidence) == pytest.approx((expected.low, expected.high), rel=1e-9)
    assert all(math.isnan(bound) for bound in mean_difference_interval([1.0], [1.0, 2.0]))
    assert mean_difference_interval([2.0, 2.0], [1.0, 1.0, 1.0]) == (1.0, 1.0)


# ----------------------------------------------------------------------------------------------------------------
# Permutation and exact tests
# ----------------------------------------------------------------------------------------------------------------

def _scipy_statistic(name):
    if name == "mean_difference":
        return lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis)
    return lambda x, y, axis: np.median(x, axis=axis) - np.median(y, axis=axis)


@pytest.mark.parametrize("statistic", ["mean_difference", "median_difference"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_permutation_test_exact_matches_scipy(sp, statistic, alternative):
    rng = np.random.default_rng(13)
    # unequal sizes and ties: the null distribution is asymmetric and has values equal to the observed one
    a, b = rng.integers(0, 6, size=5).astype(float) + 1, rng.integers(0, 6, size=7).astype(float)
    result = permutation_test(a, b, statistic=statistic, alternative=alternative)
    expected = sp.permutation_test((a, b), _scipy_statistic(statistic), permutation_type="independent",
                                   alternative=alternative, n_resamples=np.inf, vectorized=True)
    assert result["exact"] and result["n_resamples"] == math.comb(12, 5)
    assert result["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert result["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_permutation_test_by_hand():
    # a = [3, 4], b = [1, 2]: of the 6 splits only {3, 4} gives a mean difference >= 2, so p_greater = 1 / 6
    result = permutation_test([3, 4], [1, 2], alternative="greater")
    assert result["statistic"] == 2.0 and result["p_value"] == pytest.approx(1 / 6)
    assert permutation_test([3, 4], [1, 2])["p_value"] == pytest.approx(2 / 6)


def test_permutation_test_monte_carlo_when_the_splits_are_many(sp):
    rng = np.random.default_rng(14)
    a, b = rng.normal(0.8, 1.0, size=12), rng.normal(0.0, 1.0, size=12)  # C(24, 12) = 2.7 million splits
    result = permutation_test(a, b, seed=1)
    assert not result["exact"] and result["n_resamples"] == 9999
    assert permutation_test(a, b, seed=1) == result  # seeded
    expected = sp.permutation_test((a, b), _scipy_statistic("mean_difference"), n_resamples=9999,
                                   vectorized=True, rng=np.random.default_rng(2)).pvalue
    # each estimate has a standard error of at most 0.005 (two-sided doubles it): 0.03 is ~3 of their joint ones
    assert result["p_value"] == pytest.approx(expected, abs=0.03)
    # the + 1 correction: a split more extreme than every draw still gets p = 1 / (n + 1), never 0
    far = permutation_test(np.arange(12) + 100.0, np.arange(12), alternative="greater", n_resamples=99)
    assert far["p_value"] == pytest.approx(1 / 100)


def test_permutation_test_exact_when_asked_for_as_many_resamples_as_splits():
    result = permutation_test([3, 4, 5], [1, 2, 6], n_resamples=20)  # C(6, 3) = 20
    assert result["exact"] and result["n_resamples"] == 20
    assert not permutation_test([3, 4, 5], [1, 2, 6], n_resamples=19)["exact"]


@pytest.mark.parametrize("kwargs, match", [
    ({"statistic": "t"}, "statistic"), ({"alternative": "bigger"}, "alternative"), ({"n_resamples": 0}, "n_resamples"),
])
def test_permutation_test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        permutation_test([1.0, 2.0], [3.0], **kwargs)
    with pytest.raises(ConfigError, match="each side"):
        permutation_test([], [3.0])


@pytest.mark.parametrize("n_a, n_b", [(3, 3), (3, 7), (5, 4), (10, 10)])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mann_whitney_exact_matches_scipy(sp, n_a, n_b, alternative):
    rng = np.random.default_rng(n_a * 100 + n_b)
    a, b = rng.normal(0.7, 1.0, size=n_a), rng.normal(0.0, 1.0, size=n_b)
    result = mann_whitney_exact(a, b)
    expected = sp.mannwhitneyu(a, b, method="exact", alternative=alternative)
    assert result["u"] == expected.statistic
    key = {"two-sided": "p_two_sided", "greater": "p_greater", "less": "p_less"}[alternative]
    assert result[key] == pytest.approx(expected.pvalue, rel=1e-9)


def test_mann_whitney_exact_by_hand_and_its_limits():
    # a = [3, 4, 5] above b = [1, 2]: U = 6 is the largest of C(5, 2) = 10 equally likely arrangements
    result = mann_whitney_exact([3, 4, 5], [1, 2])
    assert result["u"] == 6 and result["p_greater"] == pytest.approx(0.1) and result["p_less"] == pytest.approx(1.0)
    assert result["p_two_sided"] == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="ties"):
        mann_whitney_exact([1.0, 2.0], [2.0, 3.0])
    with pytest.raises(ConfigError, match="mann_whitney"):
        mann_whitney_exact(np.arange(101.0), np.arange(101.0) + 0.5)
    assert math.isnan(mann_whitney_exact([], [1.0])["p_two_sided"])


# ----------------------------------------------------------------------------------------------------------------
# Trend tests
# ----------------------------------------------------------------------------------------------------------------

def test_kruskal_wallis_matches_scipy(sp):
    rng = np.random.default_rng(15)
    groups = [rng.normal(size=5), rng.normal(1.0, 1.0, size=6), np.round(rng.normal(size=4)),
              np.round(rng.normal(size=4))]  # the rounded ones tie
    result = kruskal_wallis(groups)
    expected = sp.kruskal(*groups)
    assert result["df"] == 3
    assert result["h"] == pytest.approx(expected.statistic, rel=1e-9)
    assert result["p"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_kruskal_wallis_by_hand_and_its_limits():
    # ranks [1, 2 | 3, 4 | 5, 6], sums 3, 7, 11: H = 12 / 42 * (9 + 49 + 121) / 2 - 21 = 25.571... - 21 = 4.5714...
    result = kruskal_wallis([[1, 2], [3, 4], [5, 6]])
    assert result["h"] == pytest.approx(12 / 42 * 179 / 2 - 21, rel=1e-12)
    assert result["p"] == pytest.approx(math.exp(-result["h"] / 2), rel=1e-12)  # chi-square, 2 df
    tied = kruskal_wallis([[1.0, 1.0], [1.0]])
    assert math.isnan(tied["h"]) and math.isnan(tied["p"])
    with pytest.raises(ConfigError, match="2 groups"):
        kruskal_wallis([[1.0, 2.0]])
    with pytest.raises(ConfigError, match="none empty"):
        kruskal_wallis([[1.0, 2.0], []])


def test_quadratic_trend_matches_polyfit_and_scipy_t(sp):
    rng = np.random.default_rng(16)
    x = np.repeat(np.log([1, 2, 4, 8, 16, 32]), 3)  # log m, three seeds each
    y = 1.0 + 0.5 * x - 0.3 * x ** 2 + rng.normal(0.0, 0.5, size=x.size)
    coefficients, unscaled = np.polyfit(x, y, 2, cov="unscaled")
    residuals = y - np.polyval(coefficients, x)
    se_c = math.sqrt(unscaled[0, 0] * (residuals @ residuals) / (x.size - 3))
    result = quadratic_trend(x, y)
    assert (result["c"], result["b"], result["a"]) == pytest.approx(tuple(coefficients), rel=1e-9)
    assert result["se_c"] == pytest.approx(se_c, rel=1e-9) and result["df"] == 15
    assert result["t"] == pytest.approx(coefficients[0] / se_c, rel=1e-9)
    assert result["p"] == pytest.approx(2 * sp.t.sf(abs(coefficients[0] / se_c), 15), rel=1e-9)
    assert result["p"] < 0.05 and result["c"] < 0


def test_quadratic_trend_by_hand_and_its_limits():
    # four points on y = x^2 except y(3) = 10: the parabola through them has c = 1.25 by the closed form
    # (x = 0, 1, 2, 3 centred at 1.5: c = sum (x'^2 - 1.25) y / sum (x'^2 - 1.25)^2 = (0 - 1 - 4 + 10) / 4 = 1.25)
    result = quadratic_trend([0, 1, 2, 3], [0, 1, 4, 10])
    assert result["c"] == pytest.approx(1.25, rel=1e-9) and result["df"] == 1
    exact = quadratic_trend([0, 1, 2], [1, 0, 1])
    assert exact["c"] == pytest.approx(1.0) and math.isnan(exact["se_c"]) and math.isnan(exact["p"])
    with pytest.raises(ConfigError, match="3 distinct"):
        quadratic_trend([1, 1, 2, 2], [1, 2, 3, 4])
    with pytest.raises(ConfigError, match="paired"):
        quadratic_trend([1, 2, 3], [1, 2])


# ----------------------------------------------------------------------------------------------------------------
# Curve statistics
# ----------------------------------------------------------------------------------------------------------------

def test_curve_statistics_higher_is_better():
    steps, values = [0, 100, 200, 300, 400], [0.1, 0.5, 0.8, 0.6, 0.7]
    result = curve_statistics(steps, values, "higher", threshold=0.5)
    # area: 100 * ((0.1 + 0.5) / 2 + (0.5 + 0.8) / 2 + (0.8 + 0.6) / 2 + (0.6 + 0.7) / 2) = 230, over 400 steps
    assert result == pytest.approx({"last_k_mean": 0.7, "best": 0.8, "best_step": 200.0, "final": 0.7,
                                    "drop": 0.1, "auc": 0.575, "time_to_threshold": 100.0})
    assert math.isnan(curve_statistics(steps, values, "higher", threshold=0.9)["time_to_threshold"])
    assert math.isnan(curve_statistics(steps, values, "higher")["time_to_threshold"])


def test_curve_statistics_lower_is_better():
    steps, values = [0, 1, 2, 4, 8], [80.0, 40.0, 30.0, 35.0, 50.0]  # an FID curve, uneven steps
    result = curve_statistics(steps, values, "lower", last_k=2, threshold=36.0)
    # area: 1 * 60 + 1 * 35 + 2 * 32.5 + 4 * 42.5 = 330, over 8 steps; first value <= 36 is 30 at step 2
    assert result == pytest.approx({"last_k_mean": 42.5, "best": 30.0, "best_step": 2.0, "final": 50.0,
                                    "drop": 20.0, "auc": 41.25, "time_to_threshold": 2.0})


def test_curve_statistics_ties_single_points_and_nan():
    assert curve_statistics([1, 2, 3, 4], [1.0, 3.0, 3.0, 2.0], "higher")["best_step"] == 2.0  # the first best
    single = curve_statistics([5], [0.4], "higher", last_k=3)
    assert single["auc"] == 0.4 and single["last_k_mean"] == 0.4 and single["drop"] == 0.0
    diverged = curve_statistics([1, 2, 3], [0.2, 0.5, float("nan")], "higher", threshold=0.4)
    assert diverged["best"] == 0.5 and diverged["best_step"] == 2.0 and diverged["time_to_threshold"] == 2.0
    assert all(math.isnan(diverged[key]) for key in ("final", "drop", "auc", "last_k_mean"))


def test_quality_statistics_of_a_record_leave_out_nan_and_add_the_share_near_the_best():
    steps, values = [0, 10, 20, 30, 40], [50.0, 20.0, float("nan"), 21.0, 30.0]  # FID; the NaN one left out
    result = quality_statistics(steps, values, "lower")
    # finite points (0, 50), (10, 20), (30, 21), (40, 30): best 20 at 10, final 30, drop 10, last three
    # (20 + 21 + 30) / 3; area 10 * 35 + 20 * 20.5 + 10 * 25.5 = 1015 over 40 steps; within 10% of 20
    # (<= 22): 20 and 21 -> 2 of 4
    assert result == pytest.approx({"last_k_mean": 71 / 3, "best": 20.0, "best_step": 10.0, "final": 30.0,
                                    "drop": 10.0, "auc": 1015 / 40, "near_best_share": 0.5})
    assert quality_statistics([0, 1], [float("nan")] * 2, "higher") == {}
    with pytest.raises(ConfigError, match="one value per step"):
        quality_statistics([0, 1, 2], [0.1, 0.2], "higher")


@pytest.mark.parametrize("steps, values, direction, last_k, match", [
    ([1, 2], [0.1, 0.2], "up", 3, "direction"),
    ([2, 1], [0.1, 0.2], "higher", 3, "increasing"),
    ([1, 2, 3], [0.1, 0.2], "higher", 3, "one value per step"),
    ([], [], "higher", 3, "at least one"),
    ([1, 2], [0.1, 0.2], "higher", 0, "last_k"),
])
def test_curve_statistics_rejects_bad_input(steps, values, direction, last_k, match):
    with pytest.raises(ConfigError, match=match):
        curve_statistics(steps, values, direction, last_k=last_k)
