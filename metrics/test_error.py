"""test_error: the share of a labelled test set that D misclassifies, in % (the EBGAN paper's Table 2 score).

For semi-supervised runs (pi-mnist --labels N): D is the ladder network and classifies by its clean path
(ebm_bench.nets.ladder `classify`); the evaluation hands its class logits of the dataset's test digits and their
labels to this metric (needs "classes"). Lower is better.
"""

from __future__ import annotations

import torch

from ebm_bench.errors import ConfigError

from .base import Metric


def error_percent(class_logits: torch.Tensor, labels: torch.Tensor) -> float:
    """100 * the share of rows whose largest logit is not at their label (ties: the first largest)."""
    if class_logits.dim() != 2 or len(class_logits) != len(labels) or len(labels) == 0:
        raise ConfigError(f"test_error needs (N, classes) logits and N labels, got {tuple(class_logits.shape)} and "
                          f"{tuple(labels.shape)}")
    wrong = class_logits.argmax(dim=1).cpu() != labels.cpu().long()
    return 100.0 * wrong.double().mean().item()


CLASS_METRICS = (
    Metric("test_error", "lower", "classes", lambda inputs: error_percent(inputs.class_logits, inputs.class_labels),
           "% of the labelled test set D misclassifies (semi-supervised runs; Table 2's score)", over_training=True,
           headline=0, ranking=0, label="test err."),  # first where a run holds it: the semi-supervised task's score
)
