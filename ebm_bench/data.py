"""Datasets: where they live on disk, how they load, and how batches are drawn.

Every dataset yields images scaled to [-1, 1] in N x C x H x W layout. Data that fits in memory (MNIST) is kept
on the training device as uint8 and converted one batch at a time, so a training step never copies from the host.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .config import OptimConfig
from .errors import ConfigError, DataNotFoundError

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def default_data_root() -> Path:
    """`EBM_BENCH_DATA` if set, else the user cache directory."""
    if os.environ.get("EBM_BENCH_DATA"):
        return Path(os.environ["EBM_BENCH_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "ebm-bench" / "data"


@dataclass(frozen=True)
class ImageArrays:
    """A split held in memory: uint8 images (N x C x H x W, 0..255) and integer labels (or None)."""

    images: torch.Tensor
    labels: torch.Tensor | None

    def sha256(self) -> str:
        digest = hashlib.sha256(self.images.contiguous().numpy().tobytes())
        if self.labels is not None:
            digest.update(self.labels.contiguous().numpy().tobytes())
        return digest.hexdigest()


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


def _mnist_help(raw: Path, missing: list[str], reason: str) -> str:
    return (
        f"MNIST not found: looked in {raw} for {', '.join(missing)} (or their .gz archives), and {reason}.\n"
        f"Fix: copy the four official archives (train-images-idx3-ubyte.gz, ...) into {raw}/, "
        "or point --data-root / EBM_BENCH_DATA at a folder that holds MNIST/raw/, "
        "or run once with network access so torchvision can download them."
    )


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1]."""
    return images_uint8.float().div_(127.5).sub_(1.0)


class TensorBatches:
    """Batches drawn without replacement from a uint8 tensor that lives on the training device.

    The order comes from its own seeded generator, so every method given the same seed sees the same batches.
    The last incomplete batch of an epoch is dropped (BatchNorm wants a constant batch size).
    """

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, device: torch.device):
        if batch_size > len(images):
            raise ConfigError(f"batch size {batch_size} is larger than the training set ({len(images)} images)")
        self.images = images.to(device)
        self.batch_size = batch_size
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self.batches_per_epoch = len(images) // batch_size
        self.epoch = 0
        self.position = 0
        self._new_epoch()

    def _new_epoch(self) -> None:
        order = torch.randperm(len(self.images), generator=self.generator)
        self.order = order[: self.batches_per_epoch * self.batch_size].view(self.batches_per_epoch, -1)
        self._order_on_device = self._to_device(self.order)

    def _to_device(self, order: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return order
        self._pinned = order.pin_memory()  # kept alive until the asynchronous copy has run
        return self._pinned.to(self.device, non_blocking=True)

    def next(self) -> torch.Tensor:
        if self.position == self.batches_per_epoch:
            self.epoch += 1
            self.position = 0
            self._new_epoch()
        index = self._order_on_device[self.position]
        self.position += 1
        return to_unit_range(self.images[index])

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order, "epoch": self.epoch,
                "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.order = state["order"].cpu()
        self._order_on_device = self._to_device(self.order)
        self.epoch = state["epoch"]
        self.position = state["position"]


@dataclass
class TrainingData:
    """What a run trains and evaluates on."""

    batches: TensorBatches
    holdout: torch.Tensor  # float in [-1, 1], on the device: real images never trained on
    image_shape: tuple[int, int, int]
    n_train: int
    sha256: str  # of the exact arrays used (train and held-out together)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    image_sizes: tuple[int, ...]  # the first is the default
    channels: int
    default_margin: float  # EBGAN margin in the paper's energy units for this dataset
    load: Callable[..., TrainingData]
    default_arch: str = "mlp"
    default_optim: OptimConfig = field(default_factory=OptimConfig)


def load_mnist_training(root: Path, image_size: int, batch_size: int, seed: int, holdout: int,
                        device: torch.device, download: bool = True) -> TrainingData:
    """MNIST's training set, its last `holdout` images set aside (never trained on) for energy evaluation."""
    arrays = load_mnist(root, "train", image_size, download)
    if not 0 <= holdout < len(arrays.images) - batch_size:
        raise ConfigError(f"holdout={holdout} leaves too few MNIST training images; use 0..{len(arrays.images) // 2}")
    train, held = arrays.images[: len(arrays.images) - holdout], arrays.images[len(arrays.images) - holdout:]
    return TrainingData(
        batches=TensorBatches(train, batch_size, seed, device),
        holdout=to_unit_range(held.to(device)),
        image_shape=tuple(train.shape[1:]),
        n_train=len(train),
        sha256=arrays.sha256(),
    )


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        description="MNIST digits, 1x32x32 (zero-padded; 28 optional), 55k train + 5k held out",
        image_sizes=(32, 28),
        channels=1,
        default_margin=10.0,
        load=load_mnist_training,
    ),
}


def get_dataset(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
from . import image_datasets  # noqa: E402,F401  (registers celeba, lsun-bedroom, folder)
