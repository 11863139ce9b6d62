"""What every architecture shares: D's output type and the two kinds of energy model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

ENERGY_MODELS = ("autoencoder", "classifier")


@dataclass
class DOutput:
    """What D computes for a batch. Auto-encoders fill `reconstruction` and `code`; classifiers fill `logit`."""

    reconstruction: torch.Tensor | None = None  # same shape as the input
    code: torch.Tensor | None = None  # encoder output, one row per sample
    logit: torch.Tensor | None = None  # shape (N,)
