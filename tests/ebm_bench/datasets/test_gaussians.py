"""gaussians-2d: its exact density and sampler, its loader, the toy nets (trained and frozen-at-Q G), and every
method training on it through train_one without the MNIST classifier."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.datasets import get_dataset
from ebm_bench.datasets import gaussians
from ebm_bench.datasets.gaussians import (
    DATA,
    N_POINTS,
    POINT_SHAPE,
    GaussianMixture,
    data_fingerprint,
    data_points,
    ring,
    to_images,
    to_points,
)
from ebm_bench.errors import ConfigError
from ebm_bench.methods import METHODS, option_names
from ebm_bench.nets import build_networks
from ebm_bench.nets.toy import FROZEN_Q, FrozenGenerator
from ebm_bench.runs import train_one
from ebm_bench.train import Trainer, prepare

CPU = torch.device("cpu")
SMALL = MLPConfig(n_layer_g=3, size_g=16, n_layer_d=2, size_d=16)


# -- the densities -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mixture", [DATA, FROZEN_Q], ids=["P", "Q"])
def test_log_density_is_scipys_mixture_density(mixture):
    inside = torch.rand(200, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    points = torch.cat([inside, torch.tensor(mixture.means) + 0.01, torch.tensor([[5.0, -5.0]])])
    components = [multivariate_normal(mean, mixture.std ** 2 * np.eye(2)).logpdf(points.numpy())
                  for mean in mixture.means]
    expected = logsumexp(np.stack(components), axis=0) - math.log(len(mixture.means))
    ours = mixture.log_density(points)
    assert ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-9, atol=1e-9)
    assert ours[-1] < -1000  # far from every mode: a density below float64's smallest, its log still exact


@pytest.mark.parametrize("mixture", [DATA, FROZEN_Q], ids=["P", "Q"])
def test_density_integrates_to_one(mixture):
    step = 0.004  # 5 cells per std of P's modes
    axis = torch.arange(-1.3, 1.3, step, dtype=torch.float64) + step / 2
    grid = torch.cartesian_prod(axis, axis)
    assert mixture.log_density(grid).exp().sum().item() * step ** 2 == pytest.approx(1.0, abs=1e-4)


def test_ring_places_equal_modes_on_a_circle():
    assert len(DATA.means) == 8 and DATA.std == 0.02
    assert all(math.hypot(*mean) == pytest.approx(0.8) for mean in DATA.means)
    assert DATA.means[0] == (0.8, 0.0) and DATA.means[2] == pytest.approx((0.0, 0.8), abs=1e-12)
    assert FROZEN_Q.means == DATA.means[::2] and FROZEN_Q.std == 0.05


def test_samples_are_the_mixture():
    mixture = ring(4, 0.5, 0.1)
    points = mixture.sample(40_000, torch.Generator().manual_seed(0)).double()
    assert torch.equal(points, mixture.sample(40_000, torch.Generator().manual_seed(0)).double())  # seeded
    nearest = torch.cdist(points, torch.tensor(mixture.means, dtype=torch.float64)).argmin(dim=1)
    shares = torch.bincount(nearest, minlength=4).double() / len(points)
    assert (shares - 0.25).abs().max() < 0.01  # binomial std 0.002
    offsets = points - torch.tensor(mixture.means, dtype=torch.float64)[nearest]
    assert offsets.mean(dim=0).abs().max() < 0.003 and offsets.std(dim=0).sub(0.1).abs().max() < 0.003


def test_noise_is_mapped_deterministically_component_by_its_quantile():
    mixture = GaussianMixture(((0.0, 0.0), (10.0, 0.0)), std=1.0)
    noise = torch.tensor([[-1.0, 0.5, -0.5], [1.0, 0.5, -0.5], [40.0, 0.0, 0.0]])  # Phi(40) = 1: the last mode
    assert torch.equal(mixture.from_noise(noise), torch.tensor([[0.5, -0.5], [10.5, -0.5], [10.0, 0.0]]))


def test_points_travel_as_three_channel_pixels():
    points = torch.tensor([[0.1, -0.2], [0.3, 0.4]])
    images = to_images(points)
    assert tuple(images.shape) == (2, *POINT_SHAPE) and images[:, 2].abs().sum() == 0
    assert torch.equal(to_points(images), points)


# -- the loader --------------------------------------------------------------------------------------------------
def load(seed=0, holdout=100, batch_size=16):
    return get_dataset("gaussians-2d").load(None, 1, batch_size, seed, holdout, CPU, False)


def test_loader_gives_fixed_points_in_range_ordered_by_the_run_seed():
    spec = get_dataset("gaussians-2d")
    assert (spec.image_sizes, spec.channels, spec.default_arch, spec.classifier) == ((1,), 3, "toy", False)
    data, again, other = load(seed=0), load(seed=0), load(seed=1)
    assert data.image_shape == POINT_SHAPE and data.n_train == N_POINTS - 100
    assert data.batches.batches_per_epoch == (N_POINTS - 100) // 16
    assert torch.equal(data.holdout, to_images(data_points()[-100:]))  # the last points, never trained on
    batch = data.batches.next()
    assert tuple(batch.shape) == (16, *POINT_SHAPE) and batch.dtype == torch.float32
    assert torch.equal(batch, again.batches.next()) and not torch.equal(batch, other.batches.next())
    assert data_points().abs().max() < 1 and batch[:, 2].abs().sum() == 0
    assert data.sha256 == other.sha256 == data_fingerprint() and len(data.sha256) == 64
    assert torch.isin(to_points(batch)[:, 0], data_points()[: data.n_train, 0]).all()  # drawn from the training part


def test_batches_resume_where_they_stopped():
    first = load()
    for _ in range(3):
        first.batches.next()
    state = first.batches.state_dict()
    resumed = load()
    resumed.batches.load_state_dict(state)
    assert torch.equal(first.batches.next(), resumed.batches.next())


def test_fingerprint_follows_the_parameters(monkeypatch):
    before = data_fingerprint()
    monkeypatch.setattr(gaussians, "DATA", ring(8, 0.8, 0.03))
    assert data_fingerprint() != before


@pytest.mark.parametrize("holdout, batch_size, message", [
    (-1, 16, "--holdout -1 is out of range; use 0..50000 held-out points of gaussians-2d"),
    (60_000, 16, "--holdout 60000 is out of range"),
    (50_000, 60_000, "holding out 50000 leaves 50000, fewer than one batch of 60000"),
])
def test_bad_sizes_get_one_line(holdout, batch_size, message):
    with pytest.raises(ConfigError, match=message):
        load(holdout=holdout, batch_size=batch_size)


# -- the toy nets ------------------------------------------------------------------------------------------------
def test_toy_nets_map_points_to_points():
    torch.manual_seed(0)
    generator, autoencoder = build_networks("toy", "autoencoder", POINT_SHAPE, 4, SMALL)
    images = generator(torch.randn(5, 4))
    assert tuple(images.shape) == (5, *POINT_SHAPE) and images[:, 2].abs().sum() == 0 and images.abs().max() <= 1
    out = autoencoder(images)
    assert out.reconstruction.shape == images.shape and out.reconstruction[:, 2].abs().sum() == 0
    assert tuple(out.code.shape) == (5, 16)
    _, classifier = build_networks("toy", "classifier", POINT_SHAPE, 4, SMALL)
    assert tuple(classifier(images).logit.shape) == (5,)
    # D reads the point only: a value in the unused third channel changes nothing
    shifted = images.clone()
    shifted[:, 2] = 0.7
    assert torch.equal(classifier(shifted).logit, classifier(images).logit)


@pytest.mark.parametrize("arch", ["toy", "toy-fixed-q"])
def test_toy_nets_refuse_images_and_dropout(arch):
    with pytest.raises(ConfigError, match=f"'{arch}' takes the 2-D points of dataset gaussians-2d"):
        build_networks(arch, "autoencoder", (1, 32, 32), 4, SMALL)
    with pytest.raises(ConfigError, match="has no dropout"):
        build_networks(arch, "classifier", POINT_SHAPE, 4, MLPConfig(3, 16, 2, 16, dropout_d=True))


def test_the_frozen_generator_is_exactly_q():
    generator, _ = build_networks("toy-fixed-q", "classifier", POINT_SHAPE, 4, SMALL)
    z = torch.randn(1000, 4, generator=torch.Generator().manual_seed(1))
    assert isinstance(generator, FrozenGenerator) and generator.density == FROZEN_Q
    assert torch.equal(generator(z), to_images(FROZEN_Q.from_noise(z)))
    with pytest.raises(ConfigError, match="use --z-dim 3 or more, not 2"):
        build_networks("toy-fixed-q", "classifier", POINT_SHAPE, 2, SMALL)


def test_training_against_the_frozen_generator_leaves_it_at_q(tmp_path):
    config = RunConfig(method="gan", dataset="gaussians-2d", arch="toy-fixed-q", budget=Budget("steps", 5),
                       batch_size=16, z_dim=4, mlp=SMALL, holdout=100, out=str(tmp_path), log_every=5,
                       data_root=str(tmp_path), download=False)
    run = prepare(config)
    z = torch.randn(64, 4, generator=torch.Generator().manual_seed(2))
    trainer = Trainer(run)
    for step in range(5):  # GAN's G loss has a gradient at G's output; none reaches the frozen G
        trainer.step(step, check_contract=step == 0)
    assert trainer.result.generator_steps == 5
    assert run.generator.anchor.item() == 0.0 and torch.equal(run.generator(z), to_images(FROZEN_Q.from_noise(z)))


# -- every method trains on it, with the end-of-run evaluation that applies --------------------------------------
# the built-in methods (plug-ins that other test modules register during collection live elsewhere)
METHOD_NAMES = sorted(name for name, cls in METHODS.items()  # built-ins that train without labels
                      if cls.__module__.startswith("ebm_bench.methods.") and not cls.needs_labels)


@pytest.mark.parametrize("arch", ["toy", "toy-fixed-q"])
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_trains_on_gaussians_2d_through_train_one(tmp_path, method, arch):
    options = {"margin": 1.0} if "margin" in option_names(method) else {}
    config = RunConfig(method=method, dataset="gaussians-2d", arch=arch, budget=Budget("steps", 3), batch_size=16,
                       z_dim=4, mlp=SMALL, holdout=100, out=str(tmp_path / "runs"), log_every=1, n_samples=16,
                       method_options=options, data_root=str(tmp_path), download=False)  # eval_n at its default
    result = train_one(config)
    assert result.status == "finished" and result.steps == 3
    assert set(result.evaluation) == {"energy_auroc", "energy_heldout_mean", "energy_generated_mean", "n_heldout",
                                      "n_generated"}  # no MNIST-classifier metric: the dataset has no classifier
    manifest = json.loads((tmp_path / "runs" / result.run_id / "manifest.json").read_text())
    assert manifest["data_sha256"] == data_fingerprint() and manifest["samples"] == {"train": N_POINTS - 100,
                                                                                     "holdout": 100}
