"""`gaussians-2d`: eight Gaussians on a ring, a 2-D dataset whose density P is known exactly.

Why: the critique of EBGAN (issue 23) is about what a discriminator at its optimum computes, log Q/P for GAN's
logistic loss and something unknown for EBGAN's hinge. On digits neither P nor Q is known. Here P is, and so is Q
when G is frozen at a known density (`--arch toy-fixed-q`, ebm_bench.nets.toy), so a trained D's energy can be
set against -log P and log Q/P point by point (ebm_bench.density_probe).

P is the standard toy (8 modes on a ring of radius 2, std 0.05) scaled by 0.4 into the harness's [-1, 1] range:
means 0.8 (cos 2 pi k / 8, sin 2 pi k / 8), std 0.02 in each coordinate, equal weights. The range's edge is 10
std from the nearest mode, so no point leaves it in practice; none is clipped, which keeps log P exact.

Layout: the dataset registry takes square images of 1 or 3 channels, so a point (x, y) is stored as a 3 x 1 x 1
image (x, y, 0). The toy nets read and write the first two channels only (`to_points`, `to_images`).

Data: N_POINTS points drawn once from DATA_SEED, the same for every run (as MNIST's digits are), the last
`holdout` of them held out; the run seed orders the batches. The manifest's sha256 is a fingerprint of the
mixture's parameters, the number of points, the seed and the sampler's version (cheap, as for the image sets).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass

import torch

from ebm_bench.errors import ConfigError

from .images import fingerprint, split_tail
from .loading import TensorBatches
from .spec import DatasetSpec, TrainingData

NAME = "gaussians-2d"
POINT_SHAPE = (3, 1, 1)  # (x, y, 0): see the module's docstring
N_POINTS = 100_000
DATA_SEED = 20161103  # the training and held-out points: the same for every run
SAMPLER_VERSION = "ndtr-component-v1"  # in the fingerprint: change it with `mixture_from_noise`
NOISE_DIM = 3  # one coordinate picks the component, two place the point around its mean


def mixture_from_noise(noise: torch.Tensor, means: torch.Tensor, std: float) -> torch.Tensor:
    """Samples of an equal-weight mixture of isotropic Gaussians from standard normal noise (N x >= 3): the
    component is floor(K Phi(z_0)) (uniform, as Phi(z_0) is), the point its mean + std (z_1, z_2). A deterministic
    function of the noise, so that a fixed generator can be exactly this mixture."""
    k = len(means)
    component = (torch.special.ndtr(noise[:, 0]) * k).long().clamp(max=k - 1)  # Phi = 1 only in float round-off
    return means[component] + std * noise[:, 1:NOISE_DIM]


@dataclass(frozen=True)
class GaussianMixture:
    """An equal-weight mixture of isotropic 2-D Gaussians: exact log density and an exact sampler."""

    means: tuple[tuple[float, float], ...]
    std: float

    def means_tensor(self, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.tensor(self.means, dtype=dtype, device=device)

    def log_density(self, points: torch.Tensor) -> torch.Tensor:
        """log P(x) of N x 2 points, in float64: log (1/K) sum_k N(x; mu_k, std^2 I), by log-sum-exp (points far
        from every mode have densities below float64's smallest number, their logs do not)."""
        points = torch.as_tensor(points).double().cpu()
        squared = (points[:, None, :] - self.means_tensor(torch.float64)[None]).square().sum(dim=2)  # N x K
        variance = self.std ** 2
        log_normal = -squared / (2 * variance) - math.log(2 * math.pi * variance)
        return torch.logsumexp(log_normal, dim=1) - math.log(len(self.means))

    def from_noise(self, noise: torch.Tensor) -> torch.Tensor:
        return mixture_from_noise(noise, self.means_tensor(noise.dtype, noise.device), self.std)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n points (N x 2, float32) drawn with `generator`."""
        return self.from_noise(torch.randn(n, NOISE_DIM, generator=generator))

    def parameters(self) -> dict[str, object]:
        return {"means": [list(m) for m in self.means], "std": self.std}


def ring(modes: int, radius: float, std: float) -> GaussianMixture:
    """`modes` equal Gaussians spaced evenly on a circle, the first on the positive x axis."""
    angles = [2 * math.pi * k / modes for k in range(modes)]
    return GaussianMixture(tuple((radius * math.cos(a), radius * math.sin(a)) for a in angles), std)


DATA = ring(8, 0.8, 0.02)  # P


def to_images(points: torch.Tensor) -> torch.Tensor:
    """N x 2 points -> N x 3 x 1 x 1 images (x, y, 0), the layout the harness trains on."""
    return torch.cat([points, points.new_zeros(len(points), 1)], dim=1).view(len(points), *POINT_SHAPE)


def to_points(images: torch.Tensor) -> torch.Tensor:
    """N x 3 x 1 x 1 images -> their N x 2 points (the third channel is not part of a point)."""
    return images[:, :2, 0, 0]


@functools.lru_cache(maxsize=1)  # runs of one invocation share the points (they are never modified)
def data_points() -> torch.Tensor:
    """The dataset's N_POINTS points of P, N x 2 float32, drawn from DATA_SEED."""
    return DATA.sample(N_POINTS, torch.Generator().manual_seed(DATA_SEED))


def data_fingerprint() -> str:
    return fingerprint(NAME, json.dumps(DATA.parameters(), sort_keys=True), str(N_POINTS), str(DATA_SEED),
                       SAMPLER_VERSION)


class PointBatches:
    """Seeded, resumable batches of points as 3 x 1 x 1 images: TensorBatches' order (one permutation per epoch
    from the run seed, the last incomplete batch dropped) over float values, which TensorBatches would rescale as
    uint8 pixels (and so would a packed run gathering from its tensor: this is not a TensorBatches)."""

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, device: torch.device):
        self.order = TensorBatches(images, batch_size, seed, device)
        self.batches_per_epoch = self.order.batches_per_epoch

    def next(self) -> torch.Tensor:
        return self.order.images[self.order.next_index()]

    def state_dict(self) -> dict:
        return self.order.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.order.load_state_dict(state)


def load_gaussians_training(root, image_size: int, batch_size: int, seed: int, holdout: int,
                            device: torch.device, download: bool = True) -> TrainingData:
    """Eight Gaussians on a ring (exact density), 2-D points as 3x1x1 images, 95k train + 5k held out by default."""
    points = data_points()
    n = len(points)
    if not 0 <= holdout <= n // 2:
        raise ConfigError(f"--holdout {holdout} is out of range; use 0..{n // 2} held-out points of {NAME}")
    n_train = split_tail(n, holdout, batch_size, NAME)
    images = to_images(points)
    return TrainingData(batches=PointBatches(images[:n_train], batch_size, seed, device),
                        holdout=images[n_train:].to(device), image_shape=POINT_SHAPE, n_train=n_train,
                        sha256=data_fingerprint())


SPEC = DatasetSpec(
    name=NAME, description="8 Gaussians on a ring (radius 0.8, std 0.02; exact log P), 2-D points as 3x1x1 images, "
                           "95k train + 5k held out; nets: toy (default) or toy-fixed-q",
    load=load_gaussians_training, image_sizes=(1,), channels=3, default_arch="toy", reference="holdout",
    classifier=False)
