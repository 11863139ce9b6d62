"""Every registered dataset loads its fixture with the shape and range its DatasetSpec declares. A dataset that is
registered without a fixture here fails, so none goes untested."""

from __future__ import annotations

import pytest
import torch

from ebm_bench.datasets import DATASETS

CPU = torch.device("cpu")
FIXTURES = {"mnist": "mnist_root", "celeba": "celeba_root", "lsun-bedroom": "lsun_root",
            "lsun-bedroom-patches": "lsun_root", "folder": "folder_root",
            "gaussians-2d": "tmp_path", "pi-mnist": "mnist_root"}  # gaussians: generated from its parameters


@pytest.fixture(autouse=True)
def no_loader_workers(monkeypatch):
    monkeypatch.setenv("EBM_BENCH_WORKERS", "0")


@pytest.mark.parametrize("name", sorted(DATASETS.all()))
def test_fixture_loads_with_the_declared_shape_and_range(name, request):
    assert name in FIXTURES, f"dataset {name!r} has no fixture: add one to tests/ebm_bench/datasets"
    spec = DATASETS[name]
    root = request.getfixturevalue(FIXTURES[name])
    size = spec.image_sizes[0]
    data = spec.load(root, size, 4, 0, 4, CPU, False)
    batch = data.batches.next()
    assert tuple(batch.shape) == (4, spec.channels, size, size) == (4, *data.image_shape)
    assert batch.dtype == torch.float32 and -1.0 <= batch.min() and batch.max() <= 1.0 and batch.std() > 0
    assert tuple(data.holdout.shape[1:]) == data.image_shape and len(data.holdout) == 4
    assert data.n_train > 0 and data.batches.batches_per_epoch == data.n_train // 4 and len(data.sha256) == 64
    assert spec.default_arch and spec.reference in ("holdout", "mnist-test", "mnist-train")
