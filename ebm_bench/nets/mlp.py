"""The EBGAN paper's MNIST MLPs (section 4.1, appendix C), for both kinds of discriminator.

Layer counts follow the spec: nLayerG counts G's output layer; nLayerD counts the encoder layers plus the
one-layer decoder (auto-encoder D) or the hidden layers plus the logit layer (classifier D). BatchNorm follows
every weight layer except G's output layer, D's input layer and D's output layer.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from ebm_bench.config import MLPConfig
from ebm_bench.errors import ConfigError

from .base import DOutput, Dropout

D_INIT_STD = 0.002
G_INIT_STD = 0.02
DROPOUT_P = 0.5


def dropout_rate(config: MLPConfig) -> float:
    return DROPOUT_P if config.dropout_d else 0.0


def _init_linear(module: nn.Module, std: float) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, std)
            nn.init.zeros_(layer.bias)


def _hidden_stack(sizes: list[int], batchnorm_first: bool, dropout: float | None) -> nn.Sequential:
    """Linear -> [BatchNorm] -> ReLU [-> Dropout] for each consecutive pair of sizes.

    D always has its Dropout layers, at rate 0 when dropout is off: with and without dropout are then one
    architecture, and runs of both pack together (the rate is per run). G has none (`dropout` None).
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i > 0 or batchnorm_first:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(nn.ReLU())
        if dropout is not None:
            layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, config: MLPConfig, image_shape: tuple[int, int, int], z_dim: int):
        super().__init__()
        self.image_shape = image_shape
        hidden = [z_dim] + [config.size_g] * (config.n_layer_g - 1)
        self.hidden = _hidden_stack(hidden, batchnorm_first=True, dropout=None)
        self.output = nn.Linear(config.size_g, math.prod(image_shape))
        _init_linear(self, G_INIT_STD)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.output(self.hidden(z))).view(len(z), *self.image_shape)


class MLPAutoEncoder(nn.Module):
    """Enc: nLayerD - 1 linear layers of width sizeD; Dec: one linear layer back to the image."""

    def __init__(self, config: MLPConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        pixels = math.prod(image_shape)
        stack = _hidden_stack([pixels] + [config.size_d] * (config.n_layer_d - 1),
                              batchnorm_first=False, dropout=dropout_rate(config))
        # The code (what the pulling-away term sees) is taken before the last dropout, which feeds the decoder.
        self.encoder, self.dropout = stack[:-1], stack[-1]
        self.decoder = nn.Linear(config.size_d, pixels)
        _init_linear(self, D_INIT_STD)

    def forward(self, images: torch.Tensor) -> DOutput:
        code = self.encoder(images.flatten(1))
        reconstruction = self.decoder(self.dropout(code)).view_as(images)
        return DOutput(reconstruction=reconstruction, code=code)


class MLPClassifier(nn.Module):
    """nLayerD - 1 hidden layers of width sizeD, then a linear layer to one logit."""

    def __init__(self, config: MLPConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        pixels = math.prod(image_shape)
        self.hidden = _hidden_stack([pixels] + [config.size_d] * (config.n_layer_d - 1),
                                    batchnorm_first=False, dropout=dropout_rate(config))
        self.output = nn.Linear(config.size_d, 1)
        _init_linear(self, D_INIT_STD)

    def forward(self, images: torch.Tensor) -> DOutput:
        return DOutput(logit=self.output(self.hidden(images.flatten(1))).squeeze(1))


def parameter_count(mlp: MLPConfig, image_shape: tuple[int, int, int], z_dim: int) -> int:
    """Parameters of G and of the larger D (the auto-encoder), counted before anything is allocated."""
    pixels, g, d = math.prod(image_shape), mlp.size_g, mlp.size_d
    generator = (z_dim * g + g) + (mlp.n_layer_g - 2) * (g * g + g) + (g * pixels + pixels)
    generator += (mlp.n_layer_g - 1) * 2 * g  # BatchNorm after every hidden layer
    discriminator = (pixels * d + d) + (mlp.n_layer_d - 2) * (d * d + d) + (d * pixels + pixels)
    discriminator += (mlp.n_layer_d - 2) * 2 * d  # BatchNorm after every hidden layer but the first
    return generator + discriminator


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: let the allocation itself fail


def build_mlp(energy_model: str, image_shape: tuple[int, int, int], z_dim: int, mlp: MLPConfig
              ) -> tuple[nn.Module, nn.Module]:
    """(G, D) of the paper's MLPs with the sizes in `mlp`; D is an auto-encoder or a classifier."""
    mlp.validate()
    # Training holds 4 copies of every weight (value, gradient, Adam's two moments), in float32.
    needed = 4 * 4 * parameter_count(mlp, image_shape, z_dim)
    if needed > _physical_memory():
        raise ConfigError(f"these MLPs (z_dim={z_dim}, size_g={mlp.size_g}, size_d={mlp.size_d}) need about "
                          f"{needed / 2**30:,.0f} GiB to train, more than this machine's "
                          f"{_physical_memory() / 2**30:,.0f} GiB; lower --z-dim or --size-g/--size-d")
    discriminator = MLPAutoEncoder if energy_model == "autoencoder" else MLPClassifier
    return MLPGenerator(mlp, image_shape, z_dim), discriminator(mlp, image_shape)
