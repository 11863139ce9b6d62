"""test_error: % of a labelled test set misclassified, against a hand count."""

from __future__ import annotations

import pytest
import torch

from ebm_bench.errors import ConfigError
from ebm_bench.metrics import METRICS, error_percent, score


def test_the_error_is_the_share_of_rows_whose_largest_logit_is_not_their_label():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])  # predicts 0, 1, 0, 1
    labels = torch.tensor([0, 0, 1, 1])  # rows 1 and 2 wrong: 2 of 4
    assert error_percent(logits, labels) == 50.0
    ((scores, _),) = score(["test_error"], class_logits=logits, class_labels=labels)  # no images: one entry
    assert scores == {"test_error": 50.0}
    metric = METRICS["test_error"]
    assert (metric.direction, metric.needs, metric.over_training) == ("lower", "classes", True)


def test_mismatched_logits_and_labels_are_one_line():
    with pytest.raises(ConfigError, match="test_error needs"):
        error_percent(torch.zeros(3, 10), torch.zeros(4))
