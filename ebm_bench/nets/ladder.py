"""The ladder network (Rasmus et al. 2015) with the reconstruction cost at the bottom layer only, as EBGAN's D for
the semi-supervised task (EBGAN paper section 4.2, appendix D); G is the paper's MNIST MLP G.

Encoder 784-1000-500-250-250-250-10: each layer z_pre = W h (no bias), z = BatchNorm(z_pre) (batch statistics,
no affine), then h = ReLU(z + beta); the top layer gives the class logits gamma * (z + beta) (softmax).
The corrupted path adds Gaussian noise of std 0.3 to the input and to every z (Rasmus et al. Algorithm 1); it is
the path D trains on (the cross-entropy of the labelled images and the decoder's input). The clean path has no
noise: it is what D evaluates with (module.eval()), and what classifies the test digits (`classify`).
Decoder, top down: u_L = BatchNorm(softmax(logits)), then z_hat_l = g_l(z~_l, u_l) and
u_(l-1) = BatchNorm(V_l z_hat_l) down to the input, where x_hat = z_hat_0. g is the "vanilla" combinator of
Pezeshki et al. (2015, eq. 6), per unit:
  g(z, u) = b0 + w0z z + w0u u + w0zu z u + ws sigmoid(b1 + w1z z + w1u u + w1zu z u),
initialised to w0z = w1z = 1, the rest 0 (ws too), so that g starts as the identity in z~: the bottom reconstruction
begins as the noisy input, a cost of about 0.3^2 * 784 * lambda = 90 per digit. (Starting ws at 1, as some
re-implementations do, adds sigmoid(z~), about 0.6 per pixel, a cost of about 400 whose gradient swamped the
classifier's for hundreds of steps at the paper's lr 2e-4: 10.0% test error after 400 steps with 1,000 labels,
against 9.5%.) With the cost at the bottom only, the clean path's targets of the
upper layers are never needed in training: only x itself is a target.

Units. Images reach D in the harness's [-1, 1]; the ladder works in the ladder papers' [0, 1] (their noise std and
reconstruction weight are in those units): D maps x to (x + 1) / 2 on the way in and x_hat back to 2 x_hat - 1 on
the way out, so `reconstruction` compares with the input as every auto-encoder D's does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ebm_bench.config import MLPConfig
from ebm_bench.errors import ConfigError

from .base import DOutput
from .mlp import MLPGenerator

LADDER_SIZES = (784, 1000, 500, 250, 250, 250, 10)
NOISE_STD = 0.3  # in [0, 1] pixel units at the input, in BatchNorm units above it
CALIBRATION_BATCH = 1000  # the clean path's BatchNorm statistics are averaged over batches of this many images


def to_unit_interval(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (the harness's pixel range) -> [0, 1] (the ladder papers')."""
    return (images + 1) / 2


def from_unit_interval(images: torch.Tensor) -> torch.Tensor:
    return images * 2 - 1


@dataclass
class LadderOutput(DOutput):
    """D's output with the class logits of the path it ran (corrupted in training, clean in eval mode); its code
    is the top layer's normalised z of that path."""

    class_logits: torch.Tensor | None = None  # (N, classes)


class VanillaCombinator(nn.Module):
    """g(z~, u) of Pezeshki et al. (2015) eq. 6, one set of nine weights per unit."""

    def __init__(self, width: int):
        super().__init__()
        ones, zeros = (lambda: nn.Parameter(torch.ones(width))), (lambda: nn.Parameter(torch.zeros(width)))
        self.b0, self.w0z, self.w0u, self.w0zu, self.ws = zeros(), ones(), zeros(), zeros(), zeros()
        self.b1, self.w1z, self.w1u, self.w1zu = zeros(), ones(), zeros(), zeros()

    def forward(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.b1 + self.w1z * z + self.w1u * u + self.w1zu * z * u)
        return self.b0 + self.w0z * z + self.w0u * u + self.w0zu * z * u + self.ws * gate


def _linear(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out, bias=False)  # BatchNorm follows: a bias would be normalised away
    nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(n_in))  # Rasmus et al.'s N(0, 1) / sqrt(fan-in)
    return layer


class LadderNet(nn.Module):
    """The bottom-layer-cost ladder network: an auto-encoder D that also classifies (`LadderOutput.class_logits`)."""

    def __init__(self, sizes: tuple[int, ...] = LADDER_SIZES, noise_std: float = NOISE_STD):
        super().__init__()
        self.sizes, self.noise_std = tuple(sizes), noise_std
        pairs = list(zip(sizes[:-1], sizes[1:]))
        self.encoder = nn.ModuleList(_linear(n_in, n_out) for n_in, n_out in pairs)
        self.encoder_norms = nn.ModuleList(nn.BatchNorm1d(n_out, affine=False) for _, n_out in pairs)
        self.beta = nn.ParameterList(nn.Parameter(torch.zeros(n_out)) for _, n_out in pairs)
        self.gamma = nn.Parameter(torch.ones(sizes[-1]))  # the softmax layer's scale (ReLU needs none)
        self.decoder = nn.ModuleList(_linear(n_out, n_in) for n_in, n_out in pairs)  # V_l: layer l -> l - 1
        self.decoder_norms = nn.ModuleList(nn.BatchNorm1d(n, affine=False) for n in sizes)  # u_0 .. u_L
        self.combinators = nn.ModuleList(VanillaCombinator(n) for n in sizes)  # g_0 .. g_L

    def _noise(self, z: torch.Tensor, noisy: bool) -> torch.Tensor:
        return z + self.noise_std * torch.randn_like(z) if noisy else z

    def encode(self, x: torch.Tensor, noisy: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(z_0 .. z_L of the path, with noise if `noisy`; the class logits). x: (N, 784) in [0, 1]."""
        zs = [self._noise(x, noisy)]
        h = zs[0]
        top = len(self.encoder) - 1
        for l, (linear, norm, beta) in enumerate(zip(self.encoder, self.encoder_norms, self.beta)):
            z = self._noise(norm(linear(h)), noisy)
            zs.append(z)
            h = self.gamma * (z + beta) if l == top else F.relu(z + beta)
        return zs, h

    def decode(self, zs: list[torch.Tensor], logits: torch.Tensor) -> torch.Tensor:
        """x_hat (N, 784), in [0, 1] units, from the lateral z's and the top's softmax."""
        u = self.decoder_norms[-1](torch.softmax(logits, dim=1))
        for l in range(len(zs) - 1, 0, -1):
            z_hat = self.combinators[l](zs[l], u)
            u = self.decoder_norms[l - 1](self.decoder[l - 1](z_hat))
        return self.combinators[0](zs[0], u)

    def forward(self, images: torch.Tensor) -> LadderOutput:
        x = to_unit_interval(images.flatten(1))
        zs, logits = self.encode(x, noisy=self.training)
        x_hat = self.decode(zs, logits)
        return LadderOutput(reconstruction=from_unit_interval(x_hat).view_as(images), code=zs[-1],
                            class_logits=logits)

    @torch.no_grad()
    def classify(self, images: torch.Tensor, calibration: torch.Tensor, batch_size: int = CALIBRATION_BATCH
                 ) -> torch.Tensor:
        """Class logits of `images` by the clean path, its BatchNorm statistics averaged over the clean path of
        `calibration` (training images, float in [-1, 1]) in batches of `batch_size`, as the ladder code computes
        them for its test error: the running statistics of training hold the corrupted path's and, in EBGAN-LN,
        generated batches'. D is left as it was (statistics, momentum and mode)."""
        norms = list(self.encoder_norms)
        saved = [(norm.running_mean.clone(), norm.running_var.clone(), norm.num_batches_tracked.clone(),
                  norm.momentum) for norm in norms]
        was_training = self.training
        try:
            self.eval()
            for norm in norms:
                norm.reset_running_stats()
                norm.momentum = None  # a cumulative average over the calibration batches
                norm.train()
            for chunk in calibration.split(batch_size):
                if len(chunk) > 1:
                    self.encode(to_unit_interval(chunk.flatten(1)), noisy=False)
            for norm in norms:
                norm.eval()
            return torch.cat([self.encode(to_unit_interval(chunk.flatten(1)), noisy=False)[1]
                              for chunk in images.split(batch_size)])
        finally:
            for norm, (mean, var, count, momentum) in zip(norms, saved):
                norm.running_mean.copy_(mean), norm.running_var.copy_(var), norm.num_batches_tracked.copy_(count)
                norm.momentum = momentum
            self.train(was_training)


def build_ladder(energy_model: str, image_shape: tuple[int, int, int], z_dim: int, mlp: MLPConfig
                 ) -> tuple[nn.Module, nn.Module]:
    """(G, D): the paper's MNIST MLP G (sizes from `mlp`) and the ladder D, for 1 x 28 x 28 images."""
    if energy_model != "autoencoder":
        raise ConfigError("the ladder architecture is an auto-encoder D; use it with ladder or ebgan-ln")
    if math.prod(image_shape) != LADDER_SIZES[0]:
        raise ConfigError(f"the ladder architecture takes 28 x 28 images (784 pixels), got {image_shape}; use "
                          "--dataset pi-mnist (or --image-size 28)")
    mlp.validate()
    return MLPGenerator(mlp, image_shape, z_dim), LadderNet()
