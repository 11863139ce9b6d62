"""EBGAN (Zhao, Mathieu, LeCun 2016, eq. 1-2): auto-encoder energy and a per-sample margin hinge."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebm_bench.errors import ConfigError

from .base import Energies, Method, require


def l2_energy(images: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """||D(x) - x||_2 per sample: the L2 norm (not squared, not averaged), the unit of the paper's margins."""
    return torch.linalg.vector_norm((reconstruction - images).flatten(1), dim=1)


def ebgan_loss_d(energy_real: torch.Tensor, energy_fake: torch.Tensor, margin) -> torch.Tensor:
    """mean E(x) + mean max(0, m - E(G(z))): the hinge acts on each sample before averaging."""
    return energy_real.mean() + (margin - energy_fake).clamp(min=0).mean()


def ebgan_loss_g(energy_fake: torch.Tensor) -> torch.Tensor:
    return energy_fake.mean()


def hinge_active(energy_fake: torch.Tensor, margin) -> torch.Tensor:
    """Share of generated samples inside the margin (E < m), i.e. those that still push D."""
    return (energy_fake < margin).float().mean()


@dataclass
class EBGAN(Method):
    """EBGAN: auto-encoder D, energy ||D(x)-x||_2, per-sample margin hinge."""

    name = "ebgan"
    replayable = True

    margin: float | None = None  # None: the dataset's (its option_defaults: MNIST 10, CelebA 20, LSUN 80)

    energy_model = "autoencoder"

    def validate(self):
        require(self.margin is None or self.margin > 0, self.name, f"margin must be positive, got {self.margin}")

    def setup(self, context):
        if self.margin is None:  # the dataset declares no margin of its own (ebm_bench.resolve fills it in)
            raise ConfigError(f"{self.name} has no default margin for dataset {context.dataset!r}; pass one "
                              "with --margin M (the paper used 10 for MNIST, 20 for CelebA, 80 for LSUN)")

    def energy(self, images, out):
        return l2_energy(images, out.reconstruction)

    def loss_d(self, real: Energies, fake: Energies | None):
        if fake is None:  # G switched off (generator_off_after): no contrastive term, D only pulls the data down
            return real.energy.mean()
        self.log("hinge_active", hinge_active(fake.energy, self.margin))
        return ebgan_loss_d(real.energy, fake.energy, self.margin)

    def loss_g(self, fake: Energies):
        return ebgan_loss_g(fake.energy)

    def state_values(self):
        return {"margin": self.margin}
