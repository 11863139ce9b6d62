"""The 64x64 conv nets: the EBGAN paper's auto-encoder (appendix C), DCGAN's G and D, BEGAN's own variant."""

import pytest
import torch
from torch import nn

from ebm_bench.errors import ConfigError
from ebm_bench.methods import pulling_away_term
from ebm_bench.nets import NETS, build_networks

SHAPE = (3, 64, 64)


@pytest.fixture(autouse=True)
def one_thread():
    """Two shared CPU cores: one intra-op thread keeps small convs from waiting on a busy second core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def convs(module, kind=(nn.Conv2d, nn.ConvTranspose2d)):
    return [m for m in module.modules() if isinstance(m, kind)]


def layer_shapes(sequential, x):
    """Output shape (C, H, W) after every conv layer of `sequential`."""
    shapes = []
    for layer in sequential:
        x = layer(x)
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            shapes.append(tuple(x.shape[1:]))
    return shapes


def test_both_architectures_are_registered():
    assert {"mlp", "dcgan", "began"} <= set(NETS)


def test_dcgan_generator_is_100_to_4x4x512_to_256_128_64_3_with_tanh():
    g, _ = build_networks("dcgan", "autoencoder", SHAPE, 100)
    layers = convs(g)
    assert all(isinstance(m, nn.ConvTranspose2d) and m.kernel_size == (4, 4) for m in layers)
    assert [(m.in_channels, m.out_channels) for m in layers] == [(100, 512), (512, 256), (256, 128), (128, 64),
                                                                 (64, 3)]
    assert [m.stride for m in layers] == [(1, 1)] + [(2, 2)] * 4
    assert layer_shapes(g.net, torch.randn(2, 100, 1, 1)) == [(512, 4, 4), (256, 8, 8), (128, 16, 16),
                                                              (64, 32, 32), (3, 64, 64)]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 4  # not on the output layer
    assert sum(isinstance(m, nn.ReLU) for m in g.modules()) == 4 and isinstance(g.net[-1], nn.Tanh)
    images = g(torch.randn(5, 100))  # (N, z) noise, reshaped inside G
    assert images.shape == (5, *SHAPE) and images.abs().max() <= 1.0


def test_autoencoder_is_the_papers_64_128_256_encoder_and_128_64_3_decoder():
    _, d = build_networks("dcgan", "autoencoder", SHAPE, 100)
    enc, dec = convs(d.encoder), convs(d.decoder)
    assert all(type(m) is nn.Conv2d for m in enc) and all(type(m) is nn.ConvTranspose2d for m in dec)
    assert [(m.in_channels, m.out_channels) for m in enc] == [(3, 64), (64, 128), (128, 256)]
    assert [(m.in_channels, m.out_channels) for m in dec] == [(256, 128), (128, 64), (64, 3)]
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) and m.padding == (1, 1) for m in enc + dec)
    x = torch.randn(4, *SHAPE)
    assert layer_shapes(d.encoder, x) == [(64, 32, 32), (128, 16, 16), (256, 8, 8)]
    assert layer_shapes(d.decoder, d.encoder(x)) == [(128, 16, 16), (64, 32, 32), (3, 64, 64)]
    out = d(x)
    assert out.reconstruction.shape == x.shape and out.code.shape == (4, 256, 8, 8) and out.logit is None


def test_autoencoder_batchnorm_and_activations_follow_dcgan_guidance():
    _, d = build_networks("dcgan", "autoencoder", SHAPE, 100)
    # no BatchNorm after the encoder's input layer or the decoder's output layer; after every other layer
    assert not isinstance(d.encoder[1], nn.BatchNorm2d) and isinstance(d.encoder[1], nn.LeakyReLU)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.encoder) == 2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.decoder) == 2
    leaky = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 5 and all(m.negative_slope == 0.2 for m in leaky)
    assert isinstance(d.decoder[-1], nn.ConvTranspose2d)  # linear reconstruction: no output activation
    assert not any(isinstance(m, (nn.Tanh, nn.Sigmoid, nn.ReLU)) for m in d.modules())


def test_classifier_is_the_dcgan_discriminator():
    _, d = build_networks("dcgan", "classifier", SHAPE, 100)
    layers = convs(d)
    assert [(m.in_channels, m.out_channels, m.stride) for m in layers] == [
        (3, 64, (2, 2)), (64, 128, (2, 2)), (128, 256, (2, 2)), (256, 512, (2, 2)), (512, 1, (1, 1))]
    assert all(m.kernel_size == (4, 4) for m in layers)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3 and isinstance(d.net[1], nn.LeakyReLU)
    out = d(torch.randn(3, *SHAPE))
    assert out.logit.shape == (3,) and out.reconstruction is None


def test_dcgan_init():
    torch.manual_seed(0)
    g, d = build_networks("dcgan", "autoencoder", SHAPE, 100)
    _, c = build_networks("dcgan", "classifier", SHAPE, 100)
    weights = torch.cat([m.weight.flatten() for net in (g, d, c) for m in convs(net)])
    assert weights.mean().item() == pytest.approx(0.0, abs=1e-3) and weights.std().item() == pytest.approx(0.02,
                                                                                                             rel=0.01)
    norms = [m for net in (g, d, c) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    gammas = torch.cat([m.weight for m in norms])
    assert gammas.mean().item() == pytest.approx(1.0, abs=0.01) and gammas.std().item() == pytest.approx(0.02,
                                                                                                           rel=0.1)
    assert all((m.bias == 0).all() for m in norms)
    assert all(m.bias is None or (m.bias == 0).all() for net in (g, d, c) for m in convs(net))


def test_the_pulling_away_term_sees_one_flattened_code_per_sample():
    _, d = build_networks("dcgan", "autoencoder", SHAPE, 100)
    pt = pulling_away_term(d(torch.randn(6, *SHAPE)).code)
    assert pt.dim() == 0 and 0.0 <= pt.item() <= 1.0


def test_began_architecture():
    g, d = build_networks("began", "autoencoder", SHAPE, 100)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) for m in list(g.modules()) + list(d.modules()))
    enc = convs(d.encoder)
    assert all(m.kernel_size == (3, 3) for m in enc + convs(d.decoder) + convs(g))
    assert [m.out_channels for m in enc] == [64, 64, 64, 64, 128, 128, 128, 192, 192, 192, 256, 256]  # n, 2n, 3n, 4n
    assert sum(m.stride == (2, 2) for m in enc) == 3  # sub-sampling 64 -> 32 -> 16 -> 8
    assert (d.encoder.fc.in_features, d.encoder.fc.out_features) == (8 * 8 * 256, 64)  # embedding h = 64
    upsample = [m for m in d.decoder.modules() if isinstance(m, nn.Upsample)]
    assert len(upsample) == 3 and all(m.mode == "nearest" for m in upsample)
    assert [m.out_channels for m in convs(d.decoder)] == [64] * 8 + [3]
    assert sum(isinstance(m, nn.ELU) for m in d.modules()) == 1 + 8 + 3 + 8
    x = torch.randn(2, *SHAPE)
    out = d(x)
    assert out.reconstruction.shape == x.shape and out.code.shape == (2, 64)
    images = g(torch.randn(2, 100))
    assert images.shape == (2, *SHAPE) and images.abs().max() <= 1.0
    assert type(g.decoder) is type(d.decoder) and g.decoder.fc.in_features == 100  # the decoder's form, from z


def test_began_has_no_classifier():
    with pytest.raises(ConfigError, match="only an auto-encoder D.*--arch dcgan"):
        build_networks("began", "classifier", SHAPE, 100)


@pytest.mark.parametrize("arch", ["dcgan", "began"])
def test_only_64x64_images(arch):
    with pytest.raises(ConfigError, match="64x64.*32x32"):
        build_networks(arch, "autoencoder", (1, 32, 32), 100)
    g, d = build_networks(arch, "autoencoder", (1, 64, 64), 100)  # other channel counts are fine
    assert g(torch.randn(2, 100)).shape == (2, 1, 64, 64) and d(torch.randn(2, 1, 64, 64)).reconstruction.shape == (
        2, 1, 64, 64)
