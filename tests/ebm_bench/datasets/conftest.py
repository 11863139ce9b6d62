"""Tiny synthetic 64x64-dataset fixtures, written in the exact on-disk formats the loaders read.

- CelebA: 24 JPEGs of 178x218 (14 train, 6 valid, 4 test) and list_eval_partition.txt. Rows 0-19 and 198-217 (what
  the 178x178 centre crop removes) are white; the crop itself stays within 0..200, so a loader that crops wrongly
  shows values above 200/127.5 - 1.
- LSUN bedroom: an LMDB of 16 encoded images (webp and jpeg alternately) of varied sizes and aspect ratios, keyed
  like LSUN by 40-character hex strings.
- folder: 12 PNGs of varied sizes in nested sub-folders, plus a text file and a hidden file that must be ignored.
All are session-scoped and read-only for tests; a test that corrupts data copies the tree first.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

CELEBA_SPLITS = [0] * 14 + [1] * 6 + [2] * 4
LSUN_SIZES = [(256, 192), (192, 256), (300, 225), (225, 300), (128, 128), (256, 340), (400, 300), (96, 96)] * 2
FOLDER_SIZES = [(64, 64), (80, 60), (60, 90), (128, 128), (100, 70), (70, 100)] * 2


def random_image(rng: np.random.Generator, width: int, height: int, high: int = 256) -> Image.Image:
    """Smooth colour blobs plus noise: compresses like a photo (pure noise would make large, slow files)."""
    coarse = rng.integers(0, high, size=(max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)
    noise = rng.integers(-8, 9, size=(height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image).astype(int) + noise, 0, high - 1).astype(np.uint8))


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=90)
    return buffer.getvalue()


def write_celeba(root: Path, splits: list[int] = CELEBA_SPLITS, seed: int = 0) -> Path:
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i, split in enumerate(splits, start=1):
        pixels = np.full((218, 178, 3), 255, dtype=np.uint8)  # white bands outside the centre square
        pixels[20:198] = np.asarray(random_image(rng, 178, 178, high=201))
        name = f"{i:06d}.jpg"
        Image.fromarray(pixels).save(folder / name, quality=95)
        lines.append(f"{name} {split}")
    (root / "celeba" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


def write_lmdb(path: Path, images: list[bytes], seed: int = 0) -> list[bytes]:
    """An LMDB of encoded images keyed like LSUN's (hex digests); returns the keys in the LMDB's (sorted) order."""
    import lmdb

    path.mkdir(parents=True)
    keys = [hashlib.sha1(f"{seed}-{i}".encode()).hexdigest().encode() for i in range(len(images))]
    env = lmdb.open(str(path), map_size=64 << 20)
    with env.begin(write=True) as txn:
        for key, value in zip(keys, images):
            txn.put(key, value)
    env.close()
    return sorted(keys)


def lsun_images(n: int = 16, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [encode(random_image(rng, w, h), "WEBP" if i % 2 == 0 else "JPEG")
            for i, (w, h) in enumerate(LSUN_SIZES[:n])]


def write_folder(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "folder"
    for i, (w, h) in enumerate(FOLDER_SIZES):
        sub = folder / ("a" if i < 4 else "b/c" if i < 8 else "")
        sub.mkdir(parents=True, exist_ok=True)
        random_image(rng, w, h).save(sub / f"img{i:02d}.PNG" if i == 5 else sub / f"img{i:02d}.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "._img00.png").write_bytes(b"macOS resource fork, not an image")
    return root


@pytest.fixture(scope="session")
def celeba_root(tmp_path_factory) -> Path:
    return write_celeba(tmp_path_factory.mktemp("celeba-data"))


@pytest.fixture(scope="session")
def lsun_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lsun-data")
    write_lmdb(root / "lsun" / "bedroom_train_lmdb", lsun_images())
    return root


@pytest.fixture(scope="session")
def folder_root(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("folder-data"))



@pytest.fixture(scope="session")
def synthetic():
    """The writers above, for tests that need their own (e.g. corrupted) copy of a dataset."""
    return SimpleNamespace(write_celeba=write_celeba, write_lmdb=write_lmdb, lsun_images=lsun_images,
                           write_folder=write_folder, random_image=random_image, encode=encode)
