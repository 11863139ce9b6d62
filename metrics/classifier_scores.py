"""Scores computed from the pinned MNIST classifier's outputs: I', MNIST-IS, class coverage, FID-MNIST.

All but `fid_mnist` are pure functions of a table of log-probabilities log p(y|x) (N x K, rows are samples),
as returned by `classifier_log_probs`. They work in log space throughout: p(y) is obtained with a logsumexp
over samples, and no epsilon is added anywhere, so a class that no sample can belong to contributes exactly 0
(the convention 0 log 0 = 0) instead of a made-up constant.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ebm_bench.errors import ConfigError

from .base import Metric

# A class counts as covered when at least this share of the samples is predicted as it: 1% of the samples,
# i.e. a tenth of the share a class gets when the 10 digits are drawn uniformly.
DEFAULT_MIN_SHARE = 0.01


def _check_log_probs(log_probs: torch.Tensor) -> torch.Tensor:
    log_probs = torch.as_tensor(log_probs)
    if log_probs.dim() != 2 or log_probs.shape[0] == 0 or log_probs.shape[1] < 2:
        raise ConfigError(f"expected an N x K table of log-probabilities (N >= 1, K >= 2), "
                          f"got shape {tuple(log_probs.shape)}")
    return log_probs.double()


def log_marginal(log_probs: torch.Tensor) -> torch.Tensor:
    """log p(y) = log mean_x p(y|x), via logsumexp over the samples (K,)."""
    log_probs = _check_log_probs(log_probs)
    return torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])


def _xlogy_difference(weights_log: torch.Tensor, minuend: torch.Tensor, subtrahend: torch.Tensor) -> torch.Tensor:
    """exp(weights_log) * (minuend - subtrahend), with terms of zero weight set to exactly 0 (0 log 0 = 0)."""
    weights = weights_log.exp()
    return torch.where(weights > 0, weights * (minuend - subtrahend), torch.zeros_like(weights))


def i_prime(log_probs: torch.Tensor) -> float:
    """I' = E_x KL(p(y) || p(y|x)) (EBGAN paper, section 4.1): higher means confident AND diverse samples.

    KL(p(y) || p(y|x)) = sum_y p(y) (log p(y) - log p(y|x)). Unlike the Inception score there is no exp: the
    value is in nats, 0 when every sample has the same class distribution.
    """
    log_probs = _check_log_probs(log_probs)
    log_p_y = log_marginal(log_probs).unsqueeze(0)  # 1 x K
    per_sample_kl = _xlogy_difference(log_p_y.expand_as(log_probs), log_p_y, log_probs).sum(dim=1)
    # a KL is >= 0; one class for every sample gives 0 up to rounding (-8.5e-17 in a committed record), which a
    # score's bounds must not refuse
    return max(0.0, per_sample_kl.mean().item())


def mnist_is(log_probs: torch.Tensor) -> float:
    """MNIST-IS = exp(E_x KL(p(y|x) || p(y))): the Inception score with the MNIST classifier (1..K).

    Real MNIST test digits score about 9.8-9.9 with a good classifier (METHODS.md).
    """
    log_probs = _check_log_probs(log_probs)
    log_p_y = log_marginal(log_probs).unsqueeze(0)
    per_sample_kl = _xlogy_difference(log_probs, log_probs, log_p_y).sum(dim=1)
    return math.exp(per_sample_kl.mean().item())


def predicted_class_histogram(log_probs: torch.Tensor) -> torch.Tensor:
    """Share of samples (K,, sums to 1) whose most likely class (argmax) is each class."""
    log_probs = _check_log_probs(log_probs)
    counts = torch.bincount(log_probs.argmax(dim=1), minlength=log_probs.shape[1])
    return counts.double() / log_probs.shape[0]


def classes_covered(log_probs: torch.Tensor, min_share: float = DEFAULT_MIN_SHARE) -> int:
    """How many classes are the predicted (argmax) class of at least `min_share` of the samples.

    The default, 1% of the samples, is a tenth of a class's share under a uniform 10-digit distribution: a
    generator that produces a digit only once in a few hundred samples has, for practical purposes, dropped that
    mode. A class needs at least one sample whatever `min_share` is (so min_share=0 counts classes seen at all).
    """
    if not 0.0 <= min_share <= 1.0:
        raise ConfigError(f"min_share is a share of the samples in [0, 1], got {min_share}")
    histogram = predicted_class_histogram(log_probs)
    return int(((histogram > 0) & (histogram >= min_share)).sum().item())


def class_kl(log_probs: torch.Tensor) -> float:
    """KL(predicted-class histogram || uniform) in nats: 0 for balanced classes, log K for a single class.

    Empty classes contribute 0 (0 log 0 = 0).
    """
    histogram = predicted_class_histogram(log_probs)
    num_classes = histogram.shape[0]
    present = histogram[histogram > 0]
    return (present * (present.log() + math.log(num_classes))).sum().item()


# ----------------------------------------------------------------------------------------------------------------
# Frechet distance


def _as_float64(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float64)


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition.

    Tiny negative eigenvalues from round-off are clipped to 0 (a covariance cannot have negative ones).
    """
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    d^2 = |mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr((s1 s2)^(1/2)). The last trace equals
    tr((s1^(1/2) s2 s1^(1/2))^(1/2)), whose argument is symmetric PSD, so two symmetric eigendecompositions
    compute it stably without scipy's sqrtm (and without its complex round-off).
    """
    mu1, mu2 = np.atleast_1d(_as_float64(mu1)), np.atleast_1d(_as_float64(mu2))
    sigma1, sigma2 = np.atleast_2d(_as_float64(sigma1)), np.atleast_2d(_as_float64(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
        raise ConfigError(f"Frechet distance needs means of equal length d and d x d covariances, got "
                          f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    sqrt_sigma1 = _symmetric_sqrt(sigma1)
    middle = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt_product = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    difference = mu1 - mu2
    distance = difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product
    return float(max(distance, 0.0))


def feature_statistics(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, N - 1, as in pytorch-fid and torch-fidelity) of N x d features."""
    features = _as_float64(features)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ConfigError(f"Frechet statistics need at least 2 feature vectors (N x d), got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid_mnist(images: torch.Tensor, reference_images: torch.Tensor, classifier=None,
              batch_size: int = 1000) -> float:
    """Frechet distance between the MNIST classifier's 128-d penultimate features of two image sets.

    Both are float images in [-1, 1] (1 x 32 x 32 or 1 x 28 x 28). Cheap enough on a CPU to use the whole MNIST
    test set as reference; like Inception FID it is biased upwards for small N, so compare values at equal N.
    """
    from .classifier import classifier_features, load_classifier

    classifier = classifier if classifier is not None else load_classifier()
    stats = feature_statistics(classifier_features(images, classifier, batch_size))
    reference_stats = feature_statistics(classifier_features(reference_images, classifier, batch_size))
    return frechet_distance(*stats, *reference_stats)


# ----------------------------------------------------------------------------------------------------------------
# As registered metrics (see metrics/base.py)


def _fid_mnist(inputs) -> float:
    return frechet_distance(*feature_statistics(inputs.classifier_features),
                            *feature_statistics(inputs.reference_classifier_features))


CLASSIFIER_METRICS = (
    Metric("i_prime", "higher", "classifier", lambda inputs: i_prime(inputs.classifier_log_probs),
           "EBGAN's I' = E_x KL(p(y) || p(y|x)) with the pinned MNIST classifier (nats)", over_training=True,
           headline=2, ranking=3, label="I'"),
    Metric("mnist_is", "higher", "classifier", lambda inputs: mnist_is(inputs.classifier_log_probs),
           "exp E_x KL(p(y|x) || p(y)) with the pinned MNIST classifier (1..10)", headline=7, ranking=4,
           label="MNIST-IS"),
    Metric("classes_covered", "higher", "classifier", lambda inputs: classes_covered(inputs.classifier_log_probs),
           "digits predicted for >= 1% of the samples (0..10)", over_training=True, headline=3, ranking=5,
           label="classes"),
    Metric("class_kl", "lower", "classifier", lambda inputs: class_kl(inputs.classifier_log_probs),
           "KL(predicted-digit histogram || uniform) in nats (0..log 10)"),
    Metric("fid_mnist", "lower", "classifier", _fid_mnist,
           "Frechet distance of the MNIST classifier's 128-d features to the reference", over_training=True,
           headline=1, ranking=1, label="FID-MNIST"),
)
