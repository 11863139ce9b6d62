"""ae-real: the control, EBGAN's auto-encoder D trained on real data alone, without a generator.

The issue's control is "an auto-encoder of the same shape, trained on real digits alone with no generator": L_D is
mean E(x) with EBGAN's energy ||Dec(Enc(x)) - x||_2 on the same D, so a probe can set what adversarial training
adds against what plain reconstruction of the data already gives. It is MAGAN's pre-training, for the whole budget,
in EBGAN's energy.

How G is handled: the harness trains G only on steps where `trains_generator(step)` is True, and skips G (its
forward, the generated batch of the D step, and the G backward) on the others. Here that is step 0 only: its one
G step runs the harness's first-step checks of `loss_g` (and is the G step tests/methods/test_contract.py expects
of every method), with L_G = 0 * sum E(G(z)), zero with a zero gradient, so no optimiser moves G. Every later step
trains D alone, spending no compute on G. L_D ignores the generated batch of step 0.
"""

from __future__ import annotations

import torch

from .base import Energies, Method
from .ebgan import l2_energy


def real_only_loss_d(energy_real: torch.Tensor) -> torch.Tensor:
    """mean E(x): the auto-encoder's reconstruction error of real data; generated samples play no part."""
    return energy_real.mean()


def no_effect_loss_g(energy_fake: torch.Tensor) -> torch.Tensor:
    """0 * sum E(G(z)): a finite scalar with a graph to G and a zero gradient (non-finite energies would make it NaN,
    which the first-step check then reports)."""
    return 0.0 * energy_fake.sum()


class AEReal(Method):
    """ae-real: EBGAN's auto-encoder D trained on real data alone (L_D = mean E(x)); G never moves."""

    name = "ae-real"
    replayable = True

    energy_model = "autoencoder"

    def trains_generator(self, step):
        return step == 0  # one G step with a zero loss, for the contract checks; then D alone

    def energy(self, images, out):
        return l2_energy(images, out.reconstruction)

    def loss_d(self, real: Energies, fake: Energies | None):
        return real_only_loss_d(real.energy)

    def loss_g(self, fake: Energies):
        return no_effect_loss_g(fake.energy)
