"""End-of-run energy evaluation: how well the discriminator's energy separates real from generated images.

An energy-based discriminator should assign LOWER energy to real data. AUROC measures that separation without
caring about the energy's scale (which differs between methods by orders of magnitude): it is the probability
that a generated image has higher energy than a real one, ties counted half. 1 = perfectly separated, 0.5 = no
separation (e.g. a converged game, or a collapsed discriminator), below 0.5 = inverted.
"""

from __future__ import annotations

import numpy as np
import torch

from ebm_bench.errors import ConfigError
from ebm_bench.stats import average_ranks

from .base import Metric


def _as_vector(values, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    vector = np.asarray(values, dtype=np.float64).reshape(-1)
    if vector.size == 0:
        raise ConfigError(f"{name} is empty: AUROC needs at least one energy on each side")
    if np.isnan(vector).any():
        raise ConfigError(f"{name} contains NaN energies: the discriminator diverged, AUROC is undefined")
    return vector


def auroc(energy_real, energy_fake) -> float:
    """P(E_fake > E_real) + 0.5 P(E_fake == E_real), from the Mann-Whitney U statistic of the fake energies.

    Rank-based, exact for ties, O(N log N). Inputs are 1-D sequences (tensors or arrays) of per-image energies.
    """
    real, fake = _as_vector(energy_real, "energy_real"), _as_vector(energy_fake, "energy_fake")
    ranks = average_ranks(np.concatenate([real, fake]))
    fake_rank_sum = ranks[real.size:].sum()
    u_fake = fake_rank_sum - fake.size * (fake.size + 1) / 2.0
    return float(u_fake / (real.size * fake.size))


ENERGY_METRICS = (
    Metric("energy_auroc", None, "energies", lambda inputs: auroc(inputs.energy_real, inputs.energy_fake),
           "P(E(generated) > E(held-out real)): how well D's energy separates them (a diagnostic)", headline=8,
           label="AUROC"),
    Metric("energy_heldout_mean", None, "energies", lambda inputs: inputs.energy_real.double().mean().item(),
           "mean energy of held-out real images (a diagnostic, in the method's own units)"),
    Metric("energy_generated_mean", None, "energies", lambda inputs: inputs.energy_fake.double().mean().item(),
           "mean energy of generated images (a diagnostic, in the method's own units)"),
)
