"""LSUN bedroom from its LMDB: whole images (centre 64x64 crops) and the paper's augmented set of random 64x64
patches of 96x96 images.

On disk: lsun/bedroom_train_lmdb/ [, lsun/bedroom_val_lmdb/] under --data-root. torchvision.datasets.LSUN is not
used: it writes a pickle cache of the keys into the current working directory; here the key list is cached beside
the LMDB (or in the user cache dir when the data root is read-only). Held out: the official bedroom_val_lmdb when
present (300 images), else the last `holdout` keys of the training LMDB, which are then not trained on. sha256:
the name, PREPROCESS_VERSION, the entry count and the first and last 1000 keys (and the val LMDB's when used).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ebm_bench.errors import DataNotFoundError

from .images import (HOLDOUT_PATCH_SEED, IMAGE_SIZE, PATCH_SOURCE_SIZE, PREPROCESS_VERSION, CentreSquare,
                     CorruptImageError, ImageSource, MissingDependencyError, RandomPatch, Transform, check_holdout,
                     check_image_size, data_root_help, decode, fingerprint, split_tail)
from .loading import training_data
from .spec import DatasetSpec, TrainingData

FINGERPRINT_KEYS = 1000  # first and last keys hashed
LSUN_PIP = 'pip install "ebm-bench[lsun]"'


LSUN_HELP = ("Fix: download it with LSUN's script (https://github.com/fyu/lsun: `python download.py -c bedroom`) "
             "and unzip bedroom_train_lmdb.zip (and optionally bedroom_val_lmdb.zip) into {folder}/.")


def import_lmdb():
    """The `lmdb` package, imported only when an LSUN dataset is used."""
    try:
        import lmdb
    except ImportError as err:
        raise MissingDependencyError(f"the LSUN datasets read LMDB databases and need the lmdb package, which is not "
                                     f"installed. Fix: {LSUN_PIP} (or pip install lmdb)") from err
    return lmdb


def open_lmdb(path: Path):
    return import_lmdb().open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=256)


class KeyTable:
    """An LMDB's keys as one byte blob plus offsets: compact, and shared (not copied) by forked workers."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self.blob, self.offsets = blob, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> bytes:
        return self.blob[self.offsets[index]:self.offsets[index + 1]].tobytes()

    @classmethod
    def from_keys(cls, keys: list[bytes]) -> KeyTable:
        offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum([len(k) for k in keys], out=offsets[1:])
        return cls(np.frombuffer(b"".join(keys), dtype=np.uint8).copy(), offsets)

    def fingerprint(self) -> bytes:
        n = len(self)
        picked = list(range(min(n, FINGERPRINT_KEYS))) + list(range(max(FINGERPRINT_KEYS, n - FINGERPRINT_KEYS), n))
        return n.to_bytes(8, "little") + b"\0".join(self[i] for i in picked)


def _key_cache_paths(lmdb_dir: Path) -> list[Path]:
    """Beside the LMDB first; the user cache dir when the data root is read-only."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ebm-bench" / "lsun-keys"
    tag = hashlib.sha256(str(lmdb_dir.resolve()).encode()).hexdigest()[:16]
    return [lmdb_dir.parent / f"{lmdb_dir.name}.ebm-bench-keys.npz", cache / f"{lmdb_dir.name}-{tag}.npz"]


def _lmdb_signature(env, lmdb_dir: Path) -> np.ndarray:
    """Entry count and data.mdb size: a changed database invalidates the cached key list."""
    data_file = lmdb_dir / "data.mdb"
    return np.array([env.stat()["entries"], data_file.stat().st_size if data_file.exists() else -1], dtype=np.int64)


def _read_key_cache(path: Path, signature: np.ndarray) -> KeyTable | None:
    try:
        with np.load(path, allow_pickle=False) as cached:
            if np.array_equal(cached["signature"], signature):
                return KeyTable(cached["blob"], cached["offsets"])
    except (OSError, KeyError, ValueError):
        pass
    return None


def _write_key_cache(paths: list[Path], table: KeyTable, signature: np.ndarray) -> None:
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
            np.savez(tmp, blob=table.blob, offsets=table.offsets, signature=signature)
            os.replace(tmp, path)
            return
        except OSError:
            continue  # read-only data root: try the user cache dir


def lmdb_keys(lmdb_dir: Path) -> KeyTable:
    """All keys of the LMDB in key order, from a cache when the database is unchanged (one cursor pass otherwise)."""
    env = open_lmdb(lmdb_dir)
    try:
        signature = _lmdb_signature(env, lmdb_dir)
        paths = _key_cache_paths(lmdb_dir)
        for path in paths:
            table = _read_key_cache(path, signature)
            if table is not None:
                return table
        with env.begin(write=False) as txn:
            table = KeyTable.from_keys(list(txn.cursor().iternext(keys=True, values=False)))
    finally:
        env.close()
    _write_key_cache(paths, table, signature)
    return table


class LMDBImages(ImageSource):
    """Encoded images (webp/jpeg) stored as LMDB values, items start..stop-1 of a key table.

    The environment is opened lazily in each process (an LMDB handle must not cross a fork) and never pickled.
    """

    def __init__(self, lmdb_dir: Path, keys: KeyTable, start: int, stop: int, transform: Transform):
        super().__init__(transform)
        self.lmdb_dir, self.keys, self.start, self.stop = str(lmdb_dir), keys, start, stop
        self._env, self._pid = None, None

    def __len__(self) -> int:
        return self.stop - self.start

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_env": None, "_pid": None}

    def read(self, index: int) -> Image.Image:
        if self._env is None or self._pid != os.getpid():
            self._env, self._pid = open_lmdb(Path(self.lmdb_dir)), os.getpid()
        key = self.keys[self.start + index]
        with self._env.begin(write=False) as txn:
            value = txn.get(key)
        name = f"{key.decode(errors='replace')!r} in {self.lmdb_dir}"
        if value is None:
            raise CorruptImageError(f"key {name} has no value (the LMDB changed while training?)")
        return decode(value, f"key {name}", self.transform.decode_side)


def _lsun_dirs(root: Path) -> tuple[Path, Path | None]:
    folder = root / "lsun"
    train, val = folder / "bedroom_train_lmdb", folder / "bedroom_val_lmdb"
    for needed in (folder, train, train / "data.mdb"):
        if not needed.exists():
            raise DataNotFoundError(f"LSUN bedroom not found: {needed} does not exist {data_root_help(root)}. "
                                    + LSUN_HELP.format(folder=folder))
    return train, (val if (val / "data.mdb").exists() else None)


def _load_lsun(root: Path, image_size: int, batch_size: int, seed: int, holdout: int, device: torch.device,
               patches: bool) -> TrainingData:
    name = "lsun-bedroom-patches" if patches else "lsun-bedroom"
    check_image_size(name, image_size)
    check_holdout(holdout)
    import_lmdb()  # a missing package is reported before anything else
    train_dir, val_dir = _lsun_dirs(Path(root))
    keys = lmdb_keys(train_dir)
    train_t: Transform = RandomPatch(PATCH_SOURCE_SIZE, image_size, seed) if patches else CentreSquare(image_size)
    held_t: Transform = (RandomPatch(PATCH_SOURCE_SIZE, image_size, HOLDOUT_PATCH_SEED) if patches
                         else CentreSquare(image_size))
    parts = [name, PREPROCESS_VERSION, keys.fingerprint()]
    if val_dir is not None:  # the official validation LMDB: all training keys are trained on
        val_keys = lmdb_keys(val_dir)
        train = LMDBImages(train_dir, keys, 0, len(keys), train_t)
        held = LMDBImages(val_dir, val_keys, 0, min(holdout, len(val_keys)), held_t)
        parts.append(val_keys.fingerprint())
    else:
        n_train = split_tail(len(keys), holdout, batch_size, f"the LMDB {train_dir}")
        train = LMDBImages(train_dir, keys, 0, n_train, train_t)
        held = LMDBImages(train_dir, keys, n_train, len(keys), held_t)
    return training_data(train, held, batch_size, seed, device, fingerprint(*parts))


def load_lsun_bedroom(root: Path, image_size: int, batch_size: int, seed: int, holdout: int, device: torch.device,
                      download: bool = True) -> TrainingData:
    """LSUN bedroom, whole images: short side to 64, centre 64x64 crop."""
    return _load_lsun(root, image_size, batch_size, seed, holdout, device, patches=False)


def load_lsun_bedroom_patches(root: Path, image_size: int, batch_size: int, seed: int, holdout: int,
                              device: torch.device, download: bool = True) -> TrainingData:
    """LSUN bedroom as 64x64 patches at seeded random positions in the 96x96 image (the paper's augmented set)."""
    return _load_lsun(root, image_size, batch_size, seed, holdout, device, patches=True)


SPEC = DatasetSpec(
    name="lsun-bedroom", description="LSUN bedroom (LMDB), 3x64x64 centre crops; needs the lmdb package",
    load=load_lsun_bedroom, image_sizes=(IMAGE_SIZE,), channels=3, default_arch="dcgan", preset="dcgan-64",
    option_defaults={"margin": 80.0})  # the paper's LSUN margin
PATCHES_SPEC = DatasetSpec(
    name="lsun-bedroom-patches", description="LSUN bedroom as random 64x64 patches of 96x96 images (the paper's "
    "augmented set)", load=load_lsun_bedroom_patches, image_sizes=(IMAGE_SIZE,), channels=3, default_arch="dcgan",
    preset="dcgan-64", option_defaults={"margin": 80.0})
