"""The architecture registry: name -> builder(energy_model, image_shape, z_dim, mlp) -> (G, D).

G maps (N, z_dim) noise to images in [-1, 1]; D maps images to a DOutput (reconstruction and code for an
auto-encoder, logit for a classifier). `mlp` carries the MLP sizes; other families may ignore it.
Add one with `@ebm_bench.register_net("name")` on a builder function.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from torch import nn

from ebm_bench.config import MLPConfig
from ebm_bench.errors import ConfigError
from ebm_bench.registry import Registry

from .base import ENERGY_MODELS, MASK_FEED, DOutput, Dropout, dropout_mask
from .began import build_began
from .dcgan import build_dcgan
from .mlp import build_mlp

Builder = Callable[[str, tuple[int, int, int], int, MLPConfig], tuple[nn.Module, nn.Module]]


def _check(name: str, builder: Any) -> Builder:
    if not callable(builder):
        raise ConfigError(f"architecture {name!r} must be a builder function (energy_model, image_shape, z_dim, "
                          f"mlp) -> (G, D), not {type(builder).__name__}")
    return builder


NETS: Registry[Builder] = Registry("net", _check, lambda name, loaded: loaded,
                                   {"mlp": build_mlp, "dcgan": build_dcgan, "began": build_began},
                                   label="architecture")


def register_net(name: str):
    """Function decorator: `@register_net("tiny")` makes a builder available as `--arch tiny`."""

    def decorate(builder: Builder) -> Builder:
        return NETS.add(name, builder)

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
        return builder(energy_model, image_shape, z_dim, mlp or MLPConfig())
    except (RuntimeError, MemoryError) as err:
        asked = re.search(r"allocate (\d+) bytes", str(err))
        if not (asked or isinstance(err, MemoryError) or "out of memory" in str(err)):
            raise
        size = f"{int(asked.group(1)) / 2**30:,.1f} GiB for one layer" if asked else "more memory than there is"
        raise ConfigError(f"the {arch!r} networks with z_dim={z_dim} need {size}; lower --z-dim or the layer "
                          "sizes (--size-g, --size-d)") from None


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["DOutput", "Dropout", "ENERGY_MODELS", "MASK_FEED", "dropout_mask", "NETS", "build_networks", "count_parameters", "register_net"]
