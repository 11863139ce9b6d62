"""64x64 image datasets streamed from disk: CelebA, LSUN bedroom (whole images and 64x64 patches), any image folder.

Layout under --data-root (torchvision's names, so a root that torchvision already filled works as is):
    celeba/img_align_celeba/*.jpg, celeba/list_eval_partition.txt      (celeba)
    lsun/bedroom_train_lmdb/ [, lsun/bedroom_val_lmdb/]                 (lsun-bedroom, lsun-bedroom-patches)
    folder/**/*.{jpg,jpeg,png,webp,bmp}                                (folder)
Nothing is downloaded: CelebA sits behind Google Drive quotas and LSUN is 43 GB, so each missing-data error says
where to get the files and where to put them.

Why not torchvision's classes: `torchvision.datasets.CelebA` verifies the md5 of its metadata files (so only the
official files pass, never a test fixture or a re-hosted copy) and reads all five annotation files we do not need;
`torchvision.datasets.LSUN` writes a pickle cache of the keys into the current working directory. The small
Datasets below read only what they need and cache LSUN's key list beside the LMDB (or in the user cache dir).

Preprocessing (all datasets): decode to RGB (JPEGs at a reduced DCT scale when that still leaves the short side
>= the target: PIL's draft mode, a large saving on big photos), centre-crop the largest square, resize it to 64x64
(PIL bilinear, which low-pass filters when shrinking). For CelebA's 178x218 images the square is the usual
178x178 centre crop; for LSUN it is the same as "short side to 64, then centre-crop 64x64". lsun-bedroom-patches
resizes to 96x96 the same way and takes a 64x64 patch whose position is drawn from (run seed, epoch, index), so it
does not depend on which worker decodes the image and a resumed run sees the same patches (the paper's augmented
LSUN, appendix F).
Images travel as uint8 (a quarter of float32's bytes) and become float in [-1, 1] on the training device.

Loading keeps a GPU fed: a torch DataLoader with `EBM_BENCH_WORKERS` worker processes (default min(8, CPUs)),
persistent across epochs, pinned memory and non-blocking copies on CUDA, whole batches only (drop_last). The order
is a permutation per epoch drawn from a torch.Generator seeded by the run seed, so every method of a comparison
sees the same batches. Resume is exact: the checkpoint holds the generator state at the start of the epoch and the
position in it; the permutation is drawn again and loading continues at the next batch (batches prefetched but not
consumed before the checkpoint are simply decoded again).

Held-out real images (energy evaluation; float32 on the device, hence MAX_HOLDOUT): CelebA's official validation
split (the first `holdout` in the partition file's order, at most all 19,867); LSUN's bedroom_val_lmdb when present
(the official 300), else the last `holdout` keys of the training LMDB in key order, which are then not trained on;
folder: the last `holdout` files in sorted path order, also not trained on.

sha256 (the manifest's data fingerprint; cheap, never a pass over the pixels): of the dataset name, the
preprocessing version and the partition file (CelebA) / the sorted relative paths and file sizes (folder) / the
LMDB entry count with its first and last 1000 keys (LSUN, and its val LMDB when used).
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from .config import OptimConfig
from .data import DATASETS, DatasetInfo, TrainingData, to_unit_range
from .errors import ConfigError, DataNotFoundError, EbmBenchError

IMAGE_SIZE = 64
PATCH_SOURCE_SIZE = 96  # lsun-bedroom-patches: 64x64 patches from 96x96 images
WORKERS_ENV = "EBM_BENCH_WORKERS"
MAX_WORKERS = 8
PREFETCH_FACTOR = 4  # batches each worker keeps ready
MAX_HOLDOUT = 10_000  # 10k x 3 x 64 x 64 float32 = 0.5 GB on the device
HOLDOUT_BATCH = 256
HOLDOUT_PATCH_SEED = 0  # held-out patches are the same for every run seed
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
PREPROCESS_VERSION = "jpeg-draft-square-crop-bilinear-v1"  # in every sha256: change it with decoding or cropping
FINGERPRINT_KEYS = 1000  # LSUN: first and last keys hashed
CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2}
DCGAN_OPTIM = OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999)  # DCGAN's guidance, which EBGAN follows
LSUN_PIP = 'pip install "ebm-bench[lsun]"'


class CorruptImageError(EbmBenchError):
    """An image file (or LMDB value) could not be decoded; the message names it."""


class MissingDependencyError(ConfigError):
    """An optional package a dataset needs is not installed; the message says what to install."""


# -- decoding ----------------------------------------------------------------------------------------------------
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


# -- batches -----------------------------------------------------------------------------------------------------
def num_workers() -> int:
    """`EBM_BENCH_WORKERS` if set (0 decodes in the main process), else min(8, CPU count)."""
    value = os.environ.get(WORKERS_ENV)
    if value is None or value == "":
        return min(MAX_WORKERS, os.cpu_count() or 1)
    try:
        workers = int(value)
    except ValueError:
        workers = -1
    if workers < 0:
        raise ConfigError(f"{WORKERS_ENV}={value!r} is not a worker count; set it to 0 (decode in the main "
                          "process) or a positive number of loader processes")
    return workers


class _EpochBatches(Sampler):
    """Yields the batches of one epoch's permutation from `start` on, as lists of (index, epoch) items."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.order: list[int] = []
        self.epoch = 0
        self.start = 0

    def __len__(self) -> int:
        return len(self.order) // self.batch_size - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        size = self.batch_size
        for b in range(self.start, len(self.order) // size):
            yield [(i, self.epoch) for i in self.order[b * size:(b + 1) * size]]


def _raise_first_error(errors: Sequence[str]) -> None:
    bad = [e for e in errors if e]
    if bad:
        more = f" ({len(bad) - 1} more in the same batch)" if len(bad) > 1 else ""
        raise CorruptImageError(bad[0] + more)


class LoaderBatches:
    """Seeded, resumable batches decoded by DataLoader workers; the interface of data.TensorBatches.

    Each epoch is a permutation from a generator seeded by the run seed; the last incomplete batch is dropped.
    """

    def __init__(self, dataset: ImageSource, batch_size: int, seed: int, device: torch.device, workers: int):
        if batch_size > len(dataset):
            raise ConfigError(f"batch size {batch_size} is larger than the training set ({len(dataset)} images)")
        self.dataset, self.batch_size, self.device = dataset, batch_size, device
        self.generator = torch.Generator().manual_seed(seed)
        self.batches_per_epoch = len(dataset) // batch_size
        self.sampler = _EpochBatches(batch_size)
        self.loader = DataLoader(
            dataset, batch_sampler=self.sampler, num_workers=workers, pin_memory=device.type == "cuda",
            persistent_workers=workers > 0, prefetch_factor=PREFETCH_FACTOR if workers > 0 else None,
            generator=torch.Generator().manual_seed(seed))
        self.epoch = 0
        self.position = 0
        self._iterator: Iterator | None = None
        self._new_epoch()

    def _new_epoch(self) -> None:
        self._epoch_start_state = self.generator.get_state()
        self.sampler.order = torch.randperm(len(self.dataset), generator=self.generator).tolist()
        self.sampler.epoch = self.epoch
        self._iterator = None

    def next(self) -> torch.Tensor:
        if self.position == self.batches_per_epoch:
            self.epoch += 1
            self.position = 0
            self._new_epoch()
        if self._iterator is None:
            self.sampler.start = self.position
            self._iterator = iter(self.loader)  # persistent workers are reused, prefetched leftovers dropped
        images, errors = next(self._iterator)
        _raise_first_error(errors)
        self.position += 1
        return to_unit_range(images.to(self.device, non_blocking=True))

    def state_dict(self) -> dict:
        return {"epoch_start_generator": self._epoch_start_state, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["epoch_start_generator"].cpu())
        self.epoch = state["epoch"]
        self._new_epoch()  # draws the same permutation again and leaves the generator where it was
        self.position = state["position"]


def load_all(dataset: ImageSource, device: torch.device, workers: int) -> torch.Tensor:
    """Every image of `dataset`, in order, as float in [-1, 1] on `device` (the held-out set)."""
    if len(dataset) == 0:
        return torch.empty(0, 3, IMAGE_SIZE, IMAGE_SIZE, device=device)
    items = [(i, HOLDOUT_EPOCH) for i in range(len(dataset))]
    chunks = [items[i:i + HOLDOUT_BATCH] for i in range(0, len(items), HOLDOUT_BATCH)]
    loader = DataLoader(dataset, batch_sampler=chunks, num_workers=min(workers, len(chunks)))
    images = []
    for batch, errors in loader:
        _raise_first_error(errors)
        images.append(batch)
    return to_unit_range(torch.cat(images).to(device))


def _check_holdout(holdout: int) -> None:
    if not 0 <= holdout <= MAX_HOLDOUT:
        raise ConfigError(f"holdout={holdout}: use 0..{MAX_HOLDOUT} held-out images (they are kept on the device "
                          "as float32 for the end-of-run energy evaluation)")


def _training_data(train: ImageSource, held: ImageSource, batch_size: int, seed: int, device: torch.device,
                   sha256: str) -> TrainingData:
    workers = num_workers()
    return TrainingData(batches=LoaderBatches(train, batch_size, seed, device, workers),
                        holdout=load_all(held, device, workers), image_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
                        n_train=len(train), sha256=sha256)


def _split_tail(n: int, holdout: int, batch_size: int, what: str) -> int:
    """Number of training items when the last `holdout` of `n` are held out; checks enough are left."""
    if n - holdout < batch_size:
        raise ConfigError(f"{what} has {n} images: holding out {holdout} leaves {n - holdout}, fewer than one batch "
                          f"of {batch_size}; lower --holdout or --batch-size")
    return n - holdout


def _fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _data_root_help(root: Path) -> str:
    return f"(data root {root}: set it with --data-root or EBM_BENCH_DATA)"


def _check_image_size(name: str, image_size: int) -> None:
    if image_size != IMAGE_SIZE:
        raise ConfigError(f"{name} is prepared at {IMAGE_SIZE}x{IMAGE_SIZE} only, not {image_size}")


# -- CelebA ------------------------------------------------------------------------------------------------------
CELEBA_HELP = ("Fix: download img_align_celeba.zip and list_eval_partition.txt from the CelebA page "
               "(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, 'Align&Cropped Images' and 'Eval'), or let "
               "torchvision.datasets.CelebA(ROOT, download=True) fetch them, then unzip so that "
               "{folder}/img_align_celeba/000001.jpg and {folder}/list_eval_partition.txt exist.")


def read_celeba_partition(path: Path) -> dict[int, list[str]]:
    """list_eval_partition.txt ("000001.jpg 0" per line) -> {0: train names, 1: valid names, 2: test names}."""
    splits: dict[int, list[str]] = {0: [], 1: [], 2: []}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataNotFoundError(f"{path} line {number} is not '<image>.jpg <0|1|2>': {line.strip()!r}. Fix: "
                                    "use the official list_eval_partition.txt")
        splits[int(fields[1])].append(fields[0])
    return splits


def _celeba_paths(root: Path) -> tuple[Path, Path]:
    folder = root / "celeba"
    images, partition = folder / "img_align_celeba", folder / "list_eval_partition.txt"
    for needed in (folder, images, partition):
        if not needed.exists():
            raise DataNotFoundError(f"CelebA not found: {needed} does not exist {_data_root_help(root)}. "
                                    + CELEBA_HELP.format(folder=folder))
    return images, partition


def _check_listed_files_exist(images: Path, names: list[str]) -> None:
    present = set(os.listdir(images))  # one directory listing, not 200k stat calls
    missing = [name for name in names if name not in present]
    if missing:
        raise DataNotFoundError(f"{len(missing)} of the {len(names)} CelebA images named in list_eval_partition.txt "
                                f"are missing from {images} (first: {missing[0]}). Fix: extract the whole "
                                "img_align_celeba.zip there")


def load_celeba(root: Path, image_size: int, batch_size: int, seed: int, holdout: int, device: torch.device,
                download: bool = True) -> TrainingData:
    """CelebA aligned faces: the official train split for training, the first `holdout` of valid held out."""
    _check_image_size("celeba", image_size)
    _check_holdout(holdout)
    images, partition = _celeba_paths(Path(root))
    splits = read_celeba_partition(partition)
    train_names, valid_names = splits[CELEBA_SPLITS["train"]], splits[CELEBA_SPLITS["valid"]][:holdout]
    _check_listed_files_exist(images, train_names + valid_names)
    transform = CentreSquare(image_size)
    sha = _fingerprint("celeba", PREPROCESS_VERSION, partition.read_bytes())
    return _training_data(FileImages(images, train_names, transform), FileImages(images, valid_names, transform),
                          batch_size, seed, device, sha)


# -- image folder ------------------------------------------------------------------------------------------------
def list_images(folder: Path) -> list[str]:
    """Relative paths (POSIX) of every image under `folder`, recursively, sorted; hidden files are skipped
    (macOS "._name.jpg" resource forks look like images but are not)."""
    names = []
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                names.append(Path(directory, name).relative_to(folder).as_posix())
    return sorted(names)


def load_folder(root: Path, image_size: int, batch_size: int, seed: int, holdout: int, device: torch.device,
                download: bool = True) -> TrainingData:
    """Every image under <root>/folder/; the last `holdout` in sorted path order are held out, the rest trained on."""
    _check_image_size("folder", image_size)
    _check_holdout(holdout)
    folder = Path(root) / "folder"
    if not folder.is_dir():
        raise DataNotFoundError(f"image folder not found: {folder} does not exist {_data_root_help(Path(root))}. "
                                f"Fix: put your images (any depth; {', '.join(IMAGE_EXTENSIONS)}) in {folder}/, "
                                f"e.g. `ln -s /path/to/images {folder}`")
    names = list_images(folder)
    if not names:
        raise DataNotFoundError(f"no images in {folder} (looked recursively for {', '.join(IMAGE_EXTENSIONS)})")
    n_train = _split_tail(len(names), holdout, batch_size, f"the folder {folder}")
    sizes = "\n".join(f"{name}\t{os.path.getsize(folder / name)}" for name in names)
    transform = CentreSquare(image_size)
    train, held = FileImages(folder, names[:n_train], transform), FileImages(folder, names[n_train:], transform)
    return _training_data(train, held, batch_size, seed, device, _fingerprint("folder", PREPROCESS_VERSION, sizes))


# -- LSUN --------------------------------------------------------------------------------------------------------
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
            raise DataNotFoundError(f"LSUN bedroom not found: {needed} does not exist {_data_root_help(root)}. "
                                    + LSUN_HELP.format(folder=folder))
    return train, (val if (val / "data.mdb").exists() else None)


def _load_lsun(root: Path, image_size: int, batch_size: int, seed: int, holdout: int, device: torch.device,
               patches: bool) -> TrainingData:
    name = "lsun-bedroom-patches" if patches else "lsun-bedroom"
    _check_image_size(name, image_size)
    _check_holdout(holdout)
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
        n_train = _split_tail(len(keys), holdout, batch_size, f"the LMDB {train_dir}")
        train = LMDBImages(train_dir, keys, 0, n_train, train_t)
        held = LMDBImages(train_dir, keys, n_train, len(keys), held_t)
    return _training_data(train, held, batch_size, seed, device, _fingerprint(*parts))


def load_lsun_bedroom(root: Path, image_size: int, batch_size: int, seed: int, holdout: int, device: torch.device,
                      download: bool = True) -> TrainingData:
    """LSUN bedroom, whole images: short side to 64, centre 64x64 crop."""
    return _load_lsun(root, image_size, batch_size, seed, holdout, device, patches=False)


def load_lsun_bedroom_patches(root: Path, image_size: int, batch_size: int, seed: int, holdout: int,
                              device: torch.device, download: bool = True) -> TrainingData:
    """LSUN bedroom as 64x64 patches at seeded random positions in the 96x96 image (the paper's augmented set)."""
    return _load_lsun(root, image_size, batch_size, seed, holdout, device, patches=True)


# -- registry ----------------------------------------------------------------------------------------------------
def _info(name: str, description: str, margin: float, load: Callable[..., TrainingData]) -> DatasetInfo:
    return DatasetInfo(name=name, description=description, image_sizes=(IMAGE_SIZE,), channels=3,
                       default_margin=margin, load=load, default_arch="dcgan", default_optim=DCGAN_OPTIM)


DATASETS["celeba"] = _info(
    "celeba", "CelebA aligned faces, 3x64x64 (178x178 centre crop); official train split, valid held out",
    20.0, load_celeba)  # the paper's CelebA margin
DATASETS["lsun-bedroom"] = _info(
    "lsun-bedroom", "LSUN bedroom (LMDB), 3x64x64 centre crops; needs the lmdb package", 80.0, load_lsun_bedroom)
DATASETS["lsun-bedroom-patches"] = _info(
    "lsun-bedroom-patches", "LSUN bedroom as random 64x64 patches of 96x96 images (the paper's augmented set)",
    80.0, load_lsun_bedroom_patches)  # the paper's LSUN margin, for both versions
DATASETS["folder"] = _info(
    "folder", "any folder of images under <data-root>/folder, 3x64x64 centre crops; last files held out",
    20.0, load_folder)  # CelebA's margin: a 64x64 RGB folder is most often faces or objects at that scale
