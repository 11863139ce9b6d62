"""The pulling-away term (EBGAN eq. 14) on the spec's golden inputs."""

import pytest
import torch

from ebm_bench.methods import pulling_away_term


def test_identical_rows_give_one():
    rows = torch.randn(1, 32).repeat(16, 1)
    assert pulling_away_term(rows).item() == pytest.approx(1.0, abs=1e-6)


def test_orthogonal_rows_give_zero():
    assert pulling_away_term(torch.eye(8) * 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_random_gaussian_rows_give_about_one_over_dimension():
    generator = torch.Generator().manual_seed(0)
    rows = torch.randn(256, 256, generator=generator, dtype=torch.float64)
    assert pulling_away_term(rows).item() == pytest.approx(1 / 256, rel=0.1)


def test_hand_computed_pair():
    # cos([1, 0], [1, 1]) = 1/sqrt(2); squared 1/2; both ordered pairs, divided by N(N-1) = 2.
    assert pulling_away_term(torch.tensor([[1.0, 0.0], [1.0, 1.0]])).item() == pytest.approx(0.5)


def test_invariant_to_row_scale_and_flattens_each_sample():
    codes = torch.randn(6, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    scales = torch.tensor([0.1, 1.0, 7.0, 2.0, 0.5, 30.0]).view(6, 1, 1, 1)
    assert pulling_away_term(codes * scales).item() == pytest.approx(pulling_away_term(codes).item(), rel=1e-5)
    assert pulling_away_term(codes).item() == pytest.approx(pulling_away_term(codes.flatten(1)).item())


def test_squares_the_cosine():
    # cosines of opposite sign would cancel without the square: rows [1,0], [-1,0] have cos -1, squared 1.
    assert pulling_away_term(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])).item() == pytest.approx(1.0)
