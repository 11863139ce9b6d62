"""Fixtures shared by the metrics tests: the real MNIST test set and the shipped classifier's outputs on it."""

from __future__ import annotations

import pytest
import torch

from ebm_bench.datasets import to_unit_range
from ebm_bench.datasets.mnist import load_mnist


@pytest.fixture(scope="session")
def mnist_test(mnist_root):
    """The full MNIST test set, uint8 1 x 32 x 32 (zero-padded), with labels."""
    return load_mnist(mnist_root, "test", image_size=32)


@pytest.fixture(scope="session")
def mnist_test_images(mnist_test) -> torch.Tensor:
    """The MNIST test set as float images in [-1, 1]."""
    return to_unit_range(mnist_test.images)


@pytest.fixture(scope="session")
def mnist_test_log_probs(mnist_test_images) -> torch.Tensor:
    """log p(y|x) of the shipped classifier on the 10k MNIST test images."""
    from ebm_bench.metrics import classifier_log_probs

    return classifier_log_probs(mnist_test_images)
