"""I', MNIST-IS, class coverage and Frechet distance: hand-computed tables, closed forms, and real MNIST."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ebm_bench.errors import ConfigError
from ebm_bench.metrics import (
    class_kl,
    classes_covered,
    feature_statistics,
    fid_mnist,
    frechet_distance,
    i_prime,
    mnist_is,
)
from ebm_bench.metrics.classifier_scores import log_marginal, predicted_class_histogram

# Two samples, two classes: p(y|x1) = (0.9, 0.1), p(y|x2) = (0.2, 0.8), so p(y) = (0.55, 0.45).
P = [[0.9, 0.1], [0.2, 0.8]]
LOG_P = torch.tensor(P, dtype=torch.float64).log()


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def test_i_prime_matches_hand_computed_two_by_two_table():
    marginal = [0.55, 0.45]
    expected = (_kl(marginal, P[0]) + _kl(marginal, P[1])) / 2
    # written out: 0.55 ln(0.55/0.9) + 0.45 ln(0.45/0.1) and 0.55 ln(0.55/0.2) + 0.45 ln(0.45/0.8), averaged
    assert expected == pytest.approx(((0.55 * math.log(0.55 / 0.9) + 0.45 * math.log(4.5))
                                      + (0.55 * math.log(2.75) + 0.45 * math.log(0.5625))) / 2)
    assert i_prime(LOG_P) == pytest.approx(expected, rel=1e-12)


def test_mnist_is_matches_hand_computed_two_by_two_table():
    marginal = [0.55, 0.45]
    expected = math.exp((_kl(P[0], marginal) + _kl(P[1], marginal)) / 2)
    assert mnist_is(LOG_P) == pytest.approx(expected, rel=1e-12)


def test_log_marginal_is_log_of_mean_probability():
    assert log_marginal(LOG_P).exp().tolist() == pytest.approx([0.55, 0.45], rel=1e-12)


def test_identical_predictions_give_zero_i_prime_and_unit_is():
    same = torch.tensor([[0.3, 0.7]] * 5, dtype=torch.float64).log()
    assert i_prime(same) == pytest.approx(0.0, abs=1e-12)
    assert mnist_is(same) == pytest.approx(1.0, abs=1e-12)
    one_class = torch.tensor([[1e-20, 1.0 - 1e-20, 0.0]] * 7, dtype=torch.float32).clamp_min(1e-30).log()
    assert i_prime(one_class) >= 0.0  # a KL: rounding never makes it negative


def test_one_hot_uniform_predictions_reach_the_maximum_is():
    """K confident samples, one per class: MNIST-IS = K (no epsilon: exact zeros stay exact)."""
    one_hot = torch.full((10, 10), -math.inf, dtype=torch.float64)
    one_hot.fill_diagonal_(0.0)
    assert mnist_is(one_hot) == pytest.approx(10.0, rel=1e-12)
    # p(y) = 1/10 > 0 where p(y|x) = 0: KL(p(y) || p(y|x)) is infinite, and I' says so rather than hiding it.
    assert i_prime(one_hot) == math.inf


def test_score_functions_reject_a_malformed_table():
    with pytest.raises(ConfigError):
        i_prime(torch.zeros(3))


def test_class_kl_of_uniform_histogram_is_zero_and_of_a_single_class_is_log_ten():
    uniform = torch.eye(10, dtype=torch.float64).repeat(3, 1).log()  # 30 samples, 3 per class
    single = torch.eye(10, dtype=torch.float64)[[4] * 7].log()
    assert class_kl(uniform) == pytest.approx(0.0, abs=1e-12)
    assert class_kl(single) == pytest.approx(math.log(10), rel=1e-12)


def test_class_kl_of_a_two_class_split_is_hand_computed():
    table = torch.eye(10, dtype=torch.float64)[[0, 0, 0, 1]].log()  # shares 3/4 and 1/4
    expected = 0.75 * math.log(0.75 * 10) + 0.25 * math.log(0.25 * 10)
    assert class_kl(table) == pytest.approx(expected, rel=1e-12)


def test_classes_covered_applies_the_minimum_share():
    # 200 samples: class 0 x 150, class 1 x 48, class 2 x 2 (1% exactly), class 3 x 0.
    labels = [0] * 150 + [1] * 48 + [2] * 2
    table = torch.eye(10, dtype=torch.float64)[labels].log()
    assert classes_covered(table) == 3
    assert classes_covered(table, min_share=0.02) == 2
    assert classes_covered(table, min_share=0.0) == 3
    assert predicted_class_histogram(table)[:4].tolist() == [0.75, 0.24, 0.01, 0.0]


def test_real_mnist_test_set_scores_high_and_covers_every_digit(mnist_test_log_probs):
    assert mnist_is(mnist_test_log_probs) >= 9.5
    assert classes_covered(mnist_test_log_probs) == 10
    assert class_kl(mnist_test_log_probs) < 0.01  # the test set is nearly balanced (892..1135 per digit)
    assert i_prime(mnist_test_log_probs) > 5.0  # confident predictions: KL(p(y) || p(y|x)) is large


def test_a_single_digit_subset_covers_one_class(mnist_test, mnist_test_log_probs):
    sevens = mnist_test_log_probs[mnist_test.labels == 7]
    assert classes_covered(sevens) == 1
    assert 0.9 * math.log(10) < class_kl(sevens) <= math.log(10)  # a few sevens are read as other digits
    assert mnist_is(sevens) < 1.1


def test_frechet_distance_of_a_distribution_with_itself_is_zero():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8))
    mu, sigma = feature_statistics(features)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("mu1, s1, mu2, s2", [(0.0, 1.0, 0.0, 1.0), (1.0, 2.0, -0.5, 0.5), (3.0, 0.1, 3.0, 4.0)])
def test_frechet_distance_of_one_dimensional_gaussians_has_the_closed_form(mu1, s1, mu2, s2):
    """d^2 = (mu1 - mu2)^2 + (s1 - s2)^2 for N(mu1, s1^2) and N(mu2, s2^2)."""
    distance = frechet_distance(np.array([mu1]), np.array([[s1 ** 2]]), np.array([mu2]), np.array([[s2 ** 2]]))
    assert distance == pytest.approx((mu1 - mu2) ** 2 + (s1 - s2) ** 2, rel=1e-10, abs=1e-12)


def test_frechet_distance_of_commuting_covariances_has_the_closed_form():
    """Diagonal covariances: d^2 = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2."""
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_is_invariant_to_a_shared_rotation():
    rng = np.random.default_rng(1)
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    a, b = np.diag([1.0, 2.0, 3.0, 4.0]), np.diag([4.0, 1.0, 1.0, 0.5])
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    plain = frechet_distance(mu1, a, mu2, b)
    rotated = frechet_distance(rotation @ mu1, rotation @ a @ rotation.T, rotation @ mu2, rotation @ b @ rotation.T)
    assert rotated == pytest.approx(plain, rel=1e-9)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ConfigError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


@pytest.mark.slow  # features of the 10,000 test digits
def test_fid_mnist_of_the_test_set_with_itself_is_zero_and_with_one_digit_is_large(mnist_test, mnist_test_images):
    assert fid_mnist(mnist_test_images, mnist_test_images) == pytest.approx(0.0, abs=1e-6)
    half = len(mnist_test_images) // 2
    between_halves = fid_mnist(mnist_test_images[:half], mnist_test_images[half:])
    ones_only = fid_mnist(mnist_test_images[mnist_test.labels == 1][:1000], mnist_test_images[half:])
    assert between_halves < ones_only / 10
