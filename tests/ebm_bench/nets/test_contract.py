"""Every registered architecture builds G and both kinds of D (or refuses one with a ConfigError) on an MNIST or a
64x64 RGB shape, with G's images in [-1, 1] and D's outputs of the right kind."""

from __future__ import annotations

import pytest
import torch

from ebm_bench.config import MLPConfig
from ebm_bench.errors import ConfigError
from ebm_bench.nets import ENERGY_MODELS, NETS, build_networks

SHAPES = [(1, 32, 32), (3, 64, 64), (3, 1, 1), (1, 28, 28)]  # (3, 1, 1): gaussians-2d's points; 28: pi-mnist's


def build(name, energy_model):
    """(G, D, shape) for the first shape the architecture accepts; ConfigErrors if it accepts none."""
    errors = []
    for shape in SHAPES:
        try:
            return (*build_networks(name, energy_model, shape, 8, MLPConfig(2, 16, 3, 16)), shape)
        except ConfigError as err:
            errors.append(err)
    raise errors[-1]


@pytest.mark.parametrize("energy_model", ENERGY_MODELS)
@pytest.mark.parametrize("name", sorted(NETS.all()))
def test_g_and_d_have_the_contracted_outputs(name, energy_model):
    torch.manual_seed(0)
    try:
        generator, discriminator, shape = build(name, energy_model)
    except ConfigError as err:  # an architecture may support one kind of D only, and must say so
        assert energy_model in str(err) or "classifier" in str(err) or "auto-encoder" in str(err)
        return
    images = generator(torch.randn(4, 8))
    assert tuple(images.shape) == (4, *shape) and images.min() >= -1 and images.max() <= 1
    out = discriminator(images)
    if energy_model == "autoencoder":
        assert out.reconstruction.shape == images.shape and len(out.code) == 4 and out.logit is None
    else:
        assert tuple(out.logit.shape) == (4,) and out.reconstruction is None
