"""64x64 images from files or LMDB values: decoding, cropping, and the checks every image dataset shares.

Preprocessing (all image datasets): decode to RGB (JPEGs at a reduced DCT scale when that still leaves the short
side >= the target: PIL's draft mode, a large saving on big photos), centre-crop the largest square, resize it to
64x64 (PIL bilinear, which low-pass filters when shrinking). For CelebA's 178x218 images the square is the usual
178x178 centre crop; for LSUN it is the same as "short side to 64, then centre-crop 64x64". RandomPatch resizes
to 96x96 the same way and takes a 64x64 patch whose position is drawn from (run seed, epoch, index), so it does
not depend on which worker decodes the image and a resumed run sees the same patches (the paper's augmented LSUN,
appendix F). Images travel as uint8 (a quarter of float32's bytes) and become float in [-1, 1] on the device.

sha256 (the manifest's data fingerprint) is cheap, never a pass over the pixels: each dataset hashes its name,
PREPROCESS_VERSION and what identifies its files (see each module).
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ebm_bench.errors import ConfigError, EbmBenchError

IMAGE_SIZE = 64
PATCH_SOURCE_SIZE = 96  # lsun-bedroom-patches: 64x64 patches from 96x96 images
MAX_HOLDOUT = 10_000  # 10k x 3 x 64 x 64 float32 = 0.5 GB on the device
HOLDOUT_PATCH_SEED = 0  # held-out patches are the same for every run seed
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
PREPROCESS_VERSION = "jpeg-draft-square-crop-bilinear-v1"  # in every sha256: change it with decoding or cropping


class CorruptImageError(EbmBenchError):
    """An image file (or LMDB value) could not be decoded; the message names it."""


class MissingDependencyError(ConfigError):
    """An optional package a dataset needs is not installed; the message says what to install."""


def square_resize(image: Image.Image, size: int) -> Image.Image:
    """Centre-crop the largest square, then resize it to size x size (bilinear, antialiased).

    Cropping first (rather than resize's `box`) keeps pixels outside the square out of the filter at its edges.
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side)) if width != height else image
    return square if side == size else square.resize((size, size), Image.Resampling.BILINEAR)


def decode(source: str | bytes, name: str, min_side: int | None = None) -> Image.Image:
    """A file path or encoded bytes -> RGB image; any decoding failure becomes a CorruptImageError naming `name`.

    With `min_side`, a JPEG is decoded at the smallest of its 1/2, 1/4, 1/8 DCT scales whose short side is still
    >= min_side (PIL's draft mode): the crop is resized to min_side anyway, and decoding is the loaders' main cost
    (CelebA: ~25% faster; a 512x384 photo: 2x; camera-sized photos in a folder: far more).
    """
    try:
        with Image.open(source if isinstance(source, str) else io.BytesIO(source)) as image:
            if min_side:
                width, height = image.size
                side = min(width, height)
                image.draft("RGB", (-(-width * min_side // side), -(-height * min_side // side)))
            return image.convert("RGB")  # forces the full decode, so truncated files fail here
    except FileNotFoundError as err:
        raise CorruptImageError(f"image {name} disappeared while training ({err})") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise CorruptImageError(f"cannot decode image {name}: {err}. Fix: delete or replace that file "
                                "(e.g. re-extract it from the original archive)") from err


def to_uint8_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> 3 x H x W uint8 tensor."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


@dataclass(frozen=True)
class CentreSquare:
    """Centre square crop resized to `size` (CelebA, LSUN whole images, folders)."""

    size: int

    @property
    def decode_side(self) -> int:
        return self.size

    def __call__(self, image: Image.Image, index: int, epoch: int) -> Image.Image:
        return square_resize(image, self.size)


@dataclass(frozen=True)
class RandomPatch:
    """Resize the centre square to `source`, then a `size` patch at an offset drawn from (seed, epoch, index)."""

    source: int
    size: int
    seed: int

    @property
    def decode_side(self) -> int:
        return self.source

    def offset(self, index: int, epoch: int) -> tuple[int, int]:
        rng = np.random.default_rng((self.seed, epoch + 1, index))  # the held-out set uses epoch -1
        x, y = rng.integers(0, self.source - self.size + 1, size=2)
        return int(x), int(y)

    def __call__(self, image: Image.Image, index: int, epoch: int) -> Image.Image:
        x, y = self.offset(index, epoch)
        return square_resize(image, self.source).crop((x, y, x + self.size, y + self.size))


Transform = Callable[[Image.Image, int, int], Image.Image]
HOLDOUT_EPOCH = -1


class ImageSource(Dataset):
    """A map-style dataset over (index, epoch) items, returning (3 x S x S uint8 image, error message or "").

    A decoding error is returned, not raised, so that the main process raises one clean CorruptImageError naming
    the file whether or not the image was decoded in a worker (an exception raised in a worker comes back wrapped
    in the worker's traceback).
    """

    def __init__(self, transform: Transform):
        self.transform = transform

    def read(self, index: int) -> Image.Image:
        raise NotImplementedError

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, str]:
        index, epoch = item
        try:
            return to_uint8_tensor(self.transform(self.read(index), index, epoch)), ""
        except CorruptImageError as err:
            size = self.transform.size
            return torch.zeros(3, size, size, dtype=torch.uint8), str(err)


class FileImages(ImageSource):
    """Image files under `folder`, by relative name (held as one numpy string array: no per-item Python objects,
    so forked workers do not copy the list page by page as reference counts change)."""

    def __init__(self, folder: Path, names: Sequence[str], transform: Transform):
        super().__init__(transform)
        self.folder = str(folder)
        self.names = np.array(list(names), dtype=str)

    def __len__(self) -> int:
        return len(self.names)

    def read(self, index: int) -> Image.Image:
        path = os.path.join(self.folder, str(self.names[index]))
        return decode(path, path, self.transform.decode_side)


def check_holdout(holdout: int) -> None:
    if not 0 <= holdout <= MAX_HOLDOUT:
        raise ConfigError(f"holdout={holdout}: use 0..{MAX_HOLDOUT} held-out images (they are kept on the device "
                          "as float32 for the end-of-run energy evaluation)")


def split_tail(n: int, holdout: int, batch_size: int, what: str) -> int:
    """Number of training items when the last `holdout` of `n` are held out; checks enough are left."""
    if n - holdout < batch_size:
        raise ConfigError(f"{what} has {n} images: holding out {holdout} leaves {n - holdout}, fewer than one batch "
                          f"of {batch_size}; lower --holdout or --batch-size")
    return n - holdout


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def data_root_help(root: Path) -> str:
    return f"(data root {root}: set it with --data-root or EBM_BENCH_DATA)"


def check_image_size(name: str, image_size: int) -> None:
    if image_size != IMAGE_SIZE:
        raise ConfigError(f"{name} is prepared at {IMAGE_SIZE}x{IMAGE_SIZE} only, not {image_size}")
