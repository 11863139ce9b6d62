"""ladder and ebgan-ln: their losses against hand computations, and EBGAN-LN's schedule (the margin at exactly 0
from its end step on, G frozen after generator_off_after) on the real pi-mnist with the ladder D."""

from __future__ import annotations

import math

import pytest
import torch

from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.methods import Energies, bottom_cost, labelled_cross_entropy, ladder_energy, make_method
from ebm_bench.nets.ladder import LadderOutput
from ebm_bench.schedule import ScheduledValues, split_options
from ebm_bench.train import Trainer, prepare


def test_the_bottom_cost_is_the_weighted_plain_squared_error_per_sample():
    x = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    x_hat = torch.tensor([[0.5, 1.0], [0.0, 0.0]])
    # 2 * (0.25 + 0) = 0.5 and 2 * (0.25 + 0.25) = 1.0
    torch.testing.assert_close(bottom_cost(x, x_hat, 2.0), torch.tensor([0.5, 1.0]))
    # in the harness's [-1, 1]: -1 -> 0, 1 -> 1, 0 -> 0.5: the same images, the same cost, at lambda = 1000/784
    images, reconstruction = x * 2 - 1, x_hat * 2 - 1
    torch.testing.assert_close(ladder_energy(images, reconstruction, 1000 / 784),
                               torch.tensor([0.25, 0.5]) * 1000 / 784)


def test_the_cross_entropy_counts_the_labelled_rows_only():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    # row 0, label 0: -log(1/2) = ln 2; row 1, label 1: -log(1/4) = ln 4
    assert labelled_cross_entropy(logits, torch.tensor([0, -1])).item() == pytest.approx(math.log(2))
    assert labelled_cross_entropy(logits, torch.tensor([0, 1])).item() == pytest.approx(1.5 * math.log(2))
    assert labelled_cross_entropy(logits, torch.tensor([-1, -1])).item() == 0.0
    assert labelled_cross_entropy(logits, None).item() == 0.0


def energies(energy, logits=None, labels=None) -> Energies:
    energy = torch.tensor(energy)
    return Energies(images=torch.zeros(len(energy), 2), out=LadderOutput(class_logits=logits), energy=energy,
                    labels=labels)


def test_ladder_s_loss_is_the_labelled_cross_entropy_plus_the_mean_real_energy():
    method = make_method("ladder", {})
    assert method.reconstruction_weight == pytest.approx(1000 / 784)
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    loss = method.loss_d(energies([1.0, 3.0], logits, torch.tensor([0, -1])), None)
    assert loss.item() == pytest.approx(math.log(2) + 2.0)
    assert not method.trains_generator(1) and method.trains_generator(0)


def test_ebgan_ln_s_d_loss_adds_the_per_sample_hinge_and_drops_it_when_g_is_off():
    method = make_method("ebgan-ln", {})
    assert method.margin == 16.0 and method.optim_defaults == {"lr_d": 5e-4, "lr_g": 2.5e-4, "beta1": 0.5}
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    real = energies([1.0, 3.0], logits, torch.tensor([0, -1]))
    # ln 2 + mean(1, 3) + mean(max(0, 16 - 10), max(0, 16 - 20)) = ln 2 + 2 + 3
    assert method.loss_d(real, energies([10.0, 20.0])).item() == pytest.approx(math.log(2) + 5.0)
    assert method.loss_d(real, None).item() == pytest.approx(math.log(2) + 2.0)
    assert method.loss_g(energies([10.0, 20.0])).item() == 15.0


def test_the_paper_s_margin_schedule_is_exactly_zero_from_step_60000_on():
    _, loop = split_options("ebgan-ln", {"margin_schedule": "linear:16:0:60000", "generator_off_after": 60000,
                                         "lr_decay_from": 120000})
    values = ScheduledValues([loop], torch.device("cpu"))
    margins = {}
    for step in (0, 30000, 59999, 60000, 60001, 179999):
        values.set_step(step)
        margins[step] = values.values()["margin"].item()
    assert margins[0] == 16.0 and margins[30000] == 8.0 and margins[59999] == pytest.approx(16 / 60000)
    assert margins[60000] == margins[60001] == margins[179999] == 0.0
    assert loop.trains_generator(59999) and not loop.trains_generator(60000)
    assert loop.lr_factor(119999, 180000) == 1.0 and loop.lr_factor(150000, 180000) == 0.5


STEPS, END, OFF = 8, 3, 5  # the appendix's schedule, scaled: margin 16 -> 0 at step 3, G off from step 5


def test_ebgan_ln_on_pi_mnist_trains_g_until_the_phase_and_d_alone_with_margin_0_after(mnist_root, tmp_path):
    config = RunConfig(method="ebgan-ln", dataset="pi-mnist", labels=100, batch_size=10, budget=Budget("steps", STEPS),
                       mlp=MLPConfig(n_layer_g=2, size_g=16), z_dim=8, holdout=20, data_root=str(mnist_root),
                       download=False, out=str(tmp_path), log_every=1, method_options={
                           "margin_schedule": f"linear:16:0:{END}", "generator_off_after": OFF})
    run = prepare(config)
    run.run_dir.mkdir(parents=True)
    trainer = Trainer(run)
    g_before = None
    for step in range(STEPS):
        if step == OFF:
            g_before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
        trainer.step(step, check_contract=step == 0)
        if step + 1 >= END:
            assert float(run.method.margin) == 0.0  # what step + 1 trains with
    assert all(torch.equal(v, trainer.G.state_dict()[k]) for k, v in g_before.items())  # G frozen from step OFF
    assert (trainer.result.generator_steps, trainer.result.pretrain_steps) == (OFF, STEPS - OFF)
    assert run.config.optim.lr_d == 5e-4 and run.config.optim.lr_g == 2.5e-4 and run.config.optim.beta1 == 0.5


def test_the_ladder_alone_needs_labels():
    from ebm_bench import RunConfig
    from ebm_bench.errors import ConfigError
    from ebm_bench.resolve import resolve

    with pytest.raises(ConfigError, match="ladder trains on labelled images: give --labels N"):
        resolve(RunConfig(method="ladder", dataset="pi-mnist"))
    assert resolve(RunConfig(method="ladder", dataset="pi-mnist", labels=1000, batch_size=100)).config.labels == 1000
    assert resolve(RunConfig(method="ebgan-ln", dataset="pi-mnist")).config.labels is None  # EBGAN with a ladder D
