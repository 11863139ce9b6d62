"""Any folder of images under <data-root>/folder/ (any depth): the last `holdout` files in sorted path order are
held out and never trained on. sha256: the name, PREPROCESS_VERSION and the sorted relative paths with sizes.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ebm_bench.errors import DataNotFoundError

from .images import (IMAGE_EXTENSIONS, IMAGE_SIZE, PREPROCESS_VERSION, CentreSquare, FileImages, check_holdout,
                     check_image_size, data_root_help, fingerprint, split_tail)
from .loading import training_data
from .spec import DatasetSpec, TrainingData


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
    check_image_size("folder", image_size)
    check_holdout(holdout)
    folder = Path(root) / "folder"
    if not folder.is_dir():
        raise DataNotFoundError(f"image folder not found: {folder} does not exist {data_root_help(Path(root))}. "
                                f"Fix: put your images (any depth; {', '.join(IMAGE_EXTENSIONS)}) in {folder}/, "
                                f"e.g. `ln -s /path/to/images {folder}`")
    names = list_images(folder)
    if not names:
        raise DataNotFoundError(f"no images in {folder} (looked recursively for {', '.join(IMAGE_EXTENSIONS)})")
    n_train = split_tail(len(names), holdout, batch_size, f"the folder {folder}")
    sizes = "\n".join(f"{name}\t{os.path.getsize(folder / name)}" for name in names)
    transform = CentreSquare(image_size)
    train, held = FileImages(folder, names[:n_train], transform), FileImages(folder, names[n_train:], transform)
    return training_data(train, held, batch_size, seed, device, fingerprint("folder", PREPROCESS_VERSION, sizes))


SPEC = DatasetSpec(
    name="folder", description="any folder of images under <data-root>/folder, 3x64x64 centre crops; last files held "
    "out", load=load_folder, image_sizes=(IMAGE_SIZE,), channels=3, default_arch="dcgan", preset="dcgan-64",
    option_defaults={"margin": 20.0})  # CelebA's: a folder of 64x64 RGB images is most often faces or objects
