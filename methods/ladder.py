"""ladder: the bottom-layer-cost ladder network trained alone (Rasmus et al. 2015), the baseline of the EBGAN paper's
Table 2 (appendix D): L = cross-entropy of the labelled images + the bottom reconstruction cost of every real image.

D is the ladder net (ebm_bench.nets.ladder), run on its corrupted path. The reconstruction cost of a sample is the
plain squared L2 error in the ladder papers' [0, 1] pixel units, weighted: E(x) = lambda * sum_pixels (x - x_hat)^2,
lambda = 1000/784 (appendix D's best), as in the original ladder code, not EBGAN's L2 norm. It is D's energy.

G is not trained: as in ae-real, step 0 trains G with a zero loss (the harness's first-step contract checks) and
every later step trains D alone. A batch's labels come with it (`Energies.labels`, -1 for unlabelled images; None
in an unsupervised run, where the cross-entropy term is 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ebm_bench.errors import MethodContractError
from ebm_bench.nets.ladder import to_unit_interval

from .ae_real import no_effect_loss_g
from .base import Energies, Method, require

RECONSTRUCTION_WEIGHT = 1000 / 784


def bottom_cost(images: torch.Tensor, reconstruction: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * sum over pixels of (x - x_hat)^2, per sample, both in the same units."""
    return weight * (reconstruction - images).flatten(1).square().sum(dim=1)


def ladder_energy(images: torch.Tensor, reconstruction: torch.Tensor, weight: float) -> torch.Tensor:
    """The bottom cost in [0, 1] pixel units, of images and reconstructions given in the harness's [-1, 1]."""
    return bottom_cost(to_unit_interval(images), to_unit_interval(reconstruction), weight)


def labelled_cross_entropy(class_logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy over the labelled rows (label >= 0); 0 when none is labelled. No host sync: the mask
    weights every row."""
    if labels is None:
        return class_logits.sum() * 0.0
    labelled = (labels >= 0).to(class_logits.dtype)
    per_row = F.cross_entropy(class_logits, labels.clamp(min=0), reduction="none")
    return (per_row * labelled).sum() / labelled.sum().clamp(min=1.0)


def supervised_cost(method: str, real: Energies) -> torch.Tensor:
    """The labelled images' cross-entropy on D's path. A D that does not classify (no `class_logits`, e.g. an MLP
    auto-encoder) is fine in an unsupervised run, where the term is 0; with labels it is an error."""
    logits = getattr(real.out, "class_logits", None)
    if logits is None:
        if real.labels is not None:
            raise MethodContractError(f"method {method!r} needs a D that classifies (class_logits) to learn from "
                                      "labels: use --arch ladder")
        return real.energy.sum() * 0.0
    return labelled_cross_entropy(logits, real.labels)


@dataclass
class Ladder(Method):
    """ladder: the bottom-layer-cost ladder network alone (cross-entropy + lambda * squared reconstruction error)."""

    name = "ladder"
    energy_model = "autoencoder"
    needs_labels = True  # without labels it is a denoising auto-encoder, and its test error is chance

    reconstruction_weight: float = RECONSTRUCTION_WEIGHT

    def validate(self):
        require(self.reconstruction_weight >= 0, self.name,
                f"reconstruction_weight must be >= 0, got {self.reconstruction_weight}")

    def trains_generator(self, step):
        return step == 0  # one G step with a zero loss, for the contract checks; then D alone

    def energy(self, images, out):
        return ladder_energy(images, out.reconstruction, self.reconstruction_weight)

    def loss_d(self, real: Energies, fake: Energies | None):
        cross_entropy = supervised_cost(self.name, real)
        self.log("cross_entropy", cross_entropy.detach())
        return cross_entropy + real.energy.mean()

    def loss_g(self, fake: Energies):
        return no_effect_loss_g(fake.energy)
