"""MNIST: read from torchvision's layout, zero-padded to 32x32, kept on the training device as uint8.

The whole set fits in memory, so batches are gathered on the device one at a time and a training step never
copies from the host.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F

from ebm_bench.errors import ConfigError, DataNotFoundError

from .loading import TensorBatches
from .spec import DatasetSpec, ImageArrays, TrainingData, to_unit_range

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _missing_mnist_files(raw: Path) -> list[str]:
    return [name for name in MNIST_FILES if not (raw / name).exists() and not (raw / f"{name}.gz").exists()]


@functools.lru_cache(maxsize=4)  # runs of one invocation share the arrays (they are never modified)
def load_mnist(root: str | Path, split: str = "train", image_size: int = 32, download: bool = True) -> ImageArrays:
    """MNIST `split` ("train" or "test") as uint8, zero-padded from 28x28 to `image_size` (32 or 28).

    Looks in `<root>/MNIST/raw/` (torchvision's layout); the four official archives there are enough offline.
    """
    if split not in ("train", "test"):
        raise ConfigError(f"unknown MNIST split {split!r}: use 'train' or 'test'")
    if image_size not in (28, 32):
        raise ConfigError(f"MNIST image size must be 28 or 32 (zero-padded), got {image_size}")
    from torchvision.datasets import MNIST

    root = Path(root).expanduser()
    raw = root / "MNIST" / "raw"
    missing = _missing_mnist_files(raw)
    if missing and not download:
        raise DataNotFoundError(_mnist_help(raw, missing, reason="downloading is switched off"))
    # With md5-correct archives present, torchvision's "download" only extracts them.
    not_extracted = any(not (raw / name).exists() for name in MNIST_FILES)
    if not_extracted:
        _check_archives(raw, MNIST)
    try:
        dataset = MNIST(str(root), train=split == "train", download=not_extracted)
    except (RuntimeError, OSError) as err:
        reason = f"the download failed: {str(err).strip().splitlines()[0]}"
        raise DataNotFoundError(_mnist_help(raw, missing or list(MNIST_FILES), reason)) from err
    images = dataset.data.unsqueeze(1)  # N x 1 x 28 x 28, uint8
    pad = (image_size - 28) // 2
    if pad:
        images = F.pad(images, (pad, pad, pad, pad))  # zero = black, i.e. -1 after scaling
    return ImageArrays(images=images.contiguous(), labels=dataset.targets.clone())


def _check_archives(raw: Path, mnist_class) -> None:
    """A present but damaged archive is corrupt, not missing: name it and the md5 it should have."""
    for filename, expected in mnist_class.resources:
        archive = raw / Path(filename).name
        if archive.exists() and not (raw / archive.stem).exists():
            actual = hashlib.md5(archive.read_bytes()).hexdigest()
            if actual != expected:
                raise DataNotFoundError(f"MNIST archive {archive} is corrupt (md5 {actual}, expected {expected}); "
                                        "replace it with the official file")


def _mnist_help(raw: Path, missing: list[str], reason: str) -> str:
    return (
        f"MNIST not found: looked in {raw} for {', '.join(missing)} (or their .gz archives), and {reason}.\n"
        f"Fix: copy the four official archives (train-images-idx3-ubyte.gz, ...) into {raw}/, "
        "or point --data-root / EBM_BENCH_DATA at a folder that holds MNIST/raw/, "
        "or run once with network access so torchvision can download them."
    )


def load_mnist_training(root: Path, image_size: int, batch_size: int, seed: int, holdout: int,
                        device: torch.device, download: bool = True) -> TrainingData:
    """MNIST's training set, its last `holdout` images set aside (never trained on) for energy evaluation."""
    arrays = load_mnist(root, "train", image_size, download)
    n = len(arrays.images)
    if batch_size > n // 2:
        raise ConfigError(f"--batch-size {batch_size} is larger than MNIST's training set allows ({n} images); "
                          f"use --batch-size {n // 2} or less (64 is the paper's)")
    if not 0 <= holdout <= n // 2:
        raise ConfigError(f"--holdout {holdout} is out of range; use 0..{n // 2} held-out MNIST images")
    train, held = arrays.images[: len(arrays.images) - holdout], arrays.images[len(arrays.images) - holdout:]
    return TrainingData(
        batches=TensorBatches(train, batch_size, seed, device),
        holdout=to_unit_range(held.to(device)),
        image_shape=tuple(train.shape[1:]),
        n_train=len(train),
        sha256=arrays.sha256(),
    )


SPEC = DatasetSpec(
    name="mnist", description="MNIST digits, 1x32x32 (zero-padded; 28 optional), 55k train + 5k held out",
    load=load_mnist_training, image_sizes=(32, 28), channels=1, default_arch="mlp", reference="mnist-test",
    classifier=True, option_defaults={"margin": 10.0})  # the paper's MNIST margin
