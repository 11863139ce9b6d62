"""The EBGAN paper's 64x64 convolutional networks (appendix C, "LSUN & CelebA"): "dcgan", the matched-comparison
default for CelebA and LSUN.

- G: the DCGAN generator. z (reshaped to z x 1 x 1) -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64xC,
  transposed 4x4 convolutions (the first stride 1 from 1x1, the rest stride 2), BatchNorm + ReLU after every layer
  but the last, Tanh output.
- Auto-encoder D, exactly the paper's: Enc (64)4c2s-(128)4c2s-(256)4c2s, Dec (128)4c2s-(64)4c2s-(C)4c2s with
  strided convolutions down and transposed ("fractional-strided") convolutions up; the paper says it uses no
  upsampling or unpooling, and we use none. Choices the paper leaves open, made by DCGAN's guidance, which the
  paper says it follows:
  * BatchNorm after every layer except the encoder's input layer and the decoder's output layer (DCGAN: "not on
    the discriminator input layer or the generator output layer").
  * LeakyReLU(0.2) after every hidden layer, decoder included. DCGAN prescribes LeakyReLU "in the discriminator for
    all layers", and the decoder is part of D; it also keeps G's gradient, which passes through the whole
    auto-encoder, non-zero wherever a unit is negative.
  * No output activation: the reconstruction is linear, as in the MNIST auto-encoder and BEGAN's decoder. A Tanh
    would saturate exactly where the hinge needs a large residual and bound the energy a generated sample can
    reach (the margin is in L2-norm units: 80 for LSUN of at most 2 * sqrt(64*64*3) ~ 222).
  * The code (what the pulling-away term sees) is the encoder output after its BatchNorm and LeakyReLU,
    256 x 8 x 8 per sample, as the MLP auto-encoder's code is its last hidden layer's activation.
- Classifier D (GAN): the DCGAN discriminator, 4 stride-2 4x4 convolutions 64-128-256-512 with BatchNorm (not on
  the first), LeakyReLU 0.2, then a 4x4 valid convolution to one logit (no Sigmoid: the loss takes logits).
- Init (DCGAN): conv weights N(0, 0.02), BatchNorm gamma N(1, 0.02) and beta 0, biases 0. Convolutions followed by
  BatchNorm have no bias (BatchNorm's beta replaces it).
"""

from __future__ import annotations

import torch
from torch import nn

from ebm_bench.errors import ConfigError

from .base import DOutput

IMAGE_SIZE = 64
DCGAN_INIT_STD = 0.02
LEAK = 0.2
G_WIDTHS = (512, 256, 128, 64)  # DCGAN G, from the 4x4 input layer up
ENCODER_WIDTHS = (64, 128, 256)  # the paper's (64)4c2s-(128)4c2s-(256)4c2s
DECODER_WIDTHS = (128, 64)  # then (C)4c2s
CLASSIFIER_WIDTHS = (64, 128, 256, 512)


def check_64x64(arch: str, image_shape: tuple[int, int, int]) -> None:
    channels, height, width = image_shape
    if (height, width) != (IMAGE_SIZE, IMAGE_SIZE):
        raise ConfigError(f"the {arch!r} architecture is built for {IMAGE_SIZE}x{IMAGE_SIZE} images, but the data "
                          f"is {height}x{width}; use --image-size 64 with a 64x64 dataset (celeba, lsun-bedroom, "
                          "folder), or --arch mlp for MNIST")
    if channels < 1:
        raise ConfigError(f"images need at least one channel, got shape {image_shape}")


# -- DCGAN family ------------------------------------------------------------------------------------------------
def _down(n_in: int, n_out: int, batchnorm: bool) -> list[nn.Module]:
    """4x4 stride-2 conv (halves the size) [-> BatchNorm] -> LeakyReLU 0.2."""
    layers: list[nn.Module] = [nn.Conv2d(n_in, n_out, 4, 2, 1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(n_out))
    return layers + [nn.LeakyReLU(LEAK)]


def _up(n_in: int, n_out: int, activation: nn.Module) -> list[nn.Module]:
    """4x4 stride-2 transposed conv (doubles the size) -> BatchNorm -> activation."""
    return [nn.ConvTranspose2d(n_in, n_out, 4, 2, 1, bias=False), nn.BatchNorm2d(n_out), activation]


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's init: conv weights N(0, 0.02), BatchNorm gamma N(1, 0.02), beta and biases 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, DCGAN_INIT_STD)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, DCGAN_INIT_STD)
            nn.init.zeros_(layer.bias)


class DCGANGenerator(nn.Module):
    """z -> 4x4x512 -> 256 -> 128 -> 64 -> C at 64x64, BatchNorm + ReLU, Tanh output."""

    def __init__(self, z_dim: int, channels: int):
        super().__init__()
        first, *rest = G_WIDTHS
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, first, 4, 1, 0, bias=False), nn.BatchNorm2d(first),
                                   nn.ReLU()]
        for n_in, n_out in zip(G_WIDTHS[:-1], rest):
            layers += _up(n_in, n_out, nn.ReLU())
        layers += [nn.ConvTranspose2d(G_WIDTHS[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(len(z), -1, 1, 1))


class DCGANAutoEncoder(nn.Module):
    """The paper's auto-encoder D: Enc (64)4c2s-(128)4c2s-(256)4c2s, Dec (128)4c2s-(64)4c2s-(C)4c2s."""

    def __init__(self, channels: int):
        super().__init__()
        encoder: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip((channels,) + ENCODER_WIDTHS[:-1], ENCODER_WIDTHS)):
            encoder += _down(n_in, n_out, batchnorm=i > 0)  # no BatchNorm on the input layer
        decoder: list[nn.Module] = []
        for n_in, n_out in zip(ENCODER_WIDTHS[-1:] + DECODER_WIDTHS[:-1], DECODER_WIDTHS):
            decoder += _up(n_in, n_out, nn.LeakyReLU(LEAK))
        decoder.append(nn.ConvTranspose2d(DECODER_WIDTHS[-1], channels, 4, 2, 1))  # linear, with a bias
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        dcgan_init(self)

    def forward(self, images: torch.Tensor) -> DOutput:
        code = self.encoder(images)
        return DOutput(reconstruction=self.decoder(code), code=code)


class DCGANClassifier(nn.Module):
    """DCGAN's discriminator: 64-128-256-512 stride-2 convs, then a 4x4 conv to one logit."""

    def __init__(self, channels: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip((channels,) + CLASSIFIER_WIDTHS[:-1], CLASSIFIER_WIDTHS)):
            layers += _down(n_in, n_out, batchnorm=i > 0)
        layers.append(nn.Conv2d(CLASSIFIER_WIDTHS[-1], 1, 4, 1, 0))  # 4x4 -> 1x1
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, images: torch.Tensor) -> DOutput:
        return DOutput(logit=self.net(images).flatten())


def build_dcgan(energy_model: str, image_shape: tuple[int, int, int], z_dim: int, mlp_config=None
                ) -> tuple[nn.Module, nn.Module]:
    """(G, D) of the EBGAN paper's 64x64 setting; `mlp_config` is ignored (the sizes are the paper's)."""
    check_64x64("dcgan", image_shape)
    channels = image_shape[0]
    discriminator = DCGANAutoEncoder if energy_model == "autoencoder" else DCGANClassifier
    return DCGANGenerator(z_dim, channels), discriminator(channels)


