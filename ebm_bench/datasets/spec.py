"""What a dataset is to the harness: its DatasetSpec, and the TrainingData its loader returns."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from ebm_bench.config import OptimConfig, load_preset_optim


def default_data_root() -> Path:
    """`EBM_BENCH_DATA` if set, else the user cache directory."""
    if os.environ.get("EBM_BENCH_DATA"):
        return Path(os.environ["EBM_BENCH_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "ebm-bench" / "data"


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1]."""
    return images_uint8.float().div_(127.5).sub_(1.0)


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


class Batches(Protocol):
    """Seeded, resumable training batches: float images in [-1, 1] on the training device."""

    batches_per_epoch: int

    def next(self) -> torch.Tensor: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class TrainingData:
    """What a run trains and evaluates on."""

    batches: Batches
    holdout: torch.Tensor  # float in [-1, 1], on the device: real images never trained on
    image_shape: tuple[int, int, int]
    n_train: int
    sha256: str  # of the exact data used (train and held-out together), or a cheap fingerprint of it
    # Labelled datasets (pi-mnist) only: the class of each training image, in the order of `batches.images` (what
    # --labels draws its labelled subset from), and the labelled test split a classifier D is scored on.
    labels: torch.Tensor | None = None
    test: ImageArrays | None = None


# load(root, image_size, batch_size, seed, holdout, device, download) -> TrainingData
Loader = Callable[[Path, int, int, int, int, torch.device, bool], TrainingData]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset and its defaults. Register one with `@ebm_bench.register_dataset(...)` on its loader."""

    name: str
    description: str
    load: Loader
    image_sizes: tuple[int, ...]  # the first is the default
    channels: int
    default_arch: str = "mlp"  # the network family a run uses with --arch auto
    reference: str = "holdout"  # what FID-type metrics compare against: "holdout" or a named set ("mnist-test")
    classifier: bool = False  # whether the pinned MNIST classifier's metrics apply (1 x 28/32 digits)
    preset: str | None = None  # the preset whose optimiser a run uses when none is given (None: Adam 1e-3)
    # values of method options that depend on the data, for methods that leave them to it (declared None): EBGAN's
    # margin is in the energy's units, which scale with the image (the paper's MNIST 10, CelebA 20, LSUN 80)
    option_defaults: Mapping[str, Any] = field(default_factory=dict)

    def optim(self) -> OptimConfig:
        """The optimiser a run on this dataset starts from: its preset's, else the paper's MNIST Adam 1e-3."""
        return load_preset_optim(self.preset) if self.preset else OptimConfig()
