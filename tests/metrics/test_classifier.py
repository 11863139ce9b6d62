"""The pinned MNIST classifier: shipped weights match their hash and accuracy; training is seeded."""

from __future__ import annotations

import shutil

import pytest
import torch

from ebm_bench.datasets import to_unit_range
from ebm_bench.datasets.mnist import load_mnist
from ebm_bench.errors import ConfigError
from ebm_bench.metrics import (
    CLASSIFIER_SHA256,
    CLASSIFIER_TEST_ACCURACY,
    WeightsMismatchError,
    classifier_features,
    classifier_log_probs,
    classifier_outputs,
    load_classifier,
)
from ebm_bench.files import sha256_file
from ebm_bench.metrics.classifier import WEIGHTS_PATH, _fit, state_dict_bytes


def test_shipped_weights_have_the_pinned_sha256():
    assert sha256_file(WEIGHTS_PATH) == CLASSIFIER_SHA256


@pytest.mark.slow  # the classifier over all 10,000 test digits
def test_shipped_classifier_reaches_99_percent_on_the_full_test_set(mnist_test, mnist_test_log_probs):
    accuracy = (mnist_test_log_probs.argmax(dim=1) == mnist_test.labels).double().mean().item()
    assert accuracy >= 0.99
    assert accuracy == pytest.approx(CLASSIFIER_TEST_ACCURACY, abs=5e-4)  # the recorded value, within 5 images


def test_log_probs_are_normalised_float64(mnist_test_log_probs):
    assert mnist_test_log_probs.dtype == torch.float64 and mnist_test_log_probs.shape == (10000, 10)
    assert torch.allclose(mnist_test_log_probs.exp().sum(dim=1), torch.ones(10000, dtype=torch.float64))


def test_28_pixel_inputs_are_padded_to_the_32_pixel_network(mnist_root, mnist_test_images):
    small = to_unit_range(load_mnist(mnist_root, "test", image_size=28).images[:300])
    assert torch.allclose(classifier_log_probs(small), classifier_log_probs(mnist_test_images[:300]), atol=1e-6)
    assert torch.allclose(classifier_features(small), classifier_features(mnist_test_images[:300]), atol=1e-6)


def test_features_are_the_128_dimensional_penultimate_layer(mnist_test_images):
    features = classifier_features(mnist_test_images[:20])
    classifier = load_classifier()
    logits = classifier.head(features.float())
    assert features.shape == (20, 128)
    assert torch.allclose(torch.log_softmax(logits.double(), dim=1), classifier_log_probs(mnist_test_images[:20]),
                          atol=1e-5)


def test_one_pass_gives_the_log_probs_and_features_bit_for_bit(mnist_test_images):
    images = mnist_test_images[:1500]  # two batches of 1000, the second partial
    log_probs, features = classifier_outputs(images)
    assert torch.equal(log_probs, classifier_log_probs(images)) and torch.equal(features, classifier_features(images))
    empty_log_probs, empty_features = classifier_outputs(images[:0])
    assert empty_log_probs.shape == (0, 10) and empty_features.shape == (0, 128)


def test_other_weights_are_refused_unless_the_check_is_switched_off(tmp_path):
    copy = tmp_path / "mine.pt"
    shutil.copy(WEIGHTS_PATH, copy)
    with copy.open("ab") as handle:
        handle.write(b"\0")  # trailing bytes: same weights for torch.load's zip reader, another sha256
    with pytest.raises(WeightsMismatchError, match="expected_sha256=None"):
        load_classifier(copy)
    assert isinstance(load_classifier(copy, expected_sha256=None), torch.nn.Module)


def test_missing_weights_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_classifier(tmp_path / "absent.pt", expected_sha256=None)


def test_wrong_image_shape_is_a_config_error():
    with pytest.raises(ConfigError, match="1 x 32 x 32"):
        classifier_log_probs(torch.zeros(2, 3, 32, 32))


def test_serialised_weights_do_not_depend_on_the_file_name():
    """The pinned hash is of `state_dict_bytes`, which re-serialises the shipped weights to the same bytes."""
    classifier = load_classifier()
    assert state_dict_bytes(classifier) == WEIGHTS_PATH.read_bytes()


def test_training_is_reproducible_for_a_seed(mnist_test_images, mnist_test):
    images, labels = mnist_test_images[:512], mnist_test.labels[:512]
    first = _fit(images, labels, epochs=1, seed=3, device=torch.device("cpu"), log=lambda _: None)
    second = _fit(images, labels, epochs=1, seed=3, device=torch.device("cpu"), log=lambda _: None)
    other = _fit(images, labels, epochs=1, seed=4, device=torch.device("cpu"), log=lambda _: None)
    assert state_dict_bytes(first) == state_dict_bytes(second)
    assert state_dict_bytes(first) != state_dict_bytes(other)
