"""The dataset registry: name -> DatasetSpec. Every dataset yields images in [-1, 1], N x C x H x W.

Add one with `@ebm_bench.register_dataset("name", image_sizes=..., channels=...)` on its loader function. Every
registered loader is called through CheckedLoader, which checks what it returns: a loader that returns something
else than the TrainingData its spec promises fails in one line naming it, not in a traceback inside training.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ebm_bench.errors import ConfigError
from ebm_bench.registry import Registry, describe, source

from . import celeba, folder, gaussians, lsun, mnist, pi_mnist
from .loading import (UNLABELLED, LabelledBatch, SemiSupervisedBatches, TensorBatches, balanced_subset,
                      labelled_subset_seed, semi_supervised)
from .spec import DatasetSpec, ImageArrays, Loader, TrainingData, default_data_root, to_unit_range


def _check(name: str, spec: Any) -> DatasetSpec:
    if not isinstance(spec, DatasetSpec):
        raise ConfigError(f"dataset {name!r} must be registered as a DatasetSpec (use @register_dataset on its "
                          f"loader), not {type(spec).__name__}")
    if spec.name != name:
        raise ConfigError(f"dataset {name!r} is registered under another name than its spec's ({spec.name!r})")
    if not spec.image_sizes or spec.channels not in (1, 3):
        raise ConfigError(f"dataset {name!r}: image_sizes must be non-empty and channels 1 or 3")
    if not callable(spec.load):
        raise ConfigError(f"dataset {name!r}: load must be a loader function, not {type(spec.load).__name__}")
    loader = spec.load.load if isinstance(spec.load, CheckedLoader) else spec.load
    return dataclasses.replace(spec, load=CheckedLoader(name, spec.channels, loader))


class CheckedLoader:
    """A dataset's loader, called as the spec's `load`, that checks the TrainingData it returns (a class, not a
    closure, so that a spec still pickles)."""

    def __init__(self, dataset: str, channels: int, load: Loader):
        self.dataset, self.channels, self.load = dataset, channels, load
        self.__wrapped__ = load  # where the loader is defined (registry.source) and its docstring
        self.__doc__ = load.__doc__

    def __call__(self, root, image_size: int, batch_size: int, seed: int, holdout: int, device, download=True):
        data = self.load(root, image_size, batch_size, seed, holdout, device, download)
        problem = self._problem(data, image_size)
        if problem:
            raise ConfigError(f"dataset {self.dataset!r} ({describe(source(self.load))}): its loader {problem}; a "
                              "loader returns ebm_bench.TrainingData(batches, holdout, image_shape, n_train, sha256)")
        return data

    def _problem(self, data: Any, image_size: int) -> str | None:
        if not isinstance(data, TrainingData):
            return f"returned {type(data).__name__}, not TrainingData"
        batches, holdout, shape = data.batches, data.holdout, data.image_shape
        for hook in ("next", "state_dict", "load_state_dict"):
            if not callable(getattr(batches, hook, None)):
                return f"returned batches ({type(batches).__name__}) without a {hook}() method (use TensorBatches)"
        per_epoch = getattr(batches, "batches_per_epoch", None)
        if not isinstance(per_epoch, int) or per_epoch < 1:
            return f"returned batches whose batches_per_epoch is {per_epoch!r}, not a positive integer"
        expected = (self.channels, image_size, image_size)
        if not isinstance(shape, (tuple, list)) or tuple(shape) != expected:
            return f"returned image_shape {shape!r}, but the spec promises {expected} at image size {image_size}"
        if not isinstance(holdout, torch.Tensor) or not holdout.is_floating_point() or holdout.dim() != 4 \
                or tuple(holdout.shape[1:]) != expected:
            what = f"{holdout.dtype} {tuple(holdout.shape)}" if isinstance(holdout, torch.Tensor) \
                else type(holdout).__name__
            return f"returned holdout as {what}, not float images in [-1, 1] of shape N x {_by(expected)}"
        if not isinstance(data.n_train, int) or isinstance(data.n_train, bool) or data.n_train < 1:
            return f"returned n_train {data.n_train!r}, not a positive integer"
        if not isinstance(data.sha256, str):
            return f"returned sha256 {type(data.sha256).__name__}, not a string"
        return None


def _by(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))


DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", _check, lambda name, loaded: loaded if isinstance(loaded, DatasetSpec) else None,
    {spec.name: spec for spec in (mnist.SPEC, celeba.SPEC, lsun.SPEC, lsun.PATCHES_SPEC, folder.SPEC,
                                  gaussians.SPEC, pi_mnist.SPEC)},
    origin=lambda spec: spec.load)


def register_dataset(name: str, *, image_sizes: tuple[int, ...], channels: int, description: str = "",
                     default_arch: str = "mlp", reference: str = "holdout", classifier: bool = False,
                     preset: str | None = None, option_defaults: dict[str, Any] | None = None,
                     replace: bool = False):
    """Function decorator on a loader `load(root, image_size, batch_size, seed, holdout, device, download)` that
    returns TrainingData; makes it available as `--dataset name`. A name already registered elsewhere (a
    built-in) needs `replace=True`."""

    def decorate(load: Loader) -> Loader:
        DATASETS.add(name, DatasetSpec(
            name=name, description=description or (load.__doc__ or "").strip().split("\n")[0], load=load,
            image_sizes=tuple(image_sizes), channels=channels, default_arch=default_arch, reference=reference,
            classifier=classifier, preset=preset, option_defaults=dict(option_defaults or {})), replace=replace)
        return load

    return decorate


def get_dataset(name: str) -> DatasetSpec:
    return DATASETS.get(name)


__all__ = ["CheckedLoader", "DATASETS", "DatasetSpec", "ImageArrays", "LabelledBatch", "SemiSupervisedBatches",
           "TensorBatches", "TrainingData", "UNLABELLED", "balanced_subset", "default_data_root", "get_dataset",
           "labelled_subset_seed", "register_dataset", "semi_supervised", "to_unit_range"]
