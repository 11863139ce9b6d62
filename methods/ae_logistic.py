"""ae-logistic: GAN's logistic loss on EBGAN's auto-encoder energy, one cell of the 2 x 2 of D against loss.

D is EBGAN's auto-encoder with EBGAN's energy E(x) = ||Dec(Enc(x)) - x||_2. Its logit for "real" is s(x) = m - E(x),
and the losses are GAN's: L_D = BCE(s(x), 1) + BCE(s(G(z)), 0), L_G = BCE(s(G(z)), 1) (non-saturating).

Why s = m - E with a fixed m, and m EBGAN's margin:
- Not s = -E: E >= 0, so D could never call a sample real with probability above 1/2. The logistic loss's optimum
  for the current G is s* = log P/Q; with s <= 0 it is clipped to min(0, log P/Q), flat wherever P > Q, which is
  the data's mass, where the critique's question is asked. With s = m - E the optimum in this family is
  E* = max(0, m + log Q/P): the critique's log Q/P up to the constant m, wherever P/Q < e^m.
- Not s = b - E with a learnt b (a classifier's full freedom): the harness optimises D's parameters only, a method
  holds state but no parameters; and at D's learning rate Adam moves a scalar by about lr a step, 3.4 over the
  3,436 steps of the 4-epoch budget, against MNIST energies of 10 to 30. A fixed m keeps the method pure.
- m is EBGAN's margin (the same option and defaults: MNIST 10), so the two auto-encoder cells draw the line between
  real and generated at the same energy: EBGAN stops pushing a generated sample up once E >= m, and here
  D(x) = 1/2 exactly at E = m. softplus(m - E) on generated samples is a smoothed max(0, m - E), EBGAN's hinge;
  the losses differ in the real term (softplus(E - m) against E) and in L_G (softplus(E - m) against E).
- m = 0 gives GAN's losses on the logit -E.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Energies
from .ebgan import EBGAN, hinge_active
from .gan import gan_loss_d, gan_loss_g


def offset_logit(energy: torch.Tensor, margin) -> torch.Tensor:
    """D's logit for "real": s = m - E."""
    return margin - energy


def ae_logistic_loss_d(energy_real: torch.Tensor, energy_fake: torch.Tensor, margin) -> torch.Tensor:
    """BCE(m - E(x), 1) + BCE(m - E(G(z)), 0): GAN's loss on the logit m - E (gan_loss_d takes -logit)."""
    return gan_loss_d(-offset_logit(energy_real, margin), -offset_logit(energy_fake, margin))


def ae_logistic_loss_g(energy_fake: torch.Tensor, margin) -> torch.Tensor:
    """GAN's non-saturating BCE(m - E(G(z)), 1) = mean softplus(E(G(z)) - m)."""
    return gan_loss_g(-offset_logit(energy_fake, margin))


@dataclass
class AELogistic(EBGAN):
    """ae-logistic: EBGAN's auto-encoder energy E, GAN's logistic losses on the logit margin - E."""

    name = "ae-logistic"

    def loss_d(self, real: Energies, fake: Energies):
        self.log("hinge_active", hinge_active(fake.energy, self.margin))  # E < m: generated samples D calls real
        return ae_logistic_loss_d(real.energy, fake.energy, self.margin)

    def loss_g(self, fake: Energies):
        return ae_logistic_loss_g(fake.energy, self.margin)
