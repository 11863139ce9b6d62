"""MNIST loading (real archives from shared/) and device-resident batches."""

import pytest
import torch

from ebm_bench.datasets import default_data_root
from ebm_bench.datasets.loading import TensorBatches
from ebm_bench.datasets.mnist import load_mnist, load_mnist_training
from ebm_bench.errors import DataNotFoundError


def test_mnist_is_zero_padded_to_32_and_scaled_to_unit_range(mnist_root):
    data = load_mnist_training(mnist_root, 32, batch_size=16, seed=0, holdout=1000, device=torch.device("cpu"))
    assert data.image_shape == (1, 32, 32) and data.n_train == 59000 and data.holdout.shape == (1000, 1, 32, 32)
    batch = data.batches.next()
    assert batch.shape == (16, 1, 32, 32) and batch.dtype == torch.float32
    assert batch.min().item() == -1.0 and batch.max().item() == 1.0
    assert (batch[:, :, :2, :] == -1).all() and (batch[:, :, :, -2:] == -1).all()  # the zero (black) border
    assert len(data.sha256) == 64


def test_mnist_28_and_test_split(mnist_root):
    arrays = load_mnist(mnist_root, "test", 28)
    assert arrays.images.shape == (10000, 1, 28, 28) and arrays.labels[:3].tolist() == [7, 2, 1]


def test_missing_mnist_says_where_it_looked_and_how_to_fix(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(tmp_path, "train", download=False)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message
    assert "--data-root" in message and "EBM_BENCH_DATA" in message


def test_data_root_defaults_to_environment_then_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EBM_BENCH_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("EBM_BENCH_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_data_root() == tmp_path / "cache" / "ebm-bench" / "data"


def test_batches_are_seeded_epochs_without_replacement_and_resumable():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    a = TensorBatches(images, batch_size=3, seed=7, device=torch.device("cpu"))
    first_epoch = torch.cat([a.next() for _ in range(3)]).flatten()
    assert len(set(first_epoch.tolist())) == 9  # one image dropped, none repeated
    state = a.state_dict()
    rest = [a.next() for _ in range(4)]
    b = TensorBatches(images, batch_size=3, seed=7, device=torch.device("cpu"))
    b.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(rest, [b.next() for _ in range(4)]))
    c = TensorBatches(images, batch_size=3, seed=7, device=torch.device("cpu"))
    assert torch.equal(torch.cat([c.next() for _ in range(3)]).flatten(), first_epoch)
