"""Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020) on a feature set.

All four read the same k-nearest-neighbour radii: a sample's radius is the distance to its k-th nearest neighbour
within its own set (itself excluded). Precision is the share of generated samples inside some real sample's ball,
recall the share of real samples inside some generated sample's ball; both come from torch-fidelity's `prc`
code, which is the reference implementation. Density counts, per generated sample, the real balls it lies in
(divided by k, so a generated set distributed like the real one scores about 1, and more than 1 where samples
crowd around dense real regions); coverage is the share of real balls that hold at least one generated sample.
Balls are closed (distance <= radius), as in torch-fidelity's precision and recall, so the four agree on what
"inside" means.

FID mixes fidelity and diversity; these split them: a generator that draws one perfect digit has high precision
and density, low recall and coverage.
"""

from __future__ import annotations

import torch

from ebm_bench.errors import ConfigError

from .base import Metric

DEFAULT_K = 5  # Naeem et al.'s choice for density/coverage; used for precision/recall too, so one radius serves all
PRDC_METRICS = ("precision", "recall", "density", "coverage")
_CHUNK = 4096  # rows of a distance matrix computed at once: 4096 x 10000 float32 is 160 MB


def _check(features: torch.Tensor, name: str, k: int) -> torch.Tensor:
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        raise ConfigError(f"{name} features must be an N x d tensor, got "
                          f"{tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__}")
    if len(features) <= k:
        raise ConfigError(f"precision/recall/density/coverage with k={k} need more than {k} {name} samples, "
                          f"got {len(features)}; score more samples or lower k")
    return features.float()


def knn_radii(features: torch.Tensor, k: int = DEFAULT_K) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row (N,)."""
    features = _check(features, "reference", k)
    # kthvalue(k + 1): the smallest distance of a row is 0, to itself
    return torch.cat([torch.cdist(chunk, features).kthvalue(k + 1, dim=1).values for chunk in features.split(_CHUNK)])


def density_coverage(generated: torch.Tensor, real: torch.Tensor, k: int = DEFAULT_K,
                     real_radii: torch.Tensor | None = None) -> tuple[float, float]:
    """(density, coverage) of generated features against real ones (Naeem et al. 2020, eqs. 3 and 4).

    density = 1 / (k M) sum_j sum_i 1[Y_j in B(X_i, r_i)];  coverage = 1 / N sum_i 1[exists j: Y_j in B(X_i, r_i)],
    X the N real and Y the M generated features, r_i the k-NN radius of X_i among the real ones. `real_radii`
    (from `knn_radii`) saves recomputing them when one reference serves many generated sets.
    """
    generated, real = _check(generated, "generated", 0), _check(real, "reference", k)
    radii = knn_radii(real, k) if real_radii is None else real_radii.float()
    inside_count = torch.zeros((), dtype=torch.float64)
    covered = torch.zeros(len(real), dtype=torch.bool)
    for chunk in generated.split(_CHUNK):
        inside = torch.cdist(chunk, real) <= radii.unsqueeze(0)  # generated x real
        inside_count += inside.sum(dtype=torch.float64)
        covered |= inside.any(dim=0)
    return (inside_count / (k * len(generated))).item(), covered.double().mean().item()


def precision_recall(generated: torch.Tensor, real: torch.Tensor, k: int = DEFAULT_K) -> tuple[float, float]:
    """(precision, recall) of generated features against real ones, by torch-fidelity's `prc` code."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    generated, real = _check(generated, "generated", k), _check(real, "reference", k)
    # save_cpu_ram: the row-chunked path; the full one holds three N x N matrices at once
    out = prc_features_to_metric(generated, real, prc_neighborhood=k, prc_batch_size=_CHUNK, save_cpu_ram=True,
                                 verbose=False)
    return float(out["precision"]), float(out["recall"])


def prdc(generated: torch.Tensor, real: torch.Tensor, k: int = DEFAULT_K,
         real_radii: torch.Tensor | None = None) -> dict[str, float]:
    """All four: {"precision", "recall", "density", "coverage"}."""
    precision, recall = precision_recall(generated, real, k)
    density, coverage = density_coverage(generated, real, k, real_radii)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


PRDC_METRIC_OBJECTS = (
    Metric("precision", "higher", "classifier", lambda inputs: inputs.classifier_prdc["precision"],
           f"share of samples inside the reference's k-NN balls (k={DEFAULT_K}), MNIST-classifier features",
           over_training=True, headline=4, provenance=("prdc_k",), label="prec."),
    Metric("recall", "higher", "classifier", lambda inputs: inputs.classifier_prdc["recall"],
           f"share of reference images inside the samples' k-NN balls (k={DEFAULT_K}), MNIST-classifier features",
           over_training=True, headline=5, provenance=("prdc_k",)),
    Metric("density", "higher", "classifier", lambda inputs: inputs.classifier_prdc["density"],
           f"reference k-NN balls per sample, over k (k={DEFAULT_K}; about 1 when alike), MNIST-classifier features",
           provenance=("prdc_k",)),
    Metric("coverage", "higher", "classifier", lambda inputs: inputs.classifier_prdc["coverage"],
           f"share of reference k-NN balls holding a sample (k={DEFAULT_K}), MNIST-classifier features",
           provenance=("prdc_k",)),
)
