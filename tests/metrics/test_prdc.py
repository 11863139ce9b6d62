"""Precision/recall (torch-fidelity's code) and density/coverage (ours), on hand-computed and real-MNIST cases."""

from __future__ import annotations

import pytest
import torch

from ebm_bench.errors import ConfigError
from ebm_bench.metrics import (
    METRICS,
    density_coverage,
    knn_radii,
    precision_recall,
    prdc,
    score,
)

# 1-D features, k = 1. Real radii (distance to the nearest other real point): 0, 1, 2, 3 -> 1; 10 -> 7.
REAL = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
# 0.5 lies in the balls of 0 and 1; 2.9 in those of 2 and 3 (7.1 from 10, outside its radius 7); 20 in none
GENERATED = torch.tensor([[0.5], [2.9], [20.0]])


def test_knn_radii_are_distances_to_the_kth_other_point():
    assert knn_radii(REAL, k=1).tolist() == [1.0, 1.0, 1.0, 1.0, 7.0]
    assert knn_radii(REAL, k=2).tolist() == [2.0, 1.0, 1.0, 2.0, 8.0]


def test_density_and_coverage_match_the_hand_computed_case():
    density, coverage = density_coverage(GENERATED, REAL, k=1)
    assert density == pytest.approx((2 + 2 + 0) / (1 * 3))  # balls holding each generated point, over k M
    assert coverage == pytest.approx(4 / 5)  # the ball of 10 holds no generated point


def test_precision_and_recall_match_the_hand_computed_case():
    # precision: 0.5 and 2.9 lie in a real ball, 20 does not. recall: generated radii (k=1) are 2.4, 2.4, 17.1,
    # so every real point, 10 included (10 from 20), lies in a generated ball
    precision, recall = precision_recall(GENERATED, REAL, k=1)
    assert precision == pytest.approx(2 / 3)
    assert recall == pytest.approx(1.0)


def test_given_radii_give_the_same_scores_and_a_ball_is_closed():
    assert density_coverage(GENERATED, REAL, 1, knn_radii(REAL, 1)) == density_coverage(GENERATED, REAL, 1)
    on_the_boundary = torch.tensor([[11.0], [17.0]])  # 17 is exactly 7 from 10: inside a closed ball
    assert density_coverage(on_the_boundary, REAL, k=1) == (pytest.approx(1.0), pytest.approx(1 / 5))


def test_too_few_reference_samples_for_k_is_one_line():
    with pytest.raises(ConfigError, match="k=5 need more than 5 generated samples, got 3"):
        prdc(GENERATED, REAL, k=5)


@pytest.fixture(scope="module")
def test_features(mnist_test, mnist_test_images):
    from ebm_bench.metrics import classifier_features

    return classifier_features(mnist_test_images), mnist_test.labels


@pytest.fixture(scope="module")
def train_features(mnist_root):
    from ebm_bench.datasets import to_unit_range
    from ebm_bench.datasets.mnist import load_mnist
    from ebm_bench.metrics import classifier_features

    return classifier_features(to_unit_range(load_mnist(mnist_root, "train", image_size=32).images[:10000]))


@pytest.mark.slow  # k-NN over 10,000 x 10,000 features
def test_mnist_test_against_mnist_train_is_near_one_on_all_four(test_features, train_features):
    # measured: 0.936, 0.937, 0.949, 0.942 (two samples of one distribution, 10k each, 128-d features)
    scores = prdc(test_features[0], train_features)
    assert scores["precision"] > 0.9 and scores["recall"] > 0.9
    assert 0.9 < scores["density"] < 1.1 and scores["coverage"] > 0.9


@pytest.mark.slow  # k-NN over the 10,000 train features
def test_one_digit_has_high_precision_and_low_recall_and_coverage(test_features, train_features):
    features, labels = test_features
    scores = prdc(features[labels == 1], train_features)
    assert scores["precision"] > 0.9  # measured 0.948, recall 0.128, coverage 0.108
    assert scores["recall"] < 0.2 and scores["coverage"] < 0.2  # ones are ~11% of the digits


def test_registered_on_classifier_features_with_k_in_the_provenance(mnist_test_images, mnist_root):
    assert {METRICS[name].needs for name in ("precision", "recall", "density", "coverage")} == {"classifier"}
    ((scores, record),) = score(["precision", "coverage"], mnist_test_images[:500], "mnist-train", data_root=mnist_root)
    assert scores["precision"] > 0.9 and record["prdc_k"] == 5 and record["n_reference"] == 500


def test_a_shared_pass_scores_each_set_as_alone(mnist_test_images, mnist_root):
    sets = [mnist_test_images[:300], mnist_test_images[300:600], torch.flip(mnist_test_images[600:900], [3])]
    names = ["i_prime", "fid_mnist", "precision", "recall", "density", "coverage"]
    together = score(names, sets, "mnist-train", data_root=mnist_root)
    for images, (scores, record) in zip(sets, together):
        ((alone, alone_record),) = score(names, images, "mnist-train", data_root=mnist_root)
        assert scores == pytest.approx(alone, rel=1e-6, abs=1e-9) and record == alone_record
    assert together[2][0]["precision"] < together[0][0]["precision"]  # mirrored digits are off the manifold
    with pytest.raises(ConfigError, match="one shape and size"):
        score(names, [mnist_test_images[:300], mnist_test_images[:200]], "mnist-train")
