"""Tiny MLPs for the 2-D points of `gaussians-2d` (`--arch toy`), and a G frozen at a known density Q
(`--arch toy-fixed-q`), so that a D can be trained against a generator whose density is known.

toy: G: z -> (n_layer_g - 1) x [Linear(size_g), ReLU] -> Linear(2) -> tanh. D, an auto-encoder: 2 ->
(n_layer_d - 1) x [Linear(size_d), ReLU] (the code) -> Linear(2); or a classifier: the same hidden layers, then
Linear(1), the logit. `--n-layer-g 3 --size-g 128 --n-layer-d 2 --size-d 128` gives G z -> 128 -> 128 -> 2 and D
2 -> 128 -> 2 (or -> 1). No BatchNorm and no dropout (a 2-D toy does not need them, and an energy of one point
then never depends on the rest of its batch); PyTorch's default initialisation, not the MNIST MLPs' N(0, 0.002),
which would start D's output nearly constant over the plane.

Points travel as gaussians-2d's 3 x 1 x 1 images (x, y, 0): the nets read the first two channels and write zero
into the third, so a D's energy is a function of the point alone.
"""

from __future__ import annotations

import torch
from torch import nn

from ebm_bench.config import MLPConfig
from ebm_bench.datasets.gaussians import (
    DATA,
    NOISE_DIM,
    POINT_SHAPE,
    GaussianMixture,
    mixture_from_noise,
    to_images,
    to_points,
)
from ebm_bench.errors import ConfigError

from .base import DOutput

POINT_DIM = 2

# Q of `--arch toy-fixed-q`: a generator that has found half of P's modes (0, 2, 4 and 6 of gaussians-2d's eight)
# and blurs them (std 0.05, 2.5 times P's). Inside P's mass log Q/P then separates the modes Q covers (about -1)
# from those it misses (about -76) while -log P is the same on every mode, so an energy that tracks log Q/P and one
# that tracks -log P rank the data's own points differently. Away from the data, log Q/P ~ -log P for any Q
# broader than P: there the probe asks whether an energy rises off the data at all.
FROZEN_Q = GaussianMixture(DATA.means[::2], 0.05)


def _hidden(n_in: int, width: int, layers: int) -> nn.Sequential:
    stack: list[nn.Module] = []
    for i in range(layers):
        stack += [nn.Linear(n_in if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*stack)


class PointGenerator(nn.Module):
    def __init__(self, config: MLPConfig, z_dim: int):
        super().__init__()
        self.hidden = _hidden(z_dim, config.size_g, config.n_layer_g - 1)
        self.output = nn.Linear(config.size_g, POINT_DIM)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return to_images(torch.tanh(self.output(self.hidden(z))))


class FrozenGenerator(nn.Module):
    """G fixed at `density`: its samples are exactly the mixture's (mixture_from_noise of z's first three
    coordinates), whatever the G loss, so D trains against a Q whose log density is known."""

    def __init__(self, density: GaussianMixture):
        super().__init__()
        self.density = density
        # not saved with a checkpoint: Q is the code's, the same `density` the probe reads
        self.register_buffer("means", density.means_tensor(), persistent=False)
        # The harness gives G an optimiser, which refuses an empty parameter list, and back-propagates L_G into G,
        # which needs a graph to G's output. This one parameter gives both; it enters the output times 0, so its
        # gradient is exactly 0 and no optimiser step (Adam's or SGD's) moves it, nor the samples. One element, not
        # a scalar: a pack stacks and flattens each parameter per run (ebm_bench.pack).
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return to_images(mixture_from_noise(z, self.means.to(z.dtype), self.density.std) + 0.0 * self.anchor)


class PointAutoEncoder(nn.Module):
    def __init__(self, config: MLPConfig):
        super().__init__()
        self.encoder = _hidden(POINT_DIM, config.size_d, config.n_layer_d - 1)
        self.decoder = nn.Linear(config.size_d, POINT_DIM)

    def forward(self, images: torch.Tensor) -> DOutput:
        code = self.encoder(to_points(images))
        return DOutput(reconstruction=to_images(self.decoder(code)), code=code)


class PointClassifier(nn.Module):
    def __init__(self, config: MLPConfig):
        super().__init__()
        self.hidden = _hidden(POINT_DIM, config.size_d, config.n_layer_d - 1)
        self.output = nn.Linear(config.size_d, 1)

    def forward(self, images: torch.Tensor) -> DOutput:
        return DOutput(logit=self.output(self.hidden(to_points(images))).squeeze(1))


def _check(arch: str, image_shape: tuple[int, int, int], mlp: MLPConfig) -> None:
    mlp.validate()
    if tuple(image_shape) != POINT_SHAPE:
        shape = " x ".join(map(str, image_shape))
        raise ConfigError(f"architecture {arch!r} takes the 2-D points of dataset gaussians-2d (3 x 1 x 1), not "
                          f"images of shape {shape}; use --arch mlp for MNIST or dcgan for 64x64 images")
    if mlp.dropout_d:
        raise ConfigError(f"architecture {arch!r} has no dropout; leave out --dropout-d")


def _discriminator(energy_model: str, mlp: MLPConfig) -> nn.Module:
    return PointAutoEncoder(mlp) if energy_model == "autoencoder" else PointClassifier(mlp)


def build_toy(energy_model: str, image_shape: tuple[int, int, int], z_dim: int, mlp: MLPConfig
              ) -> tuple[nn.Module, nn.Module]:
    """Tiny MLPs for 2-D points (gaussians-2d): G z -> size_g -> 2, D 2 -> size_d -> 2 (auto-encoder) or -> 1."""
    _check("toy", image_shape, mlp)
    return PointGenerator(mlp, z_dim), _discriminator(energy_model, mlp)


def build_toy_fixed_q(energy_model: str, image_shape: tuple[int, int, int], z_dim: int, mlp: MLPConfig
                      ) -> tuple[nn.Module, nn.Module]:
    """toy's D against a G frozen at a known density Q (4 of the 8 modes, std 0.05); the G loss has no effect."""
    _check("toy-fixed-q", image_shape, mlp)
    if z_dim < NOISE_DIM:
        raise ConfigError(f"architecture 'toy-fixed-q' draws Q's samples from the first {NOISE_DIM} noise "
                          f"coordinates; use --z-dim {NOISE_DIM} or more, not {z_dim}")
    return FrozenGenerator(FROZEN_Q), _discriminator(energy_model, mlp)
