"""The inputs a metric computes from: generated samples, the reference set, and D's energies.

Each derived quantity (classifier log-probabilities and features, Inception statistics) is computed once, on first
use, and shared by every metric that needs it: a new metric on the classifier's features costs no second pass.
"""

from __future__ import annotations

import functools

import torch

from ebm_bench.errors import ConfigError

from .classifier import classifier_features, classifier_log_probs, load_classifier
from .inception import inception_metrics, resolve_weights_path


class MetricInputs:
    """The inputs of one scoring pass. `samples` are float images in [-1, 1]; `reference` is a Reference (or
    None when no metric needs one); energies are 1-D tensors."""

    def __init__(self, samples: torch.Tensor | None = None, reference=None, device: torch.device | str = "cpu",
                 energy_real: torch.Tensor | None = None, energy_fake: torch.Tensor | None = None,
                 inception_weights=None, inception_names: tuple[str, ...] = (), cache_dir=None):
        self._samples, self._reference = samples, reference
        self.device = torch.device(device)
        self._energy_real, self._energy_fake = energy_real, energy_fake
        self.inception_weights, self.inception_names, self.cache_dir = inception_weights, inception_names, cache_dir
        self.used: set[str] = set()  # what was read: "classifier", "reference", "inception" (for provenance)

    @property
    def samples(self) -> torch.Tensor:
        if self._samples is None:
            raise ConfigError("this metric needs generated samples, and none were given")
        return self._samples

    @functools.cached_property
    def reference(self):
        """The Reference; given as a zero-argument function, it is built only when a metric asks for it."""
        if self._reference is None:
            raise ConfigError("this metric compares against a reference set, and none was given")
        self.used.add("reference")
        return self._reference() if callable(self._reference) else self._reference

    @property
    def energy_real(self) -> torch.Tensor:
        if self._energy_real is None:
            raise ConfigError("this metric needs D's energies of held-out real images, and none were given")
        return self._energy_real

    @property
    def energy_fake(self) -> torch.Tensor:
        if self._energy_fake is None:
            raise ConfigError("this metric needs D's energies of generated images, and none were given")
        return self._energy_fake

    @functools.cached_property
    def classifier(self):
        samples = self.samples
        if samples.shape[1] != 1 or tuple(samples.shape[2:]) not in ((32, 32), (28, 28)):
            raise ConfigError(f"the classifier metrics use the MNIST classifier and need 1 x 32 x 32 or 1 x 28 x 28 "
                              f"images, got {tuple(samples.shape[1:])}")
        self.used.add("classifier")
        return load_classifier(device=self.device)

    @functools.cached_property
    def classifier_log_probs(self) -> torch.Tensor:
        return classifier_log_probs(self.samples, self.classifier)

    @functools.cached_property
    def classifier_features(self) -> torch.Tensor:
        return classifier_features(self.samples, self.classifier)

    @functools.cached_property
    def reference_classifier_features(self) -> torch.Tensor:
        return classifier_features(self.reference.float_images(), self.classifier)

    @functools.cached_property
    def _inception_scores(self) -> dict[str, float]:
        names = self.inception_names
        reference = self.reference.inception() if any(name in ("fid", "kid") for name in names) else None
        self.inception_weights = resolve_weights_path(self.inception_weights)
        self.used.add("inception")
        return inception_metrics(self.samples, names, reference, self.inception_weights, self.device,
                                 cache_dir=self.cache_dir)

    def inception(self, name: str) -> float:
        """One of the Inception metrics this pass computes (all of them in one torch-fidelity call)."""
        if name not in self.inception_names:
            self.inception_names = (*self.inception_names, name)
        return self._inception_scores[name]
