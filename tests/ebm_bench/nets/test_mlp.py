"""The paper's MNIST MLPs: layer counts, BatchNorm placement, init."""

import pytest
import torch
from torch import nn

from ebm_bench.errors import ConfigError
from ebm_bench.config import MLPConfig
from ebm_bench.nets import Dropout, build_networks, count_parameters

SHAPE = (1, 32, 32)


def linear_layers(module):
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def test_generator_counts_its_output_layer_and_has_batchnorm_on_hidden_layers_only():
    g, _ = build_networks("mlp", "autoencoder", SHAPE, 100, MLPConfig(n_layer_g=5, size_g=800))
    linears = linear_layers(g)
    assert [(l.in_features, l.out_features) for l in linears] == [(100, 800)] + [(800, 800)] * 3 + [(800, 1024)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in g.modules()) == 4
    out = g(torch.randn(3, 100))
    assert out.shape == (3, *SHAPE) and out.abs().max() <= 1.0  # Tanh output


def test_autoencoder_has_n_layer_d_minus_one_encoder_layers_and_a_one_layer_decoder():
    _, d = build_networks("mlp", "autoencoder", SHAPE, 100, MLPConfig(n_layer_d=4, size_d=128))
    assert [(l.in_features, l.out_features) for l in linear_layers(d.encoder)] == [(1024, 128), (128, 128),
                                                                                  (128, 128)]
    assert (d.decoder.in_features, d.decoder.out_features) == (128, 1024)
    # BatchNorm after every encoder layer except the input layer
    assert sum(isinstance(m, nn.BatchNorm1d) for m in d.modules()) == 2
    assert not isinstance(d.encoder[1], nn.BatchNorm1d)
    out = d(torch.randn(5, *SHAPE))
    assert out.reconstruction.shape == (5, *SHAPE) and out.code.shape == (5, 128)


def test_classifier_has_hidden_layers_and_one_logit():
    _, d = build_networks("mlp", "classifier", SHAPE, 100, MLPConfig(n_layer_d=3, size_d=256))
    assert [(l.in_features, l.out_features) for l in linear_layers(d)] == [(1024, 256), (256, 256), (256, 1)]
    assert d(torch.randn(4, *SHAPE)).logit.shape == (4,)


def test_dropout_in_d_when_asked():
    _, d = build_networks("mlp", "autoencoder", SHAPE, 100, MLPConfig(n_layer_d=3, dropout_d=True))
    assert sum(isinstance(m, Dropout) and m.p > 0 for m in d.modules()) == 2


def test_init_follows_the_paper():
    torch.manual_seed(0)
    g, d = build_networks("mlp", "autoencoder", SHAPE, 100, MLPConfig(size_g=1600, size_d=1024))
    g_weights = torch.cat([l.weight.flatten() for l in linear_layers(g)])
    d_weights = torch.cat([l.weight.flatten() for l in linear_layers(d)])
    assert g_weights.std().item() == pytest.approx(0.02, rel=0.01)
    assert d_weights.std().item() == pytest.approx(0.002, rel=0.01)
    assert all((l.bias == 0).all() for l in linear_layers(g) + linear_layers(d))


def test_parameter_counts_of_the_paper_best_ebgan():
    g, d = build_networks("mlp", "autoencoder", SHAPE, 100, MLPConfig())
    assert count_parameters(g) == (100 * 800 + 800) + 3 * (800 * 800 + 800) + 4 * 2 * 800 + (800 * 1024 + 1024)
    assert count_parameters(d) == (1024 * 1024 + 1024) + (1024 * 1024 + 1024)


def test_invalid_sizes_are_rejected():
    with pytest.raises(ConfigError, match="n_layer_g"):
        build_networks("mlp", "autoencoder", SHAPE, 100, MLPConfig(n_layer_g=1))


@pytest.mark.parametrize("sizes", [(2, 16, 2, 16), (5, 64, 3, 32), (3, 800, 5, 1024)])
def test_parameter_count_before_allocation_is_exact(sizes):
    from ebm_bench.nets.mlp import parameter_count

    config = MLPConfig(*sizes)
    generator, discriminator = build_networks("mlp", "autoencoder", (1, 32, 32), 100, config)
    assert parameter_count(config, (1, 32, 32), 100) == count_parameters(generator) + count_parameters(discriminator)
