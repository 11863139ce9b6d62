"""ebgan-ln: the bottom-layer-cost ladder network as EBGAN's D (EBGAN paper section 4.2, appendix D).

D's energy is the ladder's bottom reconstruction cost, E(v) = lambda * sum_pixels (v - v_hat)^2 in [0, 1] pixel
units (methods.ladder), of real and generated images alike. With the labelled images' cross-entropy on the
corrupted path:
  L_D = CE(labelled) + mean E(x) + mean max(0, m - E(G(z)))     (the hinge per sample, as EBGAN's)
  L_G = mean E(G(z))
Appendix D's schedule is the loop's, given as options: the margin from 16 to 0 over the first 60,000 steps
(`margin_schedule=linear:16:0:60000`), G switched off from step 60,000 (`generator_off_after=60000`; D-only steps
get no generated batch and L_D loses its hinge), and the lr decayed to 0 from step 120,000 (`lr_decay_from=120000`).
The margin defaults to the schedule's start, 16. Adam lr 5e-4 for D and 2.5e-4 for G, beta1 0.5 (appendix D).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Energies, Method, require
from .ebgan import ebgan_loss_d, ebgan_loss_g, hinge_active
from .ladder import RECONSTRUCTION_WEIGHT, ladder_energy, supervised_cost

START_MARGIN = 16.0  # appendix D: the margin starts at 16 (and decays to 0 with margin_schedule)


@dataclass
class EBGANLN(Method):
    """ebgan-ln: the ladder network as EBGAN's D; energy = its bottom reconstruction cost, plus the labelled CE."""

    name = "ebgan-ln"
    energy_model = "autoencoder"
    optim_defaults = {"lr_d": 5e-4, "lr_g": 2.5e-4, "beta1": 0.5}

    margin: float = START_MARGIN
    reconstruction_weight: float = RECONSTRUCTION_WEIGHT

    def validate(self):
        require(self.margin >= 0, self.name, f"margin must be >= 0, got {self.margin}")
        require(self.reconstruction_weight > 0, self.name,
                f"reconstruction_weight must be positive (it is the energy), got {self.reconstruction_weight}")

    def energy(self, images, out):
        return ladder_energy(images, out.reconstruction, self.reconstruction_weight)

    def loss_d(self, real: Energies, fake: Energies | None):
        cross_entropy = supervised_cost(self.name, real)
        self.log("cross_entropy", cross_entropy.detach())
        if fake is None:  # G switched off (generator_off_after): the ladder network alone
            return cross_entropy + real.energy.mean()
        self.log("hinge_active", hinge_active(fake.energy, self.margin))
        return cross_entropy + ebgan_loss_d(real.energy, fake.energy, self.margin)

    def loss_g(self, fake: Energies):
        return ebgan_loss_g(fake.energy)

    def state_values(self):
        return {"margin": self.margin}
