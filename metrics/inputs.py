"""The inputs a metric computes from: generated samples, the reference set, and D's energies.

Each derived quantity (classifier log-probabilities and features, Inception statistics) is computed once, on first
use, and shared by every metric that needs it: a new metric on the classifier's features costs no second pass.
"""

from __future__ import annotations

import functools

import torch

from ebm_bench.errors import ConfigError

from .classifier import classifier_features, classifier_outputs, load_classifier
from .inception import BINARY_INCEPTION_METRICS, KidSetting, inception_metrics, kid_setting, resolve_weights_path
from .prdc import DEFAULT_K, knn_radii, prdc


class SharedClassifierPass:
    """The classifier outputs of several sample sets (the runs of a pack), computed in one pass over all of them
    when the first set asks."""

    def __init__(self, sets: list[torch.Tensor], batch_size: int = 1000):
        self.sets, self.batch_size = sets, batch_size
        self._outputs: dict[str, list[torch.Tensor]] = {}

    def outputs(self, kind: str, classifier) -> list[torch.Tensor]:
        """"log_probs" or "features" of every set, in order (both come from one pass)."""
        if not self._outputs:
            # whole batches across set boundaries, so K small sets cost as few calls as one large one
            passes = [classifier_outputs(batch, classifier, self.batch_size) for batch in self._batches()]
            sizes = [len(images) for images in self.sets]
            for k, name in enumerate(("log_probs", "features")):
                self._outputs[name] = list(torch.cat([p[k] for p in passes]).split(sizes))
        return self._outputs[kind]

    def _batches(self):
        pending, count = [], 0
        for images in self.sets:
            for chunk in images.split(self.batch_size):
                pending.append(chunk)
                count += len(chunk)
                if count >= self.batch_size:
                    yield torch.cat(pending)
                    pending, count = [], 0
        if pending:
            yield torch.cat(pending)


class MetricInputs:
    """The inputs of one scoring pass. `samples` are float images in [-1, 1]; `reference` is a Reference (or
    None when no metric needs one); energies are 1-D tensors. With `shared` (and `member`, this set's index in
    it), classifier outputs come from a pass shared with other sets."""

    def __init__(self, samples: torch.Tensor | None = None, reference=None, device: torch.device | str = "cpu",
                 energy_real: torch.Tensor | None = None, energy_fake: torch.Tensor | None = None,
                 inception_weights=None, inception_names: tuple[str, ...] = (), cache_dir=None,
                 shared: SharedClassifierPass | None = None, member: int = 0,
                 class_logits: torch.Tensor | None = None, class_labels: torch.Tensor | None = None):
        self._samples, self._reference = samples, reference
        self._class_logits, self._class_labels = class_logits, class_labels
        self._shared, self._member = shared, member
        self.device = torch.device(device)
        self._energy_real, self._energy_fake = energy_real, energy_fake
        self.inception_weights, self.inception_names, self.cache_dir = inception_weights, inception_names, cache_dir
        self.used: set[str] = set()  # what was read: "classifier", "reference", "inception" (for provenance)
        self.kid: KidSetting | None = None  # how KID was computed, once it was (for provenance)

    @property
    def class_logits(self) -> torch.Tensor:
        """D's class logits of a labelled test set (a D that classifies: the ladder network on pi-mnist)."""
        if self._class_logits is None:
            raise ConfigError("this metric needs D's class logits of a labelled test set, and none were given")
        return self._class_logits

    @property
    def class_labels(self) -> torch.Tensor:
        if self._class_labels is None:
            raise ConfigError("this metric needs the labels of a labelled test set, and none were given")
        return self._class_labels

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
    def _classifier_outputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._shared is not None:
            return tuple(self._shared.outputs(kind, self.classifier)[self._member]
                         for kind in ("log_probs", "features"))
        return classifier_outputs(self.samples, self.classifier)

    @property
    def classifier_log_probs(self) -> torch.Tensor:
        return self._classifier_outputs[0]

    @property
    def classifier_features(self) -> torch.Tensor:
        return self._classifier_outputs[1]

    @functools.cached_property
    def reference_classifier_features(self) -> torch.Tensor:
        # kept on the Reference: every set scored against it (a pack, or a run's evaluations over training)
        # shares one pass over the reference images
        return self.reference.derived("classifier_features", lambda: classifier_features(
            self.reference.float_images(), self.classifier))

    @functools.cached_property
    def classifier_prdc(self) -> dict[str, float]:
        """Precision, recall, density and coverage on the classifier's features (k = DEFAULT_K)."""
        real = self.reference_classifier_features
        radii = (self.reference.derived(f"classifier_radii_k{DEFAULT_K}", lambda: knn_radii(real, DEFAULT_K))
                 if self._reference is not None else None)
        return prdc(self.classifier_features, real, DEFAULT_K, radii)

    @functools.cached_property
    def _inception_scores(self) -> dict[str, float]:
        names = self.inception_names
        reference = self.reference.inception() if any(name in BINARY_INCEPTION_METRICS for name in names) else None
        self.inception_weights = resolve_weights_path(self.inception_weights)
        self.used.add("inception")
        scores = inception_metrics(self.samples, names, reference, self.inception_weights, self.device,
                                   cache_dir=self.cache_dir)
        if {"kid", "kid_std"} & set(names):
            self.kid = kid_setting(len(self.samples), reference.n)
        return scores

    def inception(self, name: str) -> float:
        """One of the Inception metrics this pass computes (all of them in one torch-fidelity call)."""
        if name not in self.inception_names:
            self.inception_names = (*self.inception_names, name)
        return self._inception_scores[name]
