"""The architecture registry: name -> builder(energy_model, image_shape, z_dim, mlp) -> (G, D).

G maps (N, z_dim) noise to images in [-1, 1]; D maps images to a DOutput (reconstruction and code for an
auto-encoder, logit for a classifier). `mlp` carries the MLP sizes; other families may ignore it.
Add one with `@ebm_bench.register_net("name")` on a builder function. `build_networks` checks what a builder
returns, and what G and D compute on a batch of two, so that a builder breaking the contract fails in one line
naming it instead of a traceback inside the first training step.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import torch
from torch import nn

from ebm_bench.config import MLPConfig
from ebm_bench.errors import ConfigError
from ebm_bench.registry import Registry, describe, source

from .base import ENERGY_MODELS, MASK_FEED, DOutput, Dropout, dropout_mask
from .began import build_began
from .dcgan import build_dcgan
from .ladder import LadderNet, LadderOutput, build_ladder
from .mlp import build_mlp
from .toy import build_toy, build_toy_fixed_q

Builder = Callable[[str, tuple[int, int, int], int, MLPConfig], tuple[nn.Module, nn.Module]]


def _check(name: str, builder: Any) -> Builder:
    if not callable(builder):
        raise ConfigError(f"architecture {name!r} must be a builder function (energy_model, image_shape, z_dim, "
                          f"mlp) -> (G, D), not {type(builder).__name__}")
    return builder


NETS: Registry[Builder] = Registry("net", _check, lambda name, loaded: loaded,
                                   {"mlp": build_mlp, "dcgan": build_dcgan, "began": build_began, "toy": build_toy,
                                    "toy-fixed-q": build_toy_fixed_q, "ladder": build_ladder},
                                   label="architecture")


def register_net(name: str, replace: bool = False):
    """Function decorator: `@register_net("tiny")` makes a builder available as `--arch tiny`. A name already
    registered elsewhere (a built-in) needs `replace=True`."""

    def decorate(builder: Builder) -> Builder:
        return NETS.add(name, builder, replace=replace)

    return decorate


def build_networks(arch: str, energy_model: str, image_shape: tuple[int, int, int], z_dim: int = 100,
                   mlp: MLPConfig | None = None) -> tuple[nn.Module, nn.Module]:
    """(G, D) of architecture `arch` for a method whose energy model is "autoencoder" or "classifier"."""
    if energy_model not in ENERGY_MODELS:
        raise ConfigError(f"unknown energy model {energy_model!r}; use one of {ENERGY_MODELS}")
    builder = NETS.get(arch)
    if z_dim < 1:
        raise ConfigError(f"z_dim must be positive, got {z_dim}")
    try:
        built = builder(energy_model, image_shape, z_dim, mlp or MLPConfig())
    except (RuntimeError, MemoryError) as err:
        asked = re.search(r"allocate (\d+) bytes", str(err))
        if not (asked or isinstance(err, MemoryError) or "out of memory" in str(err)):
            raise
        size = f"{int(asked.group(1)) / 2**30:,.1f} GiB for one layer" if asked else "more memory than there is"
        raise ConfigError(f"the {arch!r} networks with z_dim={z_dim} need {size}; lower --z-dim or the layer "
                          "sizes (--size-g, --size-d)") from None
    problem = _contract_problem(built, energy_model, tuple(image_shape), z_dim)
    if problem:
        raise ConfigError(f"architecture {arch!r} ({describe(source(builder))}): {problem}; a builder returns (G, D): "
                          "G maps N x z_dim noise to N x C x H x W images, D maps images to a DOutput")
    return built


PROBE_BATCH = 2  # two samples: enough for BatchNorm and for per-sample shapes, cheap for any network


def _contract_problem(built: Any, energy_model: str, image_shape: tuple[int, ...], z_dim: int) -> str | None:
    """What is wrong with a builder's (G, D), or None: its types, and what each computes on a batch of two."""
    if not (isinstance(built, (tuple, list)) and len(built) == 2):
        count = f" of {len(built)}" if isinstance(built, (tuple, list)) else ""
        return f"the builder returned {type(built).__name__}{count}, not the pair (G, D)"
    for which, module in zip("GD", built):
        if not isinstance(module, nn.Module):
            return f"the builder returned {which} as {type(module).__name__}, not a torch.nn.Module"
    generator, discriminator = built
    noise = torch.randn(PROBE_BATCH, z_dim, generator=torch.Generator().manual_seed(0))  # leaves the global RNG
    modes = generator.training, discriminator.training
    try:
        # eval mode and no gradient: BatchNorm's running statistics and the parameters stay as built
        generator.eval(), discriminator.eval()
        with torch.no_grad():
            try:
                images = generator(noise.to(_device_of(generator)))
            except Exception as err:  # noqa: BLE001 (a plug-in's G: name it in one line)
                return f"G failed on noise of shape {tuple(noise.shape)}: {type(err).__name__}: {err}"
            expected = (PROBE_BATCH, *image_shape)
            if not isinstance(images, torch.Tensor) or tuple(images.shape) != expected:
                got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
                return f"G returned {got} for {PROBE_BATCH} noise vectors, expected images of shape {expected}"
            try:
                out = discriminator(images)
            except Exception as err:  # noqa: BLE001
                return f"D failed on G's images of shape {expected}: {type(err).__name__}: {err}"
    finally:
        generator.train(modes[0]), discriminator.train(modes[1])
    if not isinstance(out, DOutput):
        return f"D returned {type(out).__name__}, not an ebm_bench.DOutput"
    if energy_model == "classifier" and (out.logit is None or tuple(out.logit.shape) != (PROBE_BATCH,)):
        got = "no logit" if out.logit is None else f"a logit of shape {tuple(out.logit.shape)}"
        return f"D (a classifier for this method) returned {got}, expected a logit of shape ({PROBE_BATCH},)"
    if energy_model == "autoencoder" and (out.reconstruction is None
                                          or tuple(out.reconstruction.shape) != tuple(images.shape)):
        got = "no reconstruction" if out.reconstruction is None else \
            f"a reconstruction of shape {tuple(out.reconstruction.shape)}"
        return f"D (an auto-encoder for this method) returned {got}, expected one of shape {tuple(images.shape)}"
    return None


def _device_of(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["DOutput", "Dropout", "ENERGY_MODELS", "LadderNet", "LadderOutput", "MASK_FEED", "dropout_mask", "NETS",
           "build_networks", "count_parameters", "register_net"]
