"""What every architecture shares: D's output type and the two kinds of energy model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ENERGY_MODELS = ("autoencoder", "classifier")


@dataclass
class DOutput:
    """What D computes for a batch. Auto-encoders fill `reconstruction` and `code`; classifiers fill `logit`."""

    reconstruction: torch.Tensor | None = None  # same shape as the input
    code: torch.Tensor | None = None  # encoder output, one row per sample
    logit: torch.Tensor | None = None  # shape (N,)


def dropout_mask(shape: torch.Size | tuple[int, ...], p: float, generator: torch.Generator | None,
                 device: torch.device) -> torch.Tensor:
    """Keep each unit with probability 1 - p, scaled by 1 / (1 - p) (inverted dropout)."""
    return (torch.rand(shape, generator=generator, device=device) >= p).float().div_(1 - p)


class _MaskFeed:
    """Packed training hands every Dropout its masks (drawn per run, outside vmap); solo training leaves it off."""

    masks: list[torch.Tensor] | None = None
    shapes: list[tuple[nn.Module, torch.Size]] | None = None  # set while recording the masks a forward needs


MASK_FEED = _MaskFeed()


class Dropout(nn.Module):
    """Dropout whose masks come from the run's own generator (`generator`, set by the trainer), not the global one.

    So a run draws the same masks alone and packed with others (where the masks of K runs are drawn from K
    generators and fed in), and a rate of 0 is the same module: dropout on and off share one architecture.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None  # None: the global generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if MASK_FEED.shapes is not None:
            MASK_FEED.shapes.append((self, x.shape))
            return x
        if MASK_FEED.masks is not None:
            return x * MASK_FEED.masks.pop(0)
        if self.p == 0:
            return x
        return x * dropout_mask(x.shape, self.p, self.generator, x.device)

    def extra_repr(self) -> str:
        return f"p={self.p}"
