"""CelebA aligned faces: the official train split for training, the first `holdout` of its valid split held out.

On disk under --data-root (torchvision's names): celeba/img_align_celeba/*.jpg and celeba/list_eval_partition.txt.
torchvision.datasets.CelebA is not used: it checks the md5 of its metadata files (so only the official files pass,
never a test fixture or a re-hosted copy) and reads four annotation files we do not need. Nothing is downloaded
(Google Drive quotas): the error says where to get the files. sha256: the name, PREPROCESS_VERSION and the
partition file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ebm_bench.errors import DataNotFoundError

from .images import (IMAGE_SIZE, PREPROCESS_VERSION, CentreSquare, FileImages, check_holdout,
                     check_image_size, data_root_help, fingerprint)
from .loading import training_data
from .spec import DatasetSpec, TrainingData

CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2}


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
            raise DataNotFoundError(f"CelebA not found: {needed} does not exist {data_root_help(root)}. "
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
    check_image_size("celeba", image_size)
    check_holdout(holdout)
    images, partition = _celeba_paths(Path(root))
    splits = read_celeba_partition(partition)
    train_names, valid_names = splits[CELEBA_SPLITS["train"]], splits[CELEBA_SPLITS["valid"]][:holdout]
    _check_listed_files_exist(images, train_names + valid_names)
    transform = CentreSquare(image_size)
    sha = fingerprint("celeba", PREPROCESS_VERSION, partition.read_bytes())
    return training_data(FileImages(images, train_names, transform), FileImages(images, valid_names, transform),
                          batch_size, seed, device, sha)


SPEC = DatasetSpec(
    name="celeba", description="CelebA aligned faces, 3x64x64 (178x178 centre crop); official train split, valid held "
    "out", load=load_celeba, image_sizes=(IMAGE_SIZE,), channels=3, default_arch="dcgan", preset="dcgan-64",
    option_defaults={"margin": 20.0})  # the paper's CelebA margin
