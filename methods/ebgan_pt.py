"""EBGAN-PT (same paper, eq. 14): EBGAN plus the pulling-away term on the encoder's codes of G(z)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Energies, require

from .ebgan import EBGAN, ebgan_loss_g


def pulling_away_term(codes: torch.Tensor) -> torch.Tensor:
    """f_PT(S) = 1/(N(N-1)) sum_{i != j} cos(S_i, S_j)^2, one row of S per sample (codes flattened per sample).

    Identical rows give 1, orthogonal rows 0, random Gaussian rows of dimension d about 1/d. A row of zeros has
    no direction; it counts as orthogonal to every other row.
    """
    rows = codes.flatten(1)
    n = rows.shape[0]
    if n < 2:
        raise ValueError("the pulling-away term needs at least two samples")
    unit = F.normalize(rows, dim=1)
    cosine_sq = (unit @ unit.T).square()
    return (cosine_sq.sum() - cosine_sq.diagonal().sum()) / (n * (n - 1))


@dataclass
class EBGANPT(EBGAN):
    """EBGAN-PT: EBGAN plus the pulling-away term (weight 0.1) on encoder codes in the G loss."""

    name = "ebgan-pt"

    pt_weight: float = 0.1

    def validate(self):
        super().validate()
        require(self.pt_weight >= 0, self.name, f"pt_weight must be >= 0, got {self.pt_weight}")

    def loss_g(self, fake: Energies):
        pt = pulling_away_term(fake.out.code)
        self.log("pt", pt)
        return ebgan_loss_g(fake.energy) + self.pt_weight * pt
