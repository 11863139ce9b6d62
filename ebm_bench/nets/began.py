"""BEGAN's own 64x64 architecture (Berthelot, Schumm, Metz 2017, section 3.5 and figure 1), n = 64 filters, h = 64:
- Encoder: 3x3 conv n, then 4 blocks of two 3x3 convs with (block + 1) * n filters (n, 2n, 3n, 4n: filters grow
  linearly with each down-sampling); blocks 1-3 end in a stride-2 3x3 conv (sub-sampling). 8x8x4n -> a fully
  connected layer to h, no non-linearity (the code).
- Decoder: fully connected h -> 8x8xn, no non-linearity, then 4 blocks of two 3x3 convs with n filters, blocks 1-3
  followed by nearest-neighbour 2x up-sampling; a last 3x3 conv to C channels, linear.
- G has the decoder's form with its own weights, input z_dim instead of h. Its output goes through Tanh: the
  harness's contract is that G's images lie in [-1, 1] (BEGAN's reference code leaves G linear and clips for
  display). ELU after every other conv, no BatchNorm anywhere.
- Init: the paper gives none; Xavier-uniform weights and zero biases, the default of the TensorFlow reference code.
- BEGAN's D is an auto-encoder only: asking for it with a classifier (GAN) is a ConfigError.
"""

from __future__ import annotations

import torch
from torch import nn

from ebm_bench.errors import ConfigError

from .base import DOutput
from .dcgan import check_64x64

BEGAN_FILTERS = 64  # n
BEGAN_EMBEDDING = 64  # h
BEGAN_BLOCKS = 4  # 64 -> 32 -> 16 -> 8: three sub-samplings, four blocks
BEGAN_BASE = 8  # the decoder starts at 8x8


def _conv3(n_in: int, n_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride, 1)


def _began_decoder_body(n: int, channels: int) -> nn.Sequential:
    """After the 8x8xn reshape: 4 blocks of (3x3 conv, ELU) x 2, nearest-neighbour 2x between them; linear to C."""
    layers: list[nn.Module] = []
    for block in range(BEGAN_BLOCKS):
        layers += [_conv3(n, n), nn.ELU(), _conv3(n, n), nn.ELU()]
        if block < BEGAN_BLOCKS - 1:
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    layers.append(_conv3(n, channels))
    return nn.Sequential(*layers)


def began_init(module: nn.Module) -> None:
    """Xavier-uniform weights, zero biases (the paper gives no init; this is the TF reference code's default)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class BEGANDecoder(nn.Module):
    """A vector (h, or z for G) -> FC to 8x8xn (linear) -> the decoder body -> C x 64 x 64."""

    def __init__(self, n_in: int, channels: int, n: int = BEGAN_FILTERS):
        super().__init__()
        self.n = n
        self.fc = nn.Linear(n_in, n * BEGAN_BASE * BEGAN_BASE)
        self.body = _began_decoder_body(n, channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(h.flatten(1)).view(len(h), self.n, BEGAN_BASE, BEGAN_BASE))


class BEGANEncoder(nn.Module):
    """C x 64 x 64 -> 3x3 conv n -> 4 blocks (n, 2n, 3n, 4n filters; stride-2 conv after the first 3) -> FC to h."""

    def __init__(self, channels: int, n: int = BEGAN_FILTERS, h: int = BEGAN_EMBEDDING):
        super().__init__()
        layers: list[nn.Module] = [_conv3(channels, n), nn.ELU()]
        width = n
        for block in range(BEGAN_BLOCKS):
            filters = n * (block + 1)
            layers += [_conv3(width, filters), nn.ELU(), _conv3(filters, filters), nn.ELU()]
            width = filters
            if block < BEGAN_BLOCKS - 1:
                layers += [_conv3(filters, filters, stride=2), nn.ELU()]
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(width * BEGAN_BASE * BEGAN_BASE, h)  # no non-linearity: the embedding

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(images).flatten(1))


class BEGANGenerator(nn.Module):
    """The decoder's form from z, with Tanh so that images lie in [-1, 1] (the harness's contract)."""

    def __init__(self, z_dim: int, channels: int):
        super().__init__()
        self.decoder = BEGANDecoder(z_dim, channels)
        began_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(z))


class BEGANAutoEncoder(nn.Module):
    """BEGAN's D: encoder to an h = 64 embedding (the code), decoder back to the image."""

    def __init__(self, channels: int):
        super().__init__()
        self.encoder = BEGANEncoder(channels)
        self.decoder = BEGANDecoder(BEGAN_EMBEDDING, channels)
        began_init(self)

    def forward(self, images: torch.Tensor) -> DOutput:
        code = self.encoder(images)
        return DOutput(reconstruction=self.decoder(code), code=code)


def build_began(energy_model: str, image_shape: tuple[int, int, int], z_dim: int, mlp_config=None
                ) -> tuple[nn.Module, nn.Module]:
    """(G, D) of BEGAN's own 64x64 architecture (auto-encoder D only)."""
    if energy_model != "autoencoder":
        raise ConfigError("the 'began' architecture has only an auto-encoder D, so it cannot run a method whose D is "
                          "a classifier (gan); use --arch dcgan for the GAN, or an auto-encoder method "
                          "(ebgan, ebgan-pt, began, magan) with --arch began")
    check_64x64("began", image_shape)
    channels = image_shape[0]
    return BEGANGenerator(z_dim, channels), BEGANAutoEncoder(channels)
