"""Each loss and energy of the built-in methods against hand-computed values."""

import math

import pytest
import torch

from ebm_bench.methods import (began_convergence, began_k_update, began_loss_d, began_loss_g, ebgan_loss_d,
                               ebgan_loss_g, gan_loss_d, gan_loss_g, hinge_active, l1_energy, l2_energy,
                               squared_energy)


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_l2_energy_is_the_norm_of_the_residual_per_sample():
    images = torch.zeros(2, 1, 1, 2, dtype=torch.float64)
    reconstruction = torch.tensor([[[[3.0, 4.0]]], [[[0.0, 0.0]]]], dtype=torch.float64)
    assert l2_energy(images, reconstruction).tolist() == [5.0, 0.0]  # not 25 (squared), not 2.5 (averaged)


def test_l1_energy_is_the_mean_absolute_residual_per_sample():
    images = torch.zeros(1, 1, 2, 2)
    reconstruction = torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])
    assert l1_energy(images, reconstruction).tolist() == [1.0]


def test_squared_energy_is_the_sum_of_squared_residuals_per_sample():
    images = torch.zeros(2, 1, 1, 2)
    reconstruction = torch.tensor([[[[1.0, 2.0]]], [[[0.0, -3.0]]]])
    assert squared_energy(images, reconstruction).tolist() == [5.0, 9.0]


def test_ebgan_hinge_is_per_sample_then_averaged():
    real, fake = t(1.0, 3.0), t(4.0, 12.0)
    # mean E(x) = 2; hinges max(0, 10 - 4) = 6 and max(0, 10 - 12) = 0, mean 3.
    assert ebgan_loss_d(real, fake, 10.0).item() == pytest.approx(5.0)
    # The common bug, a hinge on the batch mean, would give 2 + max(0, 10 - 8) = 4.
    assert ebgan_loss_d(real, fake, 10.0).item() != pytest.approx(4.0)


def test_ebgan_generator_loss_and_gradient_reach_the_sample_through_both_paths():
    assert ebgan_loss_g(t(4.0, 12.0)).item() == pytest.approx(8.0)
    sample = torch.tensor([[1.0, 1.0]], requires_grad=True)
    reconstruction = 0.5 * sample  # D(G(z)) depends on G(z); the target G(z) is not detached
    l2_energy(sample, reconstruction).sum().backward()
    # E = ||0.5 s - s|| = 0.5 ||s||, dE/ds = 0.5 s / ||s||
    assert sample.grad[0].tolist() == pytest.approx([0.5 / math.sqrt(2)] * 2)


def test_hinge_active_is_the_share_of_generated_samples_inside_the_margin():
    assert hinge_active(t(4.0, 12.0, 9.9, 10.0), 10.0).item() == pytest.approx(0.5)


def test_gan_losses_match_binary_cross_entropy_on_logit_minus_energy():
    log3 = math.log(3.0)
    # real logit ln 3 -> p = 0.75 -> -ln 0.75; fake logit -ln 3 -> p = 0.25 -> -ln(1 - 0.25)
    assert gan_loss_d(t(-log3), t(log3)).item() == pytest.approx(-2 * math.log(0.75))
    # non-saturating: -ln sigmoid(-ln 3) = ln 4
    assert gan_loss_g(t(log3)).item() == pytest.approx(math.log(4.0))


def test_began_losses():
    assert began_loss_d(t(1.0, 3.0), t(2.0, 4.0), 0.5).item() == pytest.approx(2.0 - 0.5 * 3.0)
    assert began_loss_g(t(2.0, 4.0)).item() == pytest.approx(3.0)


def test_began_k_update_and_clipping():
    assert began_k_update(t(0.5), 2.0, 3.0, gamma=0.5, lambda_k=0.001).item() == pytest.approx(0.498)
    assert began_k_update(t(0.0005), 0.0, 1.0, gamma=0.5, lambda_k=0.001).item() == 0.0
    assert began_k_update(t(0.9999), 2.0, 0.0, gamma=0.5, lambda_k=0.1).item() == 1.0


def test_began_convergence_measure():
    assert began_convergence(t(2.0), t(3.0), 0.5).item() == pytest.approx(2.0 + abs(1.0 - 3.0))


def test_ebgan_d_alone_pulls_the_real_energies_down_and_logs_no_hinge():
    """With G switched off (generator_off_after) EBGAN's D loss is the real term alone: mean of 2 and 6 is 4."""
    from ebm_bench.methods import EBGAN, Energies
    method = EBGAN(margin=10.0)
    real = Energies(images=torch.zeros(2, 1), out=None, energy=t(2.0, 6.0))
    assert method.loss_d(real, None).item() == pytest.approx(4.0)
    assert "hinge_active" not in method.pop_logged()
