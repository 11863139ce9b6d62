"""Shared fixtures: real MNIST from ../shared, copied into a temporary data root in torchvision's layout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EBM_BENCH_SHARED", REPO.parent / "shared"))


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (benchmarks/gpu.sh runs these on one)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data root holding the four official MNIST archives in `MNIST/raw/` (never writes into shared/)."""
    source = SHARED / "data" / "mnist"
    if not source.is_dir():
        pytest.fail(f"real MNIST archives not found at {source}; set EBM_BENCH_SHARED to the shared/ folder")
    root = tmp_path_factory.mktemp("data")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for archive in source.glob("*.gz"):
        shutil.copy(archive, raw / archive.name)
    return root


@pytest.fixture(scope="session")
def inception_weights() -> Path:
    """Inception-v3 2015-12-05 pool3 weights (FID-valid; the fc layer is zeroed, so IS is meaningless)."""
    path = SHARED / "weights" / "inception-2015-12-05-pool3.pth"
    if not path.is_file():
        pytest.fail(f"Inception weights not found at {path}; set EBM_BENCH_SHARED to the shared/ folder")
    return path
