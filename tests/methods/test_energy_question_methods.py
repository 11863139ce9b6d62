"""The 2 x 2 of D against loss (ae-logistic, clf-hinge beside gan and ebgan) and the real-only control (ae-real):
losses against hand-computed values, and how each uses the harness. The contract tests (test_contract.py) run
every registered method, these included."""

from __future__ import annotations

import math

import pytest
import torch

from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.errors import ConfigError
from ebm_bench.methods import (
    Energies,
    SetupContext,
    ae_logistic_loss_d,
    ae_logistic_loss_g,
    classifier_energy,
    gan_loss_d,
    gan_loss_g,
    get_method,
    l2_energy,
    make_method,
    no_effect_loss_g,
    real_only_loss_d,
)
from ebm_bench.datasets import get_dataset
from ebm_bench.nets import DOutput
from ebm_bench.train import Trainer, prepare

CPU = torch.device("cpu")


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def energies(values, logit=None) -> Energies:
    energy = torch.tensor(values, dtype=torch.float64)
    return Energies(images=torch.zeros(len(values), 1, 2, 2), out=DOutput(logit=logit), energy=energy)


def set_up(method, dataset="mnist"):
    method.setup(SetupContext(device=CPU, dataset=dataset, image_shape=(1, 32, 32), batch_size=2,
                              batches_per_epoch=10, expected_steps=100))
    return method


# -- the four cells ----------------------------------------------------------------------------------------------
def test_the_2x2_crosses_d_with_loss():
    cells = {name: get_method(name).energy_model for name in ("gan", "ebgan", "ae-logistic", "clf-hinge", "ae-real")}
    assert cells == {"gan": "classifier", "ebgan": "autoencoder", "ae-logistic": "autoencoder",
                     "clf-hinge": "classifier", "ae-real": "autoencoder"}


# -- ae-logistic -------------------------------------------------------------------------------------------------
def test_ae_logistic_losses_by_hand():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 3.0])
    # margin 1: logits m - E are (1, -1) for real and (0, -2) for generated samples
    expected_d = (softplus(-1) + softplus(1)) / 2 + (softplus(0) + softplus(-2)) / 2
    assert ae_logistic_loss_d(real, fake, 1.0).item() == pytest.approx(expected_d, abs=1e-6)
    assert ae_logistic_loss_d(real, fake, 1.0).item() == pytest.approx(1.223300, abs=1e-6)
    # G: BCE(m - E(G(z)), 1) = softplus(E - m) of (0, 2)
    assert ae_logistic_loss_g(fake, 1.0).item() == pytest.approx((softplus(0) + softplus(2)) / 2, abs=1e-6)
    assert ae_logistic_loss_g(fake, 1.0).item() == pytest.approx(1.410038, abs=1e-6)


def test_ae_logistic_at_margin_zero_is_gans_loss_on_minus_the_energy():
    real, fake = torch.tensor([0.3, 4.0, 1.5]), torch.tensor([0.1, 7.0, 2.5])
    assert torch.equal(ae_logistic_loss_d(real, fake, 0.0), gan_loss_d(real, fake))
    assert torch.equal(ae_logistic_loss_g(fake, 0.0), gan_loss_g(fake))


def test_ae_logistic_is_eb_gans_d_with_its_margin_as_the_logits_offset():
    method = set_up(make_method("ae-logistic", {}, "mnist"))
    assert method.margin == get_dataset("mnist").option_defaults["margin"] == 10.0
    images, reconstruction = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    out = DOutput(reconstruction=reconstruction)
    assert torch.equal(method.energy(images, out), l2_energy(images, reconstruction))
    real, fake = energies([9.0, 12.0]), energies([8.0, 11.0, 30.0])
    assert method.loss_d(real, fake).item() == pytest.approx(ae_logistic_loss_d(real.energy, fake.energy, 10).item())
    assert method.pop_logged()["hinge_active"].item() == pytest.approx(1 / 3)  # E = 8 < m: D calls it real
    assert method.loss_g(fake).item() == pytest.approx(ae_logistic_loss_g(fake.energy, 10.0).item())


@pytest.mark.parametrize("name", ["ae-logistic", "clf-hinge"])
def test_a_dataset_without_a_default_margin_needs_one(name):
    with pytest.raises(ConfigError, match=f"{name} has no default margin for dataset 'gaussians-2d'; pass one"):
        set_up(make_method(name, {}, "gaussians-2d"), "gaussians-2d")
    assert set_up(make_method(name, {"margin": 1}), "gaussians-2d").margin == 1.0
    with pytest.raises(ConfigError, match="margin must be positive"):
        make_method(name, {"margin": -1})


# -- clf-hinge ---------------------------------------------------------------------------------------------------
def test_clf_hinge_energy_is_minus_the_log_probability_of_real():
    logit = torch.tensor([-30.0, -2.0, 0.0, 2.0, 30.0], dtype=torch.float64)
    energy = classifier_energy(logit)
    assert energy[2].item() == pytest.approx(math.log(2))
    assert energy[3].item() == pytest.approx(softplus(-2))
    assert torch.allclose(energy, -torch.log(torch.sigmoid(logit)))
    assert (energy > 0).all() and (energy.diff() < 0).all()  # non-negative, lower as D believes "real" more
    method = make_method("clf-hinge", {})
    assert torch.equal(method.energy(None, DOutput(logit=logit)), energy)


def test_clf_hinge_losses_by_hand():
    method = set_up(make_method("clf-hinge", {"margin": 1.0}))
    real_logit, fake_logit = torch.tensor([2.0, 0.0]), torch.tensor([0.0, -3.0])
    real = Energies(None, DOutput(logit=real_logit), method.energy(None, DOutput(logit=real_logit)))
    fake = Energies(None, DOutput(logit=fake_logit), method.energy(None, DOutput(logit=fake_logit)))
    # energies: real (softplus(-2), ln 2), generated (ln 2, softplus(3)); the hinge acts on ln 2 < 1 only
    expected_d = (softplus(-2) + math.log(2)) / 2 + (1 - math.log(2) + 0.0) / 2
    assert method.loss_d(real, fake).item() == pytest.approx(expected_d, abs=1e-6)
    assert method.loss_d(real, fake).item() == pytest.approx(0.563464, abs=1e-6)
    assert method.loss_g(fake).item() == pytest.approx((math.log(2) + softplus(3)) / 2, abs=1e-6)


def test_clf_hinge_shares_gans_real_term_and_g_loss():
    logit_real, logit_fake = torch.tensor([1.5, -0.5, 3.0]), torch.tensor([-1.0, 0.5, -4.0])
    method = set_up(make_method("clf-hinge", {}, "mnist"))
    real, fake = classifier_energy(logit_real), classifier_energy(logit_fake)
    gan_real_term = gan_loss_d(-logit_real, torch.full((1,), 1e4)).item()  # its generated term is 0 at s = -1e4
    assert real.mean().item() == pytest.approx(gan_real_term, abs=1e-6)
    assert method.loss_g(Energies(None, DOutput(logit=logit_fake), fake)).item() == pytest.approx(
        gan_loss_g(-logit_fake).item(), abs=1e-6)


# -- ae-real -----------------------------------------------------------------------------------------------------
def test_ae_real_losses_by_hand():
    real, fake = torch.tensor([1.0, 2.0, 6.0]), torch.tensor([100.0, 0.0], requires_grad=True)
    assert real_only_loss_d(real).item() == 3.0
    method = make_method("ae-real", {})
    assert method.loss_d(energies([1.0, 2.0, 6.0]), energies([100.0, 0.0])).item() == 3.0  # generated: no part
    assert method.loss_d(energies([1.0, 2.0, 6.0]), None).item() == 3.0
    loss = no_effect_loss_g(fake)
    assert loss.dim() == 0 and loss.item() == 0.0
    loss.backward()
    assert torch.equal(fake.grad, torch.zeros(2))
    assert [method.trains_generator(step) for step in range(4)] == [True, False, False, False]


def test_ae_real_trains_d_on_real_data_and_never_moves_g(tmp_path):
    config = RunConfig(method="ae-real", dataset="gaussians-2d", arch="toy", budget=Budget("steps", 4), batch_size=16,
                       z_dim=4, mlp=MLPConfig(3, 16, 2, 16), holdout=100, out=str(tmp_path), log_every=4,
                       data_root=str(tmp_path), download=False)
    run = prepare(config)
    g_before = {k: v.clone() for k, v in run.generator.state_dict().items()}
    d_before = {k: v.clone() for k, v in run.discriminator.state_dict().items()}
    trainer = Trainer(run)
    for step in range(4):
        trainer.step(step, check_contract=step == 0)
    assert all(torch.equal(g_before[k], v) for k, v in run.generator.state_dict().items())
    assert any(not torch.equal(d_before[k], v) for k, v in run.discriminator.state_dict().items())
    assert (trainer.result.generator_steps, trainer.result.pretrain_steps) == (1, 3)
    row = trainer.stats.row(run.method.state_values())
    assert row["loss_d"] == pytest.approx(row["energy_real_mean"], rel=1e-6)  # L_D is the mean real energy
    assert row["loss_g"] == 0.0
