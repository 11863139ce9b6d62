"""The dataset registry: name -> DatasetSpec. Every dataset yields images in [-1, 1], N x C x H x W.

Add one with `@ebm_bench.register_dataset("name", image_sizes=..., channels=...)` on its loader function.
"""

from __future__ import annotations

from typing import Any

from ebm_bench.errors import ConfigError
from ebm_bench.registry import Registry

from . import celeba, folder, lsun, mnist
from .loading import TensorBatches
from .spec import DatasetSpec, ImageArrays, Loader, TrainingData, default_data_root, to_unit_range


def _check(name: str, spec: Any) -> DatasetSpec:
    if not isinstance(spec, DatasetSpec):
        raise ConfigError(f"dataset {name!r} must be registered as a DatasetSpec (use @register_dataset on its "
                          f"loader), not {type(spec).__name__}")
    if spec.name != name:
        raise ConfigError(f"dataset {name!r} is registered under another name than its spec's ({spec.name!r})")
    if not spec.image_sizes or spec.channels not in (1, 3):
        raise ConfigError(f"dataset {name!r}: image_sizes must be non-empty and channels 1 or 3")
    return spec


DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", _check, lambda name, loaded: loaded if isinstance(loaded, DatasetSpec) else None,
    {spec.name: spec for spec in (mnist.SPEC, celeba.SPEC, lsun.SPEC, lsun.PATCHES_SPEC, folder.SPEC)})


def register_dataset(name: str, *, image_sizes: tuple[int, ...], channels: int, description: str = "",
                     default_arch: str = "mlp", reference: str = "holdout", classifier: bool = False,
                     preset: str | None = None):
    """Function decorator on a loader `load(root, image_size, batch_size, seed, holdout, device, download)` that
    returns TrainingData; makes it available as `--dataset name`."""

    def decorate(load: Loader) -> Loader:
        DATASETS.add(name, DatasetSpec(
            name=name, description=description or (load.__doc__ or "").strip().split("\n")[0], load=load,
            image_sizes=tuple(image_sizes), channels=channels, default_arch=default_arch, reference=reference,
            classifier=classifier, preset=preset))
        return load

    return decorate


def get_dataset(name: str) -> DatasetSpec:
    return DATASETS.get(name)


__all__ = ["DATASETS", "DatasetSpec", "ImageArrays", "TensorBatches", "TrainingData", "default_data_root",
           "get_dataset", "register_dataset", "to_unit_range"]
