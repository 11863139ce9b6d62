"""Per-step and per-period state of the methods: BEGAN's k_t, MAGAN's margin, EBGAN-PT's use of codes."""

import pytest
import torch

from ebm_bench.errors import ConfigError

from ebm_bench.methods import make_method, Energies, SetupContext
from ebm_bench.methods import BEGAN, EBGANPT, MAGAN, magan_margin_update
from ebm_bench.nets import DOutput

INF = float("inf")


def context(**overrides):
    values = dict(device=torch.device("cpu"), dataset="mnist", image_shape=(1, 2, 2),
                  batch_size=2, batches_per_epoch=3, expected_steps=100)
    return SetupContext(**(values | overrides))


def batch(energies):
    energy = torch.tensor(energies, dtype=torch.float32)
    return Energies(images=torch.zeros(len(energy), 1, 2, 2), out=DOutput(), energy=energy)


def margin_after(margin, s_real, s_gen, s_gen_prev, n=4):
    return magan_margin_update(torch.tensor(margin), torch.tensor(s_real), torch.tensor(s_gen),
                               torch.tensor(s_gen_prev), n).item()


def test_magan_rule_lowers_the_margin_when_all_three_conditions_hold():
    # S_real / N_b = 2 < m = 5, S_real = 8 < S_gen = 20, S_gen_prev = 10 < S_gen
    assert margin_after(5.0, 8.0, 20.0, 10.0) == pytest.approx(2.0)


@pytest.mark.parametrize("margin, s_real, s_gen, s_gen_prev", [
    (1.5, 8.0, 20.0, 10.0),   # S_real / N_b = 2 is not below m
    (5.0, 8.0, 7.0, 5.0),     # S_real is not below S_gen
    (5.0, 8.0, 20.0, 30.0),   # S_gen did not grow since the last period
    (5.0, 8.0, 20.0, INF),    # the first period: S_gen_prev starts at +infinity
])
def test_magan_rule_keeps_the_margin_when_a_condition_fails(margin, s_real, s_gen, s_gen_prev):
    assert margin_after(margin, s_real, s_gen, s_gen_prev) == margin


def test_magan_initial_margin_is_mean_real_energy_after_pretraining_and_first_period_keeps_it():
    method = MAGAN(pretrain_steps=2, period_steps=2)
    method.setup(context())
    assert [method.trains_generator(s) for s in range(3)] == [False, False, True]
    method.end_step(0, batch([3.0, 5.0]), None, None)  # before the last tenth of pre-training: not counted
    method.end_step(1, batch([2.0, 4.0]), None, None)  # batch mean 3
    assert method.margin.item() == pytest.approx(3.0)
    # first period: real means 1, gen means 10 -> the rule would lower m to 1, but S_gen_prev is +inf
    for step in (2, 3):
        method.end_step(step, batch([1.0, 1.0]), batch([10.0, 10.0]), None)
    assert method.margin.item() == pytest.approx(3.0)
    # second period: S_gen = 24 > S_gen_prev = 20, S_real = 2 < 24, mean real 1 < 3 -> m = 1
    for step in (4, 5):
        method.end_step(step, batch([1.0, 1.0]), batch([12.0, 12.0]), None)
    assert method.margin.item() == pytest.approx(1.0)


def test_magan_initial_margin_ignores_the_untrained_start_of_a_long_pretraining():
    method = MAGAN(pretrain_steps=20, period_steps=100)
    method.setup(context())
    for step in range(20):
        energy = 1000.0 if step < 18 else 4.0  # D's energies fall as it learns; the last tenth is 2 steps
        method.end_step(step, batch([energy, energy]), None, None)
    assert method.margin.item() == pytest.approx(4.0)


def test_magan_pretraining_trains_d_as_a_plain_autoencoder():
    method = MAGAN(pretrain_steps=1, period_steps=1)
    method.setup(context())
    assert method.loss_d(batch([2.0, 4.0]), None).item() == pytest.approx(3.0)


def test_began_k_t_follows_the_update_from_the_generator_step():
    method = BEGAN(gamma=0.5, lambda_k=0.01)
    method.setup(context())
    method.end_step(0, batch([2.0, 2.0]), batch([9.0, 9.0]), batch([0.0, 0.0]))  # +0.01 * (1 - 0)
    assert method.k_t.item() == pytest.approx(0.01)
    assert method.pop_logged()["m_global"].item() == pytest.approx(2.0 + 1.0)
    for step in range(1, 5):
        method.end_step(step, batch([0.0, 0.0]), batch([0.0, 0.0]), batch([10.0, 10.0]))
    assert method.k_t.item() == 0.0  # clipped at zero


def test_ebgan_pt_applies_the_term_to_encoder_codes_not_pixels():
    method = EBGANPT(margin=10.0, pt_weight=0.1)
    method.setup(context())
    images = torch.ones(2, 1, 2, 2)  # identical pixels: a pixel-space PT would be 1
    fake = Energies(images=images, out=DOutput(code=torch.eye(2)), energy=torch.tensor([3.0, 5.0]))
    assert method.loss_g(fake).item() == pytest.approx(4.0)  # mean energy + 0.1 * PT(orthogonal codes) = 4 + 0
    assert method.pop_logged()["pt"].item() == pytest.approx(0.0)


def test_ebgan_margin_defaults_to_the_dataset_margin():
    """The margin is the dataset's (its spec's option_defaults): a new dataset declares it, methods/ebgan.py is not
    touched; an option given, or declared with a value, is never replaced."""
    method = make_method("ebgan-pt", {}, "lsun-bedroom")
    method.setup(context(dataset="lsun-bedroom"))
    assert method.margin == 80.0 and method.options() == {"margin": 80.0, "pt_weight": 0.1}
    assert make_method("ebgan-pt", {"margin": 3}, "lsun-bedroom").margin == 3.0
    assert make_method("ebgan-ln", {}, "mnist").margin == 16.0  # its own default, not MNIST's 10
    with pytest.raises(ConfigError, match="no default margin for dataset 'my-faces'.*--margin"):
        EBGANPT().setup(context(dataset="my-faces"))
