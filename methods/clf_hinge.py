"""clf-hinge: EBGAN's margin hinge on a classifier's energy, one cell of the 2 x 2 of D against loss.

D is GAN's classifier with logit s(x). Its energy is E(x) = softplus(-s(x)) = -log sigmoid(s(x)), the classifier's
negative log-probability that x is real; the losses are EBGAN's: L_D = mean E(x) + mean max(0, m - E(G(z))),
L_G = mean E(G(z)).

Why this map from logit to energy: EBGAN's hinge needs an energy that is non-negative (real samples are pushed down
towards a floor, generated ones up to the margin) and that falls as D's belief in "real" rises. -log sigmoid(s) is
both (it is monotone in s and > 0), it is the classifier's own probability in log units rather than an arbitrary
squashing, and with it the cell differs from GAN in one place only: mean softplus(-s(x)) is GAN's real term of L_D
and mean softplus(-s(G(z))) is GAN's non-saturating L_G, so the loss changes only in how D treats generated samples
(max(0, m - softplus(-s)) against GAN's softplus(s)). -s is not non-negative; exp(-s) = (1 - D)/D is, but grows
exponentially as D(x) -> 0, which would put the margin and G's loss on an exponential scale.

m is EBGAN's margin (the same option and defaults: MNIST 10). In nats it asks D to give a generated sample a
probability of being real below e^-m before the hinge lets go of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .ebgan import EBGAN


def classifier_energy(logit: torch.Tensor) -> torch.Tensor:
    """softplus(-s) = -log sigmoid(s): a classifier's negative log-probability of "real", > 0 and decreasing in s."""
    return F.softplus(-logit)


@dataclass
class ClfHinge(EBGAN):
    """clf-hinge: GAN's classifier D, energy -log sigmoid(logit), EBGAN's per-sample margin hinge."""

    name = "clf-hinge"

    energy_model = "classifier"

    def energy(self, images, out):
        return classifier_energy(out.logit)
