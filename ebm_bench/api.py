"""The Python API behind `ebm-bench run`: build matched configs, train them, summarise.

    import ebm_bench
    results = ebm_bench.run(["ebgan", "began"], seeds=[0, 1], budget=ebm_bench.Budget("steps", 500))
"""

from __future__ import annotations

import dataclasses
import shutil
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .config import RunConfig
from .errors import ConfigError
from .method import get_method, load_plugin
from .report import summary_table
from .train import RunResult, Trainer, existing_result, prepare, write_run_header


def method_option_names(method: str) -> set[str]:
    cls = get_method(method)
    return {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()


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


def train_one(config: RunConfig, restart: bool = False, on_log=None) -> RunResult:
    """Train one run to its budget. A finished run is returned as stored; an interrupted one resumes."""
    run = prepare(config)
    if restart and run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    stored = existing_result(run.run_dir)
    if stored is not None:
        return stored
    write_run_header(run)
    return Trainer(run, on_log=on_log).train()


def run_configs(configs: Sequence[RunConfig], restart: bool = False, console: Console | None = None,
                show_progress: bool = True) -> list[RunResult]:
    """Train each config in turn with a progress bar per run, then print a summary table."""
    console = console or Console(stderr=True)
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[energies]}"), TimeElapsedColumn(), console=console,
                  disable=not show_progress) as progress:
        for config in configs:
            budget = config.budget
            task = progress.add_task(f"{config.method} seed {config.seed}", total=budget.amount, energies="")

            def on_log(row, task=task, kind=budget.kind):
                used = {"steps": row["step"], "images": row["images"], "seconds": row["wall_s"]}[kind]
                energies = (f"E(x) {row['energy_real_mean']:.3g}  E(G(z)) {row['energy_fake_mean']:.3g}"
                            if "energy_fake_mean" in row else f"E(x) {row['energy_real_mean']:.3g}")
                progress.update(task, completed=used, energies=energies)

            result = train_one(config, restart=restart, on_log=on_log)
            progress.update(task, completed=budget.amount, energies=result.status)
            results.append(result)
    if show_progress:
        console.print(summary_table(results))
        for out in sorted({config.out for config in configs}):
            console.print(f"run folders are in {out}/ (result.json, trajectory.csv, samples.png)")
    return results


def run(methods: Sequence[str], seeds: Iterable[int] = (0,), *, base: RunConfig | None = None,
        method_options: dict[str, Any] | None = None, plugins: Iterable[str] = (), restart: bool = False,
        show_progress: bool = True) -> list[RunResult]:
    """Train `methods` x `seeds` under one matched configuration (`base`); returns one result per run."""
    for plugin in plugins:
        load_plugin(plugin)
    configs = matched_configs(list(methods), seeds, base, method_options)
    for config in configs:
        config.validate()
    return run_configs(configs, restart=restart, show_progress=show_progress)
