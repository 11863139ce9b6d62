"""AUROC of real-vs-generated energies and held-out energy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebm_bench.errors import ConfigError
from ebm_bench.metrics import auroc
from ebm_bench.stats import average_ranks


def _brute_force_auroc(real, fake) -> float:
    """P(E_fake > E_real) + 0.5 P(E_fake == E_real) over all pairs."""
    wins = sum((f > r) + 0.5 * (f == r) for r in real for f in fake)
    return wins / (len(real) * len(fake))


def test_perfectly_separated_energies_give_one():
    assert auroc(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([1.0, 2.0])) == 1.0


def test_inverted_energies_give_zero():
    assert auroc([5.0, 6.0], [1.0, 2.0, 3.0]) == 0.0


def test_identical_distributions_give_one_half():
    values = torch.tensor([0.5, 1.5, 2.5, 3.5])
    assert auroc(values, values.clone()) == 0.5
    assert auroc(torch.full((7,), 3.0), torch.full((4,), 3.0)) == 0.5  # all tied


def test_ties_count_half_against_brute_force():
    real, fake = [1.0, 2.0, 2.0, 3.0], [2.0, 2.0, 4.0]
    # pairs: fake 2 vs real (1, 2, 2, 3) -> 1 + 0.5 + 0.5 + 0 = 2, twice; fake 4 wins 4 -> (2 + 2 + 4) / 12
    assert auroc(real, fake) == pytest.approx(8 / 12)
    assert auroc(real, fake) == pytest.approx(_brute_force_auroc(real, fake))


def test_random_energies_match_brute_force():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 20, size=57).astype(float)  # integers: plenty of ties
    fake = rng.integers(5, 25, size=43).astype(float)
    assert auroc(real, fake) == pytest.approx(_brute_force_auroc(real, fake), rel=1e-12)


def test_average_ranks_share_ties():
    assert average_ranks(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_nan_and_empty_energies_are_rejected():
    with pytest.raises(ConfigError, match="NaN"):
        auroc([1.0, float("nan")], [2.0])
    with pytest.raises(ConfigError, match="empty"):
        auroc([], [2.0])
