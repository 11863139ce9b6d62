"""BEGAN (Berthelot, Schumm, Metz 2017): auto-encoder L1 energy balanced by a proportional controller k_t.

In the shared loop, L(x) comes from the D step and L(G(z_G)) from the G step that follows it, after D's update;
k_t and M_global use exactly these two (the paper's z_D and z_G are separate draws).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Energies, Method, require


def l1_energy(images: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """L(v) = mean over pixels of |v - D(v)| per sample (eta = 1)."""
    return (reconstruction - images).abs().flatten(1).mean(dim=1)


def began_loss_d(energy_real: torch.Tensor, energy_fake: torch.Tensor, k_t) -> torch.Tensor:
    return energy_real.mean() - k_t * energy_fake.mean()


def began_loss_g(energy_fake: torch.Tensor) -> torch.Tensor:
    return energy_fake.mean()


def began_k_update(k_t, loss_real, loss_fake, gamma: float, lambda_k: float):
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1)."""
    return (k_t + lambda_k * (gamma * loss_real - loss_fake)).clamp(0.0, 1.0)


def began_convergence(loss_real, loss_fake, gamma: float):
    """M_global = L(x) + |gamma L(x) - L(G(z_G))|."""
    return loss_real + (gamma * loss_real - loss_fake).abs()


@dataclass
class BEGAN(Method):
    """BEGAN: auto-encoder D, energy = mean |D(v)-v|, k_t balances real and fake terms (gamma 0.5)."""

    name = "began"

    gamma: float = 0.5
    lambda_k: float = 0.001

    energy_model = "autoencoder"
    state_names = ("k_t",)
    replayable = True

    def validate(self):
        require(0 < self.gamma <= 1, self.name, f"gamma (the diversity ratio) must be in (0, 1], got {self.gamma}")
        require(self.lambda_k >= 0, self.name, f"lambda_k must be >= 0, got {self.lambda_k}")

    def setup(self, context):
        self.k_t = torch.zeros((), device=context.device)

    def energy(self, images, out):
        return l1_energy(images, out.reconstruction)

    def loss_d(self, real: Energies, fake: Energies):
        return began_loss_d(real.energy, fake.energy, self.k_t)

    def loss_g(self, fake: Energies):
        return began_loss_g(fake.energy)

    def end_step(self, step, real, fake_d, fake_g):
        loss_real, loss_fake = real.energy.mean(), fake_g.energy.mean()
        self.log("m_global", began_convergence(loss_real, loss_fake, self.gamma))
        self.k_t = began_k_update(self.k_t, loss_real, loss_fake, self.gamma, self.lambda_k)

    def state_values(self):
        return {"k_t": self.k_t}
