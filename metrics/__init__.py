"""Sample-quality metrics for generated images, and the registry a leaderboard ranks by.

`score_images` computes any of the registered metrics on float images in [-1, 1] against a reference set.
Every number should be reported with `provenance` (N, library version, weights hashes): FID and KID depend on
N, classifier scores on the classifier.

N rule: the first `n` generated images (all of them by default) are scored against the first min(n, size of the
reference set) reference images, so both sides of FID / KID / FID-MNIST have the same N whenever possible.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import torch

from ebm_bench.config import resolve_device
from ebm_bench.errors import ConfigError

from .classifier import (
    CLASSIFIER_SHA256,
    CLASSIFIER_TEST_ACCURACY,
    MnistClassifier,
    WeightsMismatchError,
    classifier_features,
    classifier_log_probs,
    load_classifier,
    train_classifier,
)
from .classifier_scores import (
    DEFAULT_MIN_SHARE,
    class_kl,
    classes_covered,
    feature_statistics,
    fid_mnist,
    frechet_distance,
    i_prime,
    mnist_is,
)
from .energy import auroc, heldout_energy
from .inception import (
    TORCH_FIDELITY_VERSION,
    InceptionReference,
    inception_metrics,
    reference_cache_key,
    resolve_weights_path,
    to_uint8_rgb,
    weights_sha256,
)


class MetricInfo(NamedTuple):
    direction: str  # "higher" or "lower": which way is better
    description: str


METRICS: dict[str, MetricInfo] = {
    "i_prime": MetricInfo("higher", "EBGAN's I' = E_x KL(p(y) || p(y|x)) with the pinned MNIST classifier (nats)"),
    "mnist_is": MetricInfo("higher", "exp E_x KL(p(y|x) || p(y)) with the pinned MNIST classifier (1..10)"),
    "classes_covered": MetricInfo("higher", "digits predicted for >= 1% of the samples (0..10)"),
    "class_kl": MetricInfo("lower", "KL(predicted-digit histogram || uniform) in nats (0..log 10)"),
    "fid_mnist": MetricInfo("lower", "Frechet distance of the MNIST classifier's 128-d features to the reference"),
    "is": MetricInfo("higher", "Inception Score, torch-fidelity (always 1.0 with zeroed-fc weights)"),
    "fid": MetricInfo("lower", "Frechet Inception Distance to the reference, torch-fidelity"),
    "kid": MetricInfo("lower", "Kernel Inception Distance to the reference (mean of subsets), torch-fidelity"),
}
CLASSIFIER_METRICS = ("i_prime", "mnist_is", "classes_covered", "class_kl", "fid_mnist")
INCEPTION_METRIC_NAMES = ("is", "fid", "kid")
REFERENCE_METRICS = ("fid_mnist", "fid", "kid")
MNIST_REFERENCES = {"mnist-test": "test", "mnist-train": "train"}

__all__ = [
    "METRICS", "MetricInfo", "CLASSIFIER_METRICS", "INCEPTION_METRIC_NAMES", "MNIST_REFERENCES",
    "parse_metric_names", "score_images", "score_images_with_provenance", "provenance", "resolve_device",
    "i_prime", "mnist_is", "classes_covered", "class_kl", "frechet_distance", "feature_statistics", "fid_mnist",
    "DEFAULT_MIN_SHARE", "inception_metrics", "InceptionReference", "reference_cache_key", "to_uint8_rgb",
    "auroc", "heldout_energy",
    "MnistClassifier", "load_classifier", "train_classifier", "classifier_log_probs", "classifier_features",
    "CLASSIFIER_SHA256", "CLASSIFIER_TEST_ACCURACY", "WeightsMismatchError", "TORCH_FIDELITY_VERSION",
]


def parse_metric_names(metrics: str | list[str] | tuple[str, ...]) -> list[str]:
    """"a,b" or ["a", "b"] -> validated, de-duplicated names in the order given."""
    names = [name.strip() for name in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = list(dict.fromkeys(name for name in names if name))
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        problem = f"unknown metric(s) {', '.join(unknown)}" if unknown else "no metrics requested"
        raise ConfigError(f"{problem}; known metrics: {', '.join(METRICS)}")
    return names


def score_images(images: torch.Tensor, metrics, reference: str | torch.Tensor = "mnist-test", n: int | None = None,
                 device: str | torch.device = "cpu", inception_weights=None, data_root=None,
                 cache_dir=None) -> dict[str, float]:
    """The requested metrics (names from METRICS) of float images in [-1, 1], N x C x H x W.

    `reference` is "mnist-test", "mnist-train", or a tensor of reference images (float in [-1, 1] or uint8).
    See `score_images_with_provenance` for the record of what produced the numbers.
    """
    scores, _ = score_images_with_provenance(images, metrics, reference, n, device, inception_weights, data_root,
                                             cache_dir)
    return scores


def score_images_with_provenance(images: torch.Tensor, metrics, reference: str | torch.Tensor = "mnist-test",
                                 n: int | None = None, device: str | torch.device = "cpu", inception_weights=None,
                                 data_root=None, cache_dir=None) -> tuple[dict[str, float], dict]:
    """(scores, provenance): `score_images` plus what a run record must store next to the numbers."""
    names = parse_metric_names(metrics)
    device = resolve_device(device)
    images = _select(_check_generated(images), n)
    needs_reference = any(name in REFERENCE_METRICS for name in names)
    ref = _Reference.build(reference, images, data_root) if needs_reference else None
    scores: dict[str, float] = {}
    classifier_names = [name for name in names if name in CLASSIFIER_METRICS]
    if classifier_names:
        scores.update(_classifier_scores(images, classifier_names, ref, device))
    inception_names = [name for name in names if name in INCEPTION_METRIC_NAMES]
    weights = None
    if inception_names:
        weights = resolve_weights_path(inception_weights)
        scores.update(inception_metrics(images, inception_names, ref.inception() if ref else None, weights,
                                        device, cache_dir=cache_dir))
    record = provenance(len(images), inception_weights=weights if inception_names else None,
                        classifier=bool(classifier_names), reference=ref.name if ref else None,
                        n_reference=ref.n if ref else None, image_shape=tuple(images.shape[1:]))
    return {name: scores[name] for name in names}, record


def provenance(n: int, inception_weights=None, classifier: bool = True, reference: str | None = None,
               n_reference: int | None = None, image_shape: tuple[int, ...] | None = None) -> dict:
    """What produced a set of scores: N, library version, weights hashes (None where not used)."""
    return {
        "n": n,
        "reference": reference,
        "n_reference": n_reference,
        "image_shape": list(image_shape) if image_shape else None,
        "torch_fidelity_version": TORCH_FIDELITY_VERSION,
        "inception_weights_sha256": weights_sha256(inception_weights) if inception_weights else None,
        "classifier_sha256": CLASSIFIER_SHA256 if classifier else None,
        "classifier_test_accuracy": CLASSIFIER_TEST_ACCURACY if classifier else None,
        "classes_covered_min_share": DEFAULT_MIN_SHARE if classifier else None,
    }


def _check_generated(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"images must be a float tensor N x C x H x W (C = 1 or 3) in [-1, 1], got {shape}")
    if not images.is_floating_point():
        raise ConfigError(f"images must be float in [-1, 1], got {images.dtype}; convert uint8 with to_unit_range")
    if len(images) < 2:
        raise ConfigError(f"need at least 2 images to score, got {len(images)}")
    return images


def _select(images: torch.Tensor, n: int | None) -> torch.Tensor:
    if n is None:
        return images
    if not 2 <= n <= len(images):
        raise ConfigError(f"n={n} images requested but {len(images)} available; use 2 <= n <= {len(images)}")
    return images[:n]


def _classifier_scores(images: torch.Tensor, names: list[str], ref: "_Reference | None",
                       device: torch.device) -> dict[str, float]:
    if images.shape[1] != 1 or tuple(images.shape[2:]) not in ((32, 32), (28, 28)):
        raise ConfigError(f"{', '.join(names)} use the MNIST classifier and need 1 x 32 x 32 or 1 x 28 x 28 images, "
                          f"got {tuple(images.shape[1:])}")
    classifier = load_classifier(device=device)
    log_probs = classifier_log_probs(images, classifier)
    functions = {"i_prime": i_prime, "mnist_is": mnist_is, "classes_covered": classes_covered, "class_kl": class_kl}
    scores = {name: float(functions[name](log_probs)) for name in names if name in functions}
    if "fid_mnist" in names:
        scores["fid_mnist"] = fid_mnist(images, ref.float_images(), classifier)
    return scores


class _Reference:
    """The reference set for FID-type metrics: MNIST by split, or explicit images; first n_reference images."""

    def __init__(self, name: str, dataset: str, split: str, load, n: int, image_shape: tuple[int, ...]):
        self.name, self.dataset, self.split, self._load = name, dataset, split, load
        self.n, self.image_shape = n, image_shape

    @classmethod
    def build(cls, reference, images: torch.Tensor, data_root) -> "_Reference":
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
    def _from_tensor(cls, reference: torch.Tensor, shape: tuple[int, ...], n_images: int) -> "_Reference":
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
    from ebm_bench.data import default_data_root, load_mnist

    loaded: list[torch.Tensor] = []

    def load() -> torch.Tensor:
        if not loaded:
            root = data_root if data_root is not None else default_data_root()
            loaded.append(load_mnist(root, split, image_size=image_size).images[:n])
        return loaded[0]

    return load
