"""The reference set FID-type metrics compare against: MNIST by split, or given images (a dataset's held-out set).

N rule: the first min(n, size of the set) reference images, so both sides of FID / KID / FID-MNIST have the same N
whenever possible.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ebm_bench.errors import ConfigError

from .inception import InceptionReference, to_uint8_rgb

MNIST_REFERENCES = {"mnist-test": "test", "mnist-train": "train"}


class Reference:
    """The reference set for FID-type metrics: MNIST by split, or explicit images; first n_reference images."""

    def __init__(self, name: str, dataset: str, split: str, load, n: int, image_shape: tuple[int, ...]):
        self.name, self.dataset, self.split, self._load = name, dataset, split, load
        self.n, self.image_shape = n, image_shape
        self._derived: dict[str, torch.Tensor] = {}

    def derived(self, key: str, compute):
        """A quantity computed from the reference images (their classifier features, say), computed once."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    @classmethod
    def build(cls, reference, images: torch.Tensor, data_root) -> "Reference":
        shape = tuple(images.shape[1:])
        if isinstance(reference, torch.Tensor):
            return cls._from_tensor(reference, shape, len(images))
        if reference not in MNIST_REFERENCES:
            raise ConfigError(f"unknown reference {reference!r}: use {', '.join(MNIST_REFERENCES)}, or images")
        if shape not in ((1, 32, 32), (1, 28, 28)):
            raise ConfigError(f"reference {reference} holds 1 x 32 x 32 (or 28 x 28) MNIST digits; the images to "
                              f"score are {shape}: use a reference of their own kind")
        split = MNIST_REFERENCES[reference]
        n = min(len(images), 10000 if split == "test" else 60000)
        return cls(reference, "mnist", split, _mnist_loader(data_root, split, shape[-1], n), n, shape)

    @classmethod
    def _from_tensor(cls, reference: torch.Tensor, shape: tuple[int, ...], n_images: int) -> "Reference":
        if reference.dim() != 4 or tuple(reference.shape[1:]) != shape:
            raise ConfigError(f"reference images have shape {tuple(reference.shape)}; they must match the scored "
                              f"images' C x H x W = {shape}")
        n = min(n_images, len(reference))
        chosen = reference[:n]
        digest = hashlib.sha256(to_uint8_rgb(chosen).numpy().tobytes()).hexdigest()
        return cls(f"images-{digest[:16]}", f"images-{digest[:16]}", "all", lambda: chosen, n, shape)

    def float_images(self) -> torch.Tensor:
        images = self._load()
        return images if images.is_floating_point() else images.float().div(127.5).sub(1.0)

    def inception(self) -> InceptionReference:
        return InceptionReference(self.dataset, self.split, self.n, self.image_shape[-1], self._load)


def _mnist_loader(data_root, split: str, image_size: int, n: int):
    """A memoised loader of the first n uint8 MNIST images of a split (only runs when the images are needed)."""
    from ebm_bench.datasets import default_data_root
    from ebm_bench.datasets.mnist import load_mnist

    loaded: list[torch.Tensor] = []

    def load() -> torch.Tensor:
        if not loaded:
            # A run on another dataset (digits from a file, say) keeps MNIST in the default data folder
            root = data_root if data_root is not None and (Path(data_root) / "MNIST").is_dir() \
                else default_data_root()
            loaded.append(load_mnist(root, split, image_size=image_size).images[:n])
        return loaded[0]

    return load
