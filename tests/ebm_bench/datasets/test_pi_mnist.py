"""pi-mnist and --labels: the split, the balanced labelled subset drawn by the seed, and the semi-supervised batches."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ebm_bench import Budget, RunConfig
from ebm_bench.datasets import (UNLABELLED, LabelledBatch, SemiSupervisedBatches, TensorBatches, balanced_subset,
                                get_dataset, semi_supervised)
from ebm_bench.errors import ConfigError
from ebm_bench.train import prepare

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pi_mnist(mnist_root):
    return get_dataset("pi-mnist").load(mnist_root, 28, 100, 0, 10, CPU, False)


def test_pi_mnist_trains_on_all_60000_digits_unpadded_and_holds_out_the_test_digits(pi_mnist):
    data = pi_mnist
    assert data.n_train == 60000 and data.image_shape == (1, 28, 28) and len(data.labels) == 60000
    assert data.test.images.shape == (10000, 1, 28, 28) and len(data.test.labels) == 10000
    # the held-out images are the first test digits, in [-1, 1]
    torch.testing.assert_close(data.holdout, data.test.images[:10].float() / 127.5 - 1)
    assert data.holdout.min() == -1 and data.holdout.max() == 1
    assert torch.bincount(data.labels).tolist()[5] == 5421  # MNIST's rarest training digit


def test_the_labelled_subset_is_balanced_and_drawn_by_the_seed():
    labels = torch.arange(10).repeat_interleave(30)  # 30 images of each class
    subset = balanced_subset(labels, 50, seed=0)
    assert torch.bincount(labels[subset], minlength=10).tolist() == [5] * 10
    assert torch.equal(subset, balanced_subset(labels, 50, seed=0))  # seeded
    assert not torch.equal(subset, balanced_subset(labels, 50, seed=1))  # another seed, another subset
    assert torch.equal(subset, subset.sort().values) and len(set(subset.tolist())) == 50


def test_a_subset_that_cannot_be_balanced_is_one_line_naming_the_fix():
    labels = torch.arange(10).repeat_interleave(3)
    with pytest.raises(ConfigError, match="not a multiple of the 10 classes.*--labels 20"):
        balanced_subset(labels, 25, seed=0)
    with pytest.raises(ConfigError, match="asks for 4 images of class 0.*--labels 30 or fewer"):
        balanced_subset(labels, 40, seed=0)


def test_a_semi_supervised_batch_is_b_labelled_images_then_b_unlabelled_ones_and_resumes_exactly():
    images = torch.arange(200, dtype=torch.uint8).view(200, 1, 1, 1)  # image i has pixel value i
    labels = torch.arange(200) % 10
    batches = SemiSupervisedBatches(images, labels, n_labelled=40, batch_size=8, seed=3, device=CPU)
    batch = batches.next()
    assert isinstance(batch, LabelledBatch) and batch.images.shape == (16, 1, 1, 1)
    pixel = ((batch.images.flatten() + 1) * 127.5).round().long()
    assert torch.equal(batch.labels[:8], pixel[:8] % 10)  # each labelled image carries its own label
    assert set(pixel[:8].tolist()) <= set(batches.subset.tolist())
    assert (batch.labels[8:] == UNLABELLED).all()
    state = batches.state_dict()
    after = [batches.next() for _ in range(7)]  # past the labelled stream's epoch of 5 batches
    batches.load_state_dict(state)
    again = [batches.next() for _ in range(7)]
    assert all(torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) for a, b in zip(after, again))
    # the unlabelled images come in the order an unsupervised run of the same seed sees them
    plain = TensorBatches(images, 8, 3, CPU)
    assert torch.equal(batch.images[8:], plain.next())


def test_labels_are_refused_in_one_line_where_they_cannot_apply(mnist_root, pi_mnist, tmp_path):
    with pytest.raises(ConfigError, match="exceeds the training set"):
        semi_supervised(pi_mnist, "pi-mnist", 60010, 100, 0, CPU)
    with pytest.raises(ConfigError, match="below the batch size"):
        semi_supervised(pi_mnist, "pi-mnist", 50, 100, 0, CPU)
    with pytest.raises(ConfigError, match="not a multiple"):
        semi_supervised(pi_mnist, "pi-mnist", 1005, 100, 0, CPU)
    config = RunConfig(method="ladder", dataset="mnist", labels=1000, budget=Budget("steps", 1),
                       data_root=str(mnist_root), download=False, out=str(tmp_path))
    with pytest.raises(ConfigError, match="dataset 'mnist' has no labelled training images.*pi-mnist"):
        prepare(config)
    for bad in (0, -5, True, 2.5):
        with pytest.raises(ConfigError, match="--labels"):
            dataclasses.replace(config, dataset="pi-mnist", labels=bad).validate()
