"""Sweeps: a grid over config fields, the EBGAN paper's presets, and executors that spread runs out.

Each run is keyed by the hash of its resolved config (its run folder name), so a sweep is idempotent: running it
again skips finished runs, resumes interrupted ones from their last checkpoint, and a diverged run stays recorded
as diverged. Executors: in this process, in N local worker processes, or on a Ray cluster (`ebm-bench[ray]`).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .api import matched_configs, method_option_names, train_one
from .config import OptimConfig, RunConfig
from .errors import ConfigError
from .nets import MLPConfig

PAPER_ARCH_GRID = {"n_layer_g": [2, 3, 4, 5], "n_layer_d": [2, 3, 4, 5], "size_g": [400, 800, 1600, 3200],
                   "size_d": [128, 256, 512, 1024], "dropout_d": [True, False]}


@dataclass(frozen=True)
class Preset:
    description: str
    methods: tuple[str, ...]
    grid: dict[str, list]
    fixed: dict[str, Any] = field(default_factory=dict)  # applied to the base config before the grid


PRESETS = {
    "margin-sensitivity": Preset(
        "EBGAN paper Figure 9: m in {1,2,4,6,8,12,16,32}, nLayerG=5, nLayerD=2, sizeG=1600, sizeD=1024, Adam 1e-3",
        ("ebgan",), {"margin": [1, 2, 4, 6, 8, 12, 16, 32]},
        {"n_layer_g": 5, "n_layer_d": 2, "size_g": 1600, "size_d": 1024, "dropout_d": False, "lr": 1e-3,
         "optimizer_g": "adam", "optimizer_d": "adam"}),
    "ebgan-paper-grid": Preset(
        "EBGAN paper Table 1, EBGAN column: 512 architectures, Adam lr 1e-3, m = 10",
        ("ebgan",), PAPER_ARCH_GRID, {"lr": 1e-3, "optimizer_g": "adam", "optimizer_d": "adam", "margin": 10}),
    "gan-paper-grid": Preset(
        "EBGAN paper Table 1, GAN column: 512 architectures x optimD, optimG in {adam, sgd} x lr {1e-2,1e-3,1e-4}",
        ("gan",), PAPER_ARCH_GRID | {"optimizer_d": ["adam", "sgd"], "optimizer_g": ["adam", "sgd"],
                                     "lr": [1e-2, 1e-3, 1e-4]}),
}

_MLP_FIELDS = {f.name for f in dataclasses.fields(MLPConfig)}
_OPTIM_FIELDS = {f.name for f in dataclasses.fields(OptimConfig)}
_RUN_FIELDS = {f.name for f in dataclasses.fields(RunConfig)} - {"method", "seed", "mlp", "optim", "method_options"}


def parse_grid(items: Iterable[str]) -> dict[str, list]:
    """["margin=1,2,4", "size_g=800,1600"] -> {"margin": [1, 2, 4], "size_g": [800, 1600]}."""
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"a grid axis is NAME=V1,V2,...; got {item!r}")
        grid[name.strip()] = [_parse_value(v) for v in values.split(",") if v.strip()]
    return grid


def _parse_value(text: str) -> Any:
    text = text.strip()
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


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
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def apply_settings(config: RunConfig, settings: dict[str, Any], methods: Sequence[str]) -> RunConfig:
    for name, value in settings.items():
        config = apply_setting(config, name, value, methods)
    return config


# -- executors --------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What the sweep knows of one run after executing it."""

    config: RunConfig
    status: str  # finished / diverged / failed
    run_id: str | None = None
    run_dir: str | None = None
    error: str | None = None


def run_safely(config: RunConfig) -> Outcome:
    """Train one run; an exception becomes a `failed` outcome so the sweep goes on."""
    try:
        result = train_one(config)
        return Outcome(config, result.status, result.run_id, result.run_dir)
    except Exception as err:  # noqa: BLE001 (one broken run must not stop the sweep)
        return Outcome(config, "failed", error=f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}")


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def execute_local(configs: Sequence[RunConfig], workers: int = 1,
                  on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Sequentially in this process, or in `workers` processes sharing the CPU cores between them."""
    outcomes = []
    if workers <= 1:
        for config in configs:
            outcomes.append(run_safely(config))
            if on_done:
                on_done(outcomes[-1])
        return outcomes
    threads = max(1, (os.cpu_count() or 1) // workers)
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(run_safely, config) for config in configs]
        for future in as_completed(futures):
            outcomes.append(future.result())
            if on_done:
                on_done(outcomes[-1])
    return outcomes


def execute_ray(configs: Sequence[RunConfig], address: str | None = None, cpus_per_run: float = 1.0,
                gpus_per_run: float = 0.0, on_done: Callable[[Outcome], None] | None = None,
                local_mode: bool = False) -> list[Outcome]:
    """One Ray task per run on an existing cluster (`address`) or a local one.

    Fractional `gpus_per_run` lets several small MNIST runs share a GPU. The cluster's GPUs are checked first: a
    Ray task asking for a GPU the cluster does not have waits forever.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError('the Ray executor needs Ray: pip install "ebm-bench[ray]"') from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({"num_cpus": max(1, int(cpus_per_run))} if local_mode else {}))
    available_gpus = ray.cluster_resources().get("GPU", 0)
    if gpus_per_run > 0 and available_gpus < gpus_per_run:
        raise ConfigError(f"--gpus-per-run {gpus_per_run} asked for, but the Ray cluster has {available_gpus:g} "
                          "GPUs; its tasks would wait forever. Use --gpus-per-run 0 or a cluster with GPUs.")
    if gpus_per_run > 0:
        configs = [dataclasses.replace(c, device="cuda") for c in configs]
    remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run)(run_safely)
    pending = {remote.remote(config): config for config in configs}
    outcomes = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            config = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as err:  # noqa: BLE001 (a lost worker is one failed run)
                outcome = Outcome(config, "failed", error=f"{type(err).__name__}: {err}")
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    return outcomes


# -- the command ------------------------------------------------------------------------------------------------
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


def sweep_main(args, base: RunConfig, method_options: dict[str, Any], methods: Sequence[str]) -> int:
    from rich.console import Console

    from .plots import plot_all
    from .store import write_json

    console = Console(stderr=True)
    configs, grid, methods = build_sweep(args.preset, methods, args.grid, args.set, args.seeds, base,
                                         method_options, args.sample)
    name = args.name or args.preset or "sweep"
    if args.dry_run:
        for i, config in enumerate(configs, 1):
            point = {k: _setting_of(config, k) for k in grid}
            print(f"{i:>5}  {config.method:<10} seed {config.seed}  "
                  + "  ".join(f"{k}={v}" for k, v in point.items()))
        print(f"{len(configs)} runs ({len(configs) // max(1, len(methods) * len(args.seeds))} grid points x "
              f"{len(methods)} method(s) x {len(args.seeds)} seed(s))")
        return 0

    count = [0]

    def report(outcome: Outcome) -> None:
        count[0] += 1
        point = " ".join(f"{k}={_setting_of(outcome.config, k)}" for k in grid)
        console.print(f"[{count[0]}/{len(configs)}] {outcome.config.method} seed {outcome.config.seed} {point}: "
                      f"{outcome.status}" + (f" ({outcome.error.splitlines()[0]})" if outcome.error else ""),
                      highlight=False, soft_wrap=True)

    if args.executor == "ray":
        outcomes = execute_ray(configs, args.address, args.cpus_per_run, args.gpus_per_run, on_done=report)
    else:
        outcomes = execute_local(configs, args.workers, on_done=report)
    summary = {"name": name, "preset": args.preset, "methods": methods, "seeds": list(args.seeds), "grid": grid,
               "counts": {s: sum(o.status == s for o in outcomes) for s in ("finished", "diverged", "failed")},
               "runs": [{"run_id": o.run_id, "run_dir": o.run_dir, "method": o.config.method, "seed": o.config.seed,
                         "status": o.status, "error": o.error, **{k: _setting_of(o.config, k) for k in grid}}
                        for o in outcomes]}
    write_json(Path(base.out) / f"sweep-{name}.json", summary)
    console.print(f"sweep {name}: {summary['counts']}; summary in {base.out}/sweep-{name}.json", highlight=False)
    run_dirs = [o.run_dir for o in outcomes if o.run_dir]
    if run_dirs and not args.no_plots:
        for path in plot_all(run_dirs, Path(base.out) / f"plots-{name}"):
            console.print(f"plot: {path}", highlight=False)
    return 1 if summary["counts"]["failed"] else 0


def _setting_of(config: RunConfig, name: str) -> Any:
    if name == "lr":
        name = "lr_g"
    if name in _MLP_FIELDS:
        return getattr(config.mlp, name)
    if name in _OPTIM_FIELDS:
        return getattr(config.optim or OptimConfig(), name)
    if name in _RUN_FIELDS:
        return getattr(config, name)
    return config.method_options.get(name)
