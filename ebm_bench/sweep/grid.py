"""The runs of a command: settings by name from a config file (a preset is one) and the command line, in layers,
expanded over grid axes x methods x seeds, each config typed and checked before anything trains."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ebm_bench.config import (BUDGET_KINDS, Budget, ConfigFile, MLPConfig, OptimConfig, RunConfig, coerce_fields,
                              parse_value)
from ebm_bench.errors import ConfigError
from ebm_bench.methods import get_method
from ebm_bench.resolve import optim_base, resolve
from ebm_bench.schedule import loop_option_names, run_option_names as method_option_names


_MLP_FIELDS = {f.name for f in dataclasses.fields(MLPConfig)}
_OPTIM_FIELDS = {f.name for f in dataclasses.fields(OptimConfig)}
_RUN_FIELDS = ({f.name for f in dataclasses.fields(RunConfig)}
               - {"method", "seed", "budget", "mlp", "optim", "method_options"})
_LIST_FIELDS = {f.name for f in dataclasses.fields(RunConfig) if str(f.type).startswith("list")}


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
    check_options(options, methods)
    configs = []
    for seed in seeds:
        for name in methods:
            chosen = {k: v for k, v in options.items() if k in per_method[name]}
            configs.append(dataclasses.replace(base, method=name, seed=seed,
                                               method_options={**base.method_options, **chosen}))
    return configs


def check_options(options: Iterable[str], methods: Sequence[str]) -> None:
    """An option that none of `methods` has is an error, so a typo never passes silently."""
    per_method = [method_option_names(name) for name in methods]
    unused = [key for key in options if not any(key in names for names in per_method)]
    if unused:
        known = sorted(set().union(*per_method))
        raise ConfigError(f"option(s) {', '.join(unused)} apply to none of {', '.join(methods)}; "
                          f"their options: {', '.join(known) or 'none'}")


def parse_grid(items: Iterable[str], flag: str = "--grid") -> dict[str, list]:
    """["margin=1,2,4", "size_g=800,1600"] -> {"margin": [1, 2, 4], "size_g": [800, 1600]}. An axis given twice
    is an error (a dict would keep the last one silently)."""
    grid: dict[str, list] = {}
    spelled: dict[str, str] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not values:
            raise ConfigError(f"a grid axis is NAME=V1,V2,...; got {item!r}")
        if name in grid:
            raise ConfigError(f"{name} is given twice: {flag} {spelled[name]} and {flag} {item}; give it once")
        grid[name], spelled[name] = [parse_value(v) for v in values.split(",") if v.strip()], item
    return grid


def apply_setting(config: RunConfig, name: str, value: Any, methods: Sequence[str]) -> RunConfig:
    """Set one field by name: a RunConfig field, an MLP or optimiser field, `lr` (both), or a method option."""
    if name == "lr":
        return apply_setting(apply_setting(config, "lr_g", value, methods), "lr_d", value, methods)
    if name in BUDGET_KINDS:  # a budget is one setting (steps = 500), so a grid can run over it too
        return dataclasses.replace(config, budget=Budget(name, value))
    if name in _MLP_FIELDS:
        return dataclasses.replace(config, mlp=dataclasses.replace(config.mlp, **{name: value}))
    if name in _OPTIM_FIELDS:  # over the run's optimiser defaults: --lr on CelebA keeps its beta1 0.5
        return dataclasses.replace(config, optim=dataclasses.replace(optim_base(config), **{name: value}))
    if name in _RUN_FIELDS:
        return dataclasses.replace(config, **{name: value})
    if any(name in method_option_names(m) for m in methods):
        return dataclasses.replace(config, method_options={**config.method_options, name: value})
    raise ConfigError(f"unknown sweep field {name!r}: {_not_a_setting(methods)}")


def _not_a_setting(methods: Sequence[str]) -> str:
    return (f"not a run setting ({', '.join(sorted(_RUN_FIELDS))}), a budget ({', '.join(BUDGET_KINDS)}), "
            f"an architecture or optimiser field ({', '.join(sorted(_MLP_FIELDS | _OPTIM_FIELDS))}, lr), "
            f"nor an option of {', '.join(methods)}")


def expand(methods: Sequence[str], seeds: Sequence[int], grid: dict[str, list],
           base: RunConfig | dict[str, RunConfig] | None = None, sample: int | None = None, sample_seed: int = 0
           ) -> list[RunConfig]:
    """Every point of the grid x seeds x methods (the methods' matched configs at each point). `base` is one config
    for every method, or one per method (`plan_runs`: settings over each method's own defaults).

    With `sample`, a seeded random subset of the grid points (all methods and seeds of each point are kept).
    """
    bases = base if isinstance(base, dict) else {m: dataclasses.replace(base or RunConfig(), method=m)
                                                 for m in methods}
    if not methods:
        raise ConfigError("no methods given; e.g. --methods ebgan,began (see `ebm-bench list`)")
    own = {m: method_option_names(m) for m in methods}  # also rejects unknown methods early
    names = list(grid)
    points = list(itertools.product(*(grid[n] for n in names)))
    if sample is not None:
        if sample < 1:
            raise ConfigError(f"--sample must be >= 1, got {sample}")
        chosen = random.Random(sample_seed).sample(range(len(points)), min(sample, len(points)))
        points = [points[i] for i in sorted(chosen)]
    configs = []
    for point in points:
        at_point = {}
        for method in methods:
            config = bases[method]
            for name, value in zip(names, point):
                config = apply_setting(config, name, value, methods)
            at_point[method] = config
        for seed in seeds:
            for method in methods:
                config = at_point[method]
                options = {k: v for k, v in config.method_options.items() if k in own[method]}
                configs.append(dataclasses.replace(config, seed=seed, method_options=options))
    return configs


def apply_settings(config: RunConfig, settings: dict[str, Any], methods: Sequence[str]) -> RunConfig:
    for name, value in settings.items():
        config = apply_setting(config, name, value, methods)
    return config


@dataclass
class Plan:
    """The runs of one command, each config typed and checked: one per grid point x seed x method."""

    configs: list[RunConfig]
    methods: list[str]
    seeds: list[int]
    grid: dict[str, list]

    @property
    def points(self) -> int:
        return len(self.configs) // max(1, len(self.methods) * len(self.seeds))


def check_names(file: ConfigFile, methods: Sequence[str]) -> None:
    """Every key of a config file must be a setting or an option of a chosen method: a typo is an error naming
    the key and the file, never a silently ignored line."""
    options = set().union(*(method_option_names(m) for m in methods))
    known = _RUN_FIELDS | _MLP_FIELDS | _OPTIM_FIELDS | {"lr", *BUDGET_KINDS} | options
    for name in [*file.settings, *file.grid]:
        if name not in known:
            raise ConfigError(f"unknown key {name!r} in {file.where} (fix or remove it): {_not_a_setting(methods)}")
    for name in file.options:
        if name not in options:
            raise ConfigError(f"unknown key {name!r} in [method_options] of {file.where} (fix or remove it): "
                              f"the options of {', '.join(methods)} are {', '.join(sorted(options)) or 'none'}")


def plan_runs(file: ConfigFile | None, methods: Sequence[str] = (), seeds: Sequence[int] = (), *,
              settings: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
              fixed: dict[str, Any] | None = None, grid: dict[str, list] | None = None, sample: int | None = None,
              sample_seed: int = 0, base: RunConfig | None = None) -> Plan:
    """The runs of a command. Settings apply in layers, each overriding the one before: the config file, the
    command line's flags (`settings`) and method `options`, `--set` (`fixed`), then the grid axes. Methods, seeds
    and grid axes given on the command line replace the file's."""
    given = {"methods": "--methods" if methods else f"methods in {file.where if file else ''}",
             "seeds": "--seeds" if seeds else f"seeds in {file.where if file else ''}"}
    methods = list(methods) or (file.methods if file else [])
    if not methods:
        raise ConfigError("no methods: give --methods a,b or methods = [...] in a --config file "
                          "(see `ebm-bench list`)")
    seeds = list(seeds) or (file.seeds if file else []) or [0]
    _once("method", methods, given["methods"])  # twice: the same run trained twice, or skipped as being written
    _once("seed", seeds, given["seeds"])
    if file:
        check_names(file, methods)
    check_options(options or {}, methods)
    layers = [typed_settings({**file.settings, **file.options}, methods)] if file else []
    layers += [typed_settings(layer, methods) for layer in (settings or {}, options or {}, fixed or {})]
    bases = {}
    for method in methods:  # each method's settings over its own defaults (its optimiser's, say)
        config = dataclasses.replace(base or RunConfig(), method=method)
        for layer in layers:  # in turn: a later `lr` overrides an earlier lr_g
            config = apply_settings(config, layer, methods)
        bases[method] = config
    axes = {name: [typed_setting(name, v, methods) for v in values]
            for name, values in {**(file.grid if file else {}), **(grid or {})}.items()}
    for name, values in axes.items():  # typed first: margin=1,1.0 is one value twice
        _once("value", values, f"grid axis {name}")
    return Plan([checked(c) for c in expand(methods, seeds, axes, bases, sample, sample_seed)], methods, seeds, axes)


def _once(what: str, values: Sequence[Any], where: str) -> None:
    """A value given twice in a list (methods, seeds, an axis) is an error naming it."""
    seen = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"{where} names {what} {value} twice ({', '.join(map(str, values))}); give each once")
        seen.add(value)


def typed_setting(name: str, value: Any, methods: Sequence[str]) -> Any:
    """`value` in the type its setting declares (`--grid margin=a` fails here: "margin must be a number"). Values
    are typed as they come in, once per setting or grid value rather than once per run: a paper grid has 6,144."""
    if name in BUDGET_KINDS:
        return coerce_fields(Budget, {"amount": value}, f"budget ({name})")["amount"]
    if name in _LIST_FIELDS and isinstance(value, str):  # `--set metrics=fid`: a list of one
        return [value]
    field_name = "lr_g" if name == "lr" else name  # `lr` sets both rates, typed as they are
    for names, cls in ((_MLP_FIELDS, MLPConfig), (_OPTIM_FIELDS, OptimConfig), (_RUN_FIELDS, RunConfig)):
        if field_name in names:
            return coerce_fields(cls, {field_name: value}, "run")[field_name]
    if any(name in loop_option_names(method) for method in methods):  # a schedule or phase: split_options checks it
        return value
    for method in methods:  # a method option: typed by the first method that has it (each run's own checks it too)
        if name in method_option_names(method):
            return coerce_fields(get_method(method), {name: value}, method)[name]
    raise ConfigError(f"unknown sweep field {name!r}: {_not_a_setting(methods)}")


def typed_settings(settings: dict[str, Any], methods: Sequence[str]) -> dict[str, Any]:
    return {name: typed_setting(name, value, methods) for name, value in settings.items()}


def checked(config: RunConfig) -> RunConfig:
    """`config` resolved and checked the way training will take it (ebm_bench.resolve), so a dry run already
    rejects what would fail later and shows what each run will be."""
    return resolve(config).config


def setting_of(config: RunConfig, name: str) -> Any:
    if name == "lr":
        name = "lr_g"
    if name in BUDGET_KINDS:
        return config.budget.amount if config.budget.kind == name else None
    if name in _MLP_FIELDS:
        return getattr(config.mlp, name)
    if name in _OPTIM_FIELDS:
        return getattr(optim_base(config), name)
    if name in _RUN_FIELDS:
        return getattr(config, name)
    return config.method_options.get(name)
