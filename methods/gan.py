"""GAN (Goodfellow et al. 2014) in the energy view: D is a classifier with logit s(x), energy E(x) = -s(x)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Energies, Method


def gan_loss_d(energy_real: torch.Tensor, energy_fake: torch.Tensor) -> torch.Tensor:
    """BCE(s(x), 1) + BCE(s(G(z)), 0) with logits s = -E."""
    return (F.binary_cross_entropy_with_logits(-energy_real, torch.ones_like(energy_real))
            + F.binary_cross_entropy_with_logits(-energy_fake, torch.zeros_like(energy_fake)))


def gan_loss_g(energy_fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss BCE(s(G(z)), 1)."""
    return F.binary_cross_entropy_with_logits(-energy_fake, torch.ones_like(energy_fake))


class GAN(Method):
    """GAN: classifier D, energy = -logit, non-saturating G loss (DCGAN practice)."""

    name = "gan"
    replayable = True

    energy_model = "classifier"

    def energy(self, images, out):
        return -out.logit

    def loss_d(self, real: Energies, fake: Energies):
        return gan_loss_d(real.energy, fake.energy)

    def loss_g(self, fake: Energies):
        return gan_loss_g(fake.energy)
