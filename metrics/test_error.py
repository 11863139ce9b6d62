"""test_error: the share of a labelled test set that D misclassifies, in % (the EBGAN paper's Table 2 score).

For semi-supervised runs (pi-mnist --labels N): D is the ladder network and classifies by its clean path
(ebm_bench.nets.ladder `classify`); the evaluation hands its class logits of the dataset's test digits and their
labels to this metric (needs "classes"). Lower is better.
"""

from __future__ import annotations

import torch

from ebm_bench.errors import ConfigError

from .base import Metric
from .inputs import MetricInputs


def error_percent(class_logits: torch.Tensor, labels: torch.Tensor) -> float:
    """100 * the share of rows whose largest logit is not at their label (ties: the first largest)."""
    if class_logits.dim() != 2 or len(class_logits) != len(labels) or len(labels) == 0:
        raise ConfigError(f"test_error needs (N, classes) logits and N labels, got {tuple(class_logits.shape)} and "
                          f"{tuple(labels.shape)}")
    wrong = class_logits.argmax(dim=1).cpu() != labels.cpu().long()
    return 100.0 * wrong.double().mean().item()


class ClassInputs(MetricInputs):
    """MetricInputs with D's class logits of a labelled test set and the true labels."""

    def __init__(self, class_logits: torch.Tensor | None, class_labels: torch.Tensor | None,
                 device: torch.device | str = "cpu"):
        super().__init__(device=device)
        self._class_logits, self._class_labels = class_logits, class_labels

    @property
    def class_logits(self) -> torch.Tensor:
        if self._class_logits is None:
            raise ConfigError("this metric needs D's class logits of a labelled test set, and none were given")
        return self._class_logits

    @property
    def class_labels(self) -> torch.Tensor:
        if self._class_labels is None:
            raise ConfigError("this metric needs the labels of a labelled test set, and none were given")
        return self._class_labels


CLASS_METRICS = (
    Metric("test_error", "lower", "classes", lambda inputs: error_percent(inputs.class_logits, inputs.class_labels),
           "% of the labelled test set D misclassifies (semi-supervised runs; Table 2's score)", over_training=True,
           headline=0, ranking=0, label="test err."),  # first where a run holds it: the semi-supervised task's score
)
