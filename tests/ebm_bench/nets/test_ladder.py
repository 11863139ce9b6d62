"""The ladder network (ebm_bench.nets.ladder): its shapes, its noise, its combinator and its clean-path classifier,
against hand computations on tiny batches."""

from __future__ import annotations

import math

import pytest
import torch

from ebm_bench.config import MLPConfig
from ebm_bench.errors import ConfigError
from ebm_bench.nets import build_networks
from ebm_bench.nets.ladder import LADDER_SIZES, NOISE_STD, LadderNet, VanillaCombinator, to_unit_interval


def test_the_paper_s_ladder_has_its_layer_sizes_and_the_shapes_of_every_path():
    torch.manual_seed(0)
    generator, net = build_networks("ladder", "autoencoder", (1, 28, 28), 8, MLPConfig(2, 16, 2, 16))
    assert LADDER_SIZES == (784, 1000, 500, 250, 250, 250, 10)
    assert [layer.weight.shape for layer in net.encoder] == [(1000, 784), (500, 1000), (250, 500), (250, 250),
                                                             (250, 250), (10, 250)]
    assert [layer.weight.shape for layer in net.decoder] == [(784, 1000), (1000, 500), (500, 250), (250, 250),
                                                             (250, 250), (250, 10)]
    images = generator(torch.randn(3, 8))
    assert images.shape == (3, 1, 28, 28)
    zs, logits = net.encode(to_unit_interval(images.flatten(1)), noisy=True)
    assert [tuple(z.shape) for z in zs] == [(3, n) for n in LADDER_SIZES] and logits.shape == (3, 10)
    out = net(images)
    assert out.reconstruction.shape == images.shape and out.class_logits.shape == (3, 10) and out.code.shape == (3, 10)


def test_the_ladder_refuses_images_that_are_not_784_pixels_and_a_classifier_d():
    with pytest.raises(ConfigError, match="28 x 28"):
        build_networks("ladder", "autoencoder", (1, 32, 32), 8, MLPConfig(2, 16, 2, 16))
    with pytest.raises(ConfigError, match="auto-encoder"):
        build_networks("ladder", "classifier", (1, 28, 28), 8, MLPConfig(2, 16, 2, 16))


def test_the_corrupted_path_adds_noise_of_std_0_3_to_the_input_and_every_layer_and_the_clean_path_none():
    net = LadderNet(sizes=(2, 3, 2))
    x = torch.tensor([[0.0, 1.0], [0.5, 0.25], [1.0, 0.0], [0.25, 0.75]])
    torch.manual_seed(7)
    noisy, _ = net.encode(x, noisy=True)
    torch.manual_seed(7)
    draws = torch.randn(4, 2)  # the input's noise is the first draw after the seed
    assert NOISE_STD == 0.3
    torch.testing.assert_close(noisy[0], x + 0.3 * draws)
    clean, _ = net.encode(x, noisy=False)
    torch.testing.assert_close(clean[0], x)  # no noise on the clean path
    # every layer above: the clean z normalised by the batch's statistics, plus N(0, 0.3^2); a wide layer shows it
    wide = LadderNet(sizes=(2, 4000, 2))
    big = torch.rand(200, 2)
    torch.manual_seed(1)
    noisy, _ = wide.encode(big, noisy=True)
    torch.manual_seed(1)
    _ = torch.randn(200, 2)
    layer_noise = torch.randn(200, 4000)
    torch.testing.assert_close(noisy[1] - layer_noise * 0.3, wide.encoder_norms[0](wide.encoder[0](noisy[0])))
    assert noisy[1].std().item() == pytest.approx(math.sqrt(1 + 0.09), rel=0.01)  # BatchNorm's unit var + 0.3^2


def test_the_vanilla_combinator_starts_as_the_identity_in_z_and_computes_its_formula():
    g = VanillaCombinator(3)
    z, u = torch.tensor([[0.0, 1.0, -2.0]]), torch.tensor([[5.0, -1.0, 0.5]])
    torch.testing.assert_close(g(z, u), z)  # w0z = w1z = 1, the rest 0: g = z whatever u
    with torch.no_grad():
        g.ws.fill_(1.0)
    # g = z + sigmoid(z): 0 -> 0.5, 1 -> 1.7310586, -2 -> -1.8807971
    torch.testing.assert_close(g(z, u), torch.tensor([[0.5, 1.7310586, -1.8807971]]))
    with torch.no_grad():
        g.w0u.fill_(2.0), g.b0.fill_(1.0), g.w1zu.fill_(1.0)
    # 1 + z + 2u + sigmoid(z + z u): z=0,u=5 -> 1 + 10 + 0.5 = 11.5; z=1,u=-1 -> 1 + 1 - 2 + sigmoid(0) = 0.5
    torch.testing.assert_close(g(z, u)[0, :2], torch.tensor([11.5, 0.5]))


def test_eval_mode_is_the_clean_path_and_classify_leaves_d_as_it_was():
    torch.manual_seed(0)
    net = LadderNet()
    images = torch.rand(8, 1, 28, 28) * 2 - 1
    net.train()
    net(images)  # moves the running statistics
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    net.eval()
    first, second = net(images), net(images)
    torch.testing.assert_close(first.reconstruction, second.reconstruction)  # no noise: deterministic
    net.train()
    logits = net.classify(images[:4], torch.rand(50, 1, 28, 28) * 2 - 1, batch_size=10)
    assert logits.shape == (4, 10) and net.training
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in saved.items())
    assert all(norm.momentum == 0.1 for norm in net.encoder_norms)
    again = net.classify(images[:4], torch.rand(50, 1, 28, 28) * 2 - 1, batch_size=50)
    assert not torch.equal(logits, again)  # the calibration set, not training's running statistics, normalises


def test_classify_normalises_with_the_calibration_set_s_average_batch_statistics():
    net = LadderNet(sizes=(2, 1, 2))
    with torch.no_grad():
        net.encoder[0].weight.fill_(1.0)  # z_pre = x0 + x1
        net.encoder[1].weight.copy_(torch.tensor([[1.0], [-1.0]]))
    # calibration batches of 2: sums (0 + 2) and (2 + 4) -> batch means 1 and 3, averaged: 2; unbiased variances
    # 2 and 2 -> 2. A test image of sum 2 + sqrt(2) normalises to 1 at layer 1.
    calibration = from_pairs([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    net.classify(from_pairs([[1.0, 1.0]]), calibration, batch_size=2)
    norm = net.encoder_norms[0]
    saved_mean = norm.running_mean.clone()
    captured = []
    norm.register_forward_hook(lambda module, args, out: captured.append(out.clone()))
    test = from_pairs([[1.0 + math.sqrt(2) / 2, 1.0 + math.sqrt(2) / 2]])
    net.classify(test, calibration, batch_size=2)
    assert captured[-1].item() == pytest.approx(1.0, abs=1e-4)  # the last call: the test image
    assert torch.equal(norm.running_mean, saved_mean)


def from_pairs(pairs):
    """[0, 1] pixel pairs as the harness's [-1, 1] images of shape N x 1 x 1 x 2."""
    return (torch.tensor(pairs) * 2 - 1).view(len(pairs), 1, 1, 2)
