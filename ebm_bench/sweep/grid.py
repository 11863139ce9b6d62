"""A sweep's runs: a grid over config fields and method options, from the command line or a preset file."""

from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ebm_bench.methods import option_names as method_option_names
from ebm_bench.config import MLPConfig, OptimConfig, RunConfig, load_preset, parse_value
from ebm_bench.errors import ConfigError

@dataclass(frozen=True)
class Preset:
    """A sweep as a file: methods, settings fixed for every run (`set`), and grid axes (`grid`)."""

    description: str
    methods: tuple[str, ...]
    grid: dict[str, list]
    fixed: dict[str, Any] = field(default_factory=dict)  # applied to the base config before the grid


_MLP_FIELDS = {f.name for f in dataclasses.fields(MLPConfig)}
_OPTIM_FIELDS = {f.name for f in dataclasses.fields(OptimConfig)}
_RUN_FIELDS = {f.name for f in dataclasses.fields(RunConfig)} - {"method", "seed", "mlp", "optim", "method_options"}


def matched_configs(methods: Sequence[str], seeds: Iterable[int] = (0,), base: RunConfig | None = None,
                    method_options: dict[str, Any] | None = None) -> list[RunConfig]:
    """One config per (method, seed), identical in everything but the method and seed.

    `method_options` go to every method that has such an option (`margin` to EBGAN, EBGAN-PT, ...); an option
    that no selected method has is an error, so a typo never passes silently.
    """
    if not methods:
        raise ConfigError("no methods given; e.g. --methods ebgan,began (see `ebm-bench list`)")
    base = base or RunConfig()
    options = method_options or {}
    per_method = {name: method_option_names(name) for name in methods}  # also rejects unknown methods early
    unused = [key for key in options if not any(key in names for names in per_method.values())]
    if unused:
        known = sorted(set().union(*per_method.values()))
        raise ConfigError(f"option(s) {', '.join(unused)} apply to none of {', '.join(methods)}; "
                          f"their options: {', '.join(known) or 'none'}")
    configs = []
    for seed in seeds:
        for name in methods:
            chosen = {k: v for k, v in options.items() if k in per_method[name]}
            configs.append(dataclasses.replace(base, method=name, seed=seed,
                                               method_options={**base.method_options, **chosen}))
    return configs


def parse_grid(items: Iterable[str]) -> dict[str, list]:
    """["margin=1,2,4", "size_g=800,1600"] -> {"margin": [1, 2, 4], "size_g": [800, 1600]}."""
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"a grid axis is NAME=V1,V2,...; got {item!r}")
        grid[name.strip()] = [parse_value(v) for v in values.split(",") if v.strip()]
    return grid


def apply_setting(config: RunConfig, name: str, value: Any, methods: Sequence[str]) -> RunConfig:
    """Set one field by name: a RunConfig field, an MLP or optimiser field, `lr` (both), or a method option."""
    if name == "lr":
        return apply_setting(apply_setting(config, "lr_g", value, methods), "lr_d", value, methods)
    if name in _MLP_FIELDS:
        return dataclasses.replace(config, mlp=dataclasses.replace(config.mlp, **{name: value}))
    if name in _OPTIM_FIELDS:
        return dataclasses.replace(config, optim=dataclasses.replace(config.optim or OptimConfig(), **{name: value}))
    if name in _RUN_FIELDS:
        return dataclasses.replace(config, **{name: value})
    if any(name in method_option_names(m) for m in methods):
        return dataclasses.replace(config, method_options={**config.method_options, name: value})
    raise ConfigError(f"unknown sweep field {name!r}: not a run setting ({', '.join(sorted(_RUN_FIELDS))}), "
                      f"an architecture or optimiser field ({', '.join(sorted(_MLP_FIELDS | _OPTIM_FIELDS))}, lr), "
                      f"nor an option of {', '.join(methods)}")


def expand(methods: Sequence[str], seeds: Sequence[int], grid: dict[str, list], base: RunConfig | None = None,
           sample: int | None = None, sample_seed: int = 0) -> list[RunConfig]:
    """Every point of the grid x methods x seeds (the methods' matched configs at each point).

    With `sample`, a seeded random subset of the grid points (all methods and seeds of each point are kept).
    """
    base = base or RunConfig()
    names = list(grid)
    points = list(itertools.product(*(grid[n] for n in names)))
    if sample is not None:
        if sample < 1:
            raise ConfigError(f"--sample must be >= 1, got {sample}")
        chosen = random.Random(sample_seed).sample(range(len(points)), min(sample, len(points)))
        points = [points[i] for i in sorted(chosen)]
    configs = []
    for point in points:
        config = base
        for name, value in zip(names, point):
            config = apply_setting(config, name, value, methods)
        options = config.method_options
        configs += matched_configs(methods, seeds, dataclasses.replace(config, method_options={}), options)
    return configs


def get_preset(name: str) -> Preset:
    """A shipped preset by name, or a TOML file by path (`description`, `methods`, `[set]`, `[grid]`)."""
    data = load_preset(name)
    return Preset(data.get("description", ""), tuple(data.get("methods", ())), dict(data.get("grid", {})),
                  dict(data.get("set", {})))


def apply_settings(config: RunConfig, settings: dict[str, Any], methods: Sequence[str]) -> RunConfig:
    for name, value in settings.items():
        config = apply_setting(config, name, value, methods)
    return config


def build_sweep(preset: str | None, methods: Sequence[str], grid_items: Sequence[str], set_items: Sequence[str],
                seeds: Sequence[int], base: RunConfig, method_options: dict[str, Any],
                sample: int | None) -> tuple[list[RunConfig], dict[str, list], list[str]]:
    """The configs of a sweep: preset settings, then --set, then the CLI's method options, then the grid."""
    methods = list(methods)
    grid: dict[str, list] = {}
    if preset:
        chosen = get_preset(preset)
        methods = methods or list(chosen.methods)
        base = apply_settings(base, chosen.fixed, methods)
        grid = dict(chosen.grid)
    if not methods:
        raise ConfigError("no methods: give --methods a,b or a --preset (see `ebm-bench list`)")
    grid |= parse_grid(grid_items)
    settings = {name: values[0] for name, values in parse_grid(set_items).items()}
    base = apply_settings(base, settings | method_options, methods)
    return expand(methods, seeds, grid, base, sample), grid, methods


def setting_of(config: RunConfig, name: str) -> Any:
    if name == "lr":
        name = "lr_g"
    if name in _MLP_FIELDS:
        return getattr(config.mlp, name)
    if name in _OPTIM_FIELDS:
        return getattr(config.optim or OptimConfig(), name)
    if name in _RUN_FIELDS:
        return getattr(config, name)
    return config.method_options.get(name)
