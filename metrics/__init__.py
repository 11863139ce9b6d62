"""The metric registry, and `score_images`: any registered metrics of generated images, with provenance.

Every number should be reported with its provenance (N, library version, weights hashes): FID and KID depend on
N, classifier scores on the classifier. Add a metric with `@ebm_bench.register_metric(name, direction, needs)` on
a function of `MetricInputs`; evaluation, leaderboards and `compare` pick it up with no other edit. A metric returns
one number: one that raises, or returns a string or several numbers, fails in one line naming it, not in a
traceback. A name already registered (a built-in, another plug-in) is refused unless `replace=True`.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import torch

from ebm_bench.device import resolve_device
from ebm_bench.errors import ConfigError, EbmBenchError
from ebm_bench.registry import Registry, describe, source

from .base import DIRECTIONS, NEEDS, Metric
from .classifier import (
    CLASSIFIER_SHA256,
    CLASSIFIER_TEST_ACCURACY,
    MnistClassifier,
    WeightsMismatchError,
    classifier_features,
    classifier_log_probs,
    classifier_outputs,
    load_classifier,
    train_classifier,
)
from .classifier_scores import (
    CLASSIFIER_METRICS as _CLASSIFIER,
    DEFAULT_MIN_SHARE,
    class_kl,
    classes_covered,
    feature_statistics,
    fid_mnist,
    frechet_distance,
    i_prime,
    mnist_is,
)
from .energy import ENERGY_METRICS as _ENERGY, auroc
from .inception import (
    INCEPTION_METRIC_OBJECTS as _INCEPTION,
    TORCH_FIDELITY_VERSION,
    InceptionReference,
    KidSetting,
    inception_metrics,
    kid_setting,
    reference_cache_key,
    resolve_weights_path,
    to_uint8_rgb,
    weights_sha256,
)
from .inputs import MetricInputs, SharedClassifierPass
from .prdc import DEFAULT_K as PRDC_K, PRDC_METRIC_OBJECTS as _PRDC, density_coverage, knn_radii, precision_recall, prdc
from .reference import MNIST_REFERENCES, Reference
from .test_error import CLASS_METRICS as _CLASSES, error_percent


def _check(name: str, metric: Any) -> Metric:
    if not isinstance(metric, Metric):
        raise ConfigError(f"metric {name!r} must be registered as a Metric (use @register_metric on its function)")
    if metric.direction not in DIRECTIONS:
        raise ConfigError(f"metric {name!r}: direction must be 'higher', 'lower' or None, not {metric.direction!r}")
    if metric.needs not in NEEDS:
        raise ConfigError(f"metric {name!r}: needs must be one of {', '.join(NEEDS)}, not {metric.needs!r}")
    for field in ("headline", "ranking"):
        place = getattr(metric, field)
        if place is not None and (not isinstance(place, int) or isinstance(place, bool)):
            raise ConfigError(f"metric {name!r}: {field} is a whole number (its place, lowest first) or None, "
                              f"not {place!r}")
    if not callable(metric.compute):
        raise ConfigError(f"metric {name!r}: its compute must be a function f(inputs) -> float, not "
                          f"{type(metric.compute).__name__}")
    return metric


METRICS: Registry[Metric] = Registry("metric", _check, lambda name, loaded: loaded if isinstance(loaded, Metric)
                                     else None, {m.name: m for m in (*_CLASSIFIER, *_PRDC, *_INCEPTION, *_ENERGY,
                                                                     *_CLASSES)},
                                     origin=lambda metric: metric.compute)
CLASSIFIER_METRICS = tuple(m.name for m in (*_CLASSIFIER, *_PRDC))
INCEPTION_METRIC_NAMES = tuple(m.name for m in _INCEPTION)
ENERGY_METRIC_NAMES = tuple(m.name for m in _ENERGY)
CLASS_METRIC_NAMES = tuple(m.name for m in _CLASSES)


def register_metric(name: str, direction: str | None, needs: str, description: str = "", replace: bool = False,
                    **facts):
    """Function decorator: `@register_metric("sharpness", "higher", "samples")` on `f(inputs) -> float`. A name
    already registered elsewhere (a built-in, another plug-in) needs `replace=True`. `facts` are the descriptor's
    other fields (`over_training`, `headline`, `ranking`, `provenance`, `label`; see metrics.base.Metric)."""

    def decorate(compute):
        unknown = sorted(set(facts) - _FACTS)
        if unknown:
            raise ConfigError(f"metric {name!r}: unknown field(s) {', '.join(unknown)}; a metric's fields are "
                              f"{', '.join(sorted(_FACTS))}")
        METRICS.add(name, Metric(name, direction, needs, compute,
                                 description or (compute.__doc__ or "").strip().split("\n")[0], **facts),
                    replace=replace)
        return compute

    return decorate


_FACTS = {"over_training", "headline", "ranking", "provenance", "label"}


def over_training_metrics() -> list[str]:
    """The metrics scored every --eval-every steps into evaluation.csv: headline ones in their order, then by name."""
    chosen = [metric for metric in METRICS.all().values() if metric.over_training]
    return [m.name for m in sorted(chosen, key=lambda m: (m.headline is None, m.headline or 0, m.name))]


def headline_order() -> list[str]:
    """The metrics a reader sees first (tables' headline columns, figures' panels), in their declared order."""
    shown = [metric for metric in METRICS.all().values() if metric.headline is not None]
    return [metric.name for metric in sorted(shown, key=lambda metric: metric.headline)]


def ranking_order() -> list[str]:
    """The default ranking's preference: a table ranks by the first of these it holds."""
    ranked = [metric for metric in METRICS.all().values() if metric.ranking is not None]
    return [metric.name for metric in sorted(ranked, key=lambda metric: metric.ranking)]


__all__ = [
    "METRICS", "Metric", "MetricInputs", "NEEDS", "CLASSIFIER_METRICS", "INCEPTION_METRIC_NAMES",
    "ENERGY_METRIC_NAMES", "MNIST_REFERENCES", "Reference", "parse_metric_names", "register_metric",
    "over_training_metrics", "headline_order", "ranking_order",
    "score", "score_images", "provenance", "resolve_device",
    "PRDC_K", "prdc", "precision_recall", "density_coverage", "knn_radii",
    "i_prime", "mnist_is", "classes_covered", "class_kl", "frechet_distance", "feature_statistics", "fid_mnist",
    "DEFAULT_MIN_SHARE", "inception_metrics", "InceptionReference", "reference_cache_key", "resolve_weights_path",
    "to_uint8_rgb", "weights_sha256", "KidSetting", "kid_setting", "compute_metric",
    "auroc", "CLASS_METRIC_NAMES", "error_percent",
    "MnistClassifier", "load_classifier", "train_classifier", "classifier_log_probs", "classifier_features",
    "classifier_outputs",
    "CLASSIFIER_SHA256", "CLASSIFIER_TEST_ACCURACY", "WeightsMismatchError", "TORCH_FIDELITY_VERSION",
]


def parse_metric_names(metrics: str | list[str] | tuple[str, ...]) -> list[str]:
    """"a,b" or ["a", "b"] -> validated, de-duplicated names in the order given."""
    names = [name.strip() for name in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = list(dict.fromkeys(name for name in names if name))
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        problem = f"unknown metric(s) {', '.join(unknown)}" if unknown else "no metrics requested"
        raise ConfigError(f"{problem}; known metrics: {', '.join(METRICS.all())}")
    return names


def score(metrics, images: torch.Tensor | list[torch.Tensor] | None = None,
          reference: str | torch.Tensor | Reference | None = "mnist-test", *, n: int | None = None,
          device: str | torch.device = "cpu", inception_weights=None, data_root=None, cache_dir=None,
          energy_real: torch.Tensor | None = None, energy_fake: torch.Tensor | None = None,
          class_logits: torch.Tensor | None = None, class_labels: torch.Tensor | None = None
          ) -> list[tuple[dict[str, float], dict]]:
    """The one way ebm-bench scores: (scores, provenance) of the registered `metrics` for each set of generated
    images, the provenance being what a run record stores beside the numbers (N, weights hashes, versions).

    `images`: float images in [-1, 1], N x C x H x W, or a list of such sets of one shape and size (the runs of a
    pack: one classifier pass over all of them, and one reference whose features are computed once), or None when
    the metrics read only D's energies (`energy_real`, `energy_fake`: held-out real and generated) or D's class
    logits of a labelled test set (`class_logits`, `class_labels`). `n`: score the first n images of each set.
    `reference` is "mnist-test", "mnist-train", a tensor of reference images, or a Reference built earlier.
    One entry per image set (one when `images` is a single set or None)."""
    names = parse_metric_names(metrics)
    sets = images if isinstance(images, list) else [images]
    sets = [None if s is None else _select(_check_generated(s), n) for s in sets]
    shapes = {tuple(s.shape) for s in sets if s is not None}
    if len(shapes) > 1:
        raise ConfigError(f"scoring several sets needs sets of one shape and size, got {sorted(shapes)}; score sets "
                          "of other sizes in separate calls")
    build = _reference_builder(reference, sets[0], data_root)
    shared_reference = functools.cache(build) if build is not None else None
    shared = SharedClassifierPass(sets) if len(sets) > 1 else None
    device = resolve_device(device)
    return [_score(MetricInputs(samples, shared_reference, device, energy_real, energy_fake, inception_weights,
                                _inception_names(names), cache_dir, shared=shared, member=k,
                                class_logits=class_logits, class_labels=class_labels), names)
            for k, samples in enumerate(sets)]


def score_images(images: torch.Tensor, metrics, reference: str | torch.Tensor = "mnist-test", n: int | None = None,
                 device: str | torch.device = "cpu", inception_weights=None, data_root=None,
                 cache_dir=None) -> dict[str, float]:
    """The scores alone of one set of float images in [-1, 1], N x C x H x W: `score` for a person at a prompt
    (`score` also returns the provenance a record stores beside them)."""
    return score(metrics, images, reference, n=n, device=device, inception_weights=inception_weights,
                 data_root=data_root, cache_dir=cache_dir)[0][0]


def _reference_builder(reference, images: torch.Tensor | None, data_root):
    if images is None or reference is None:
        return None
    if isinstance(reference, Reference):
        return lambda: reference
    return lambda: Reference.build(reference, images, data_root)


def _inception_names(names: list[str]) -> tuple[str, ...]:
    wanted = METRICS.all()
    return tuple(name for name in names if wanted[name].needs == "inception")


def _score(inputs: MetricInputs, names: list[str]) -> tuple[dict[str, float], dict]:
    wanted = METRICS.all()
    scores = {name: compute_metric(wanted[name], inputs) for name in names}
    images = inputs._samples
    ref = inputs.reference if "reference" in inputs.used else None
    record = provenance(len(images) if images is not None else 0,
                        inception_weights=inputs.inception_weights if "inception" in inputs.used else None,
                        classifier="classifier" in inputs.used,
                        reference=ref.name if ref else None, n_reference=ref.n if ref else None,
                        image_shape=tuple(images.shape[1:]) if images is not None else None)
    sources = {source for name in names for source in wanted[name].provenance}
    if "prdc_k" in sources:
        record["prdc_k"] = PRDC_K
    if "kid" in sources and inputs.kid is not None:
        record |= inputs.kid.provenance()
    return scores, record


def compute_metric(metric: Metric, inputs: MetricInputs) -> float:
    """One metric's score as a float; a metric (a plug-in's) that raises or returns something else than one number
    fails in one line naming it."""
    try:
        value = metric.compute(inputs)
    except EbmBenchError:
        raise  # the inputs' own one-line errors: a missing reference, images of the wrong kind
    except Exception as err:  # noqa: BLE001 (a plug-in's bug: name the metric, not a traceback)
        raise ConfigError(f"metric {metric.name!r} ({describe(source(metric.compute))}) raised "
                          f"{type(err).__name__}: {err}; fix its function") from None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, numbers.Real):
        return float(value)
    shown = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else \
        f"{type(value).__name__} {str(value)[:40]!r}"
    raise ConfigError(f"metric {metric.name!r} ({describe(source(metric.compute))}) returned {shown}; a metric "
                      "returns one number (a float)")


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
