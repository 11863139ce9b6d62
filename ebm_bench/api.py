"""The Python API behind `ebm-bench run`: build matched configs, train them, summarise.

    import ebm_bench
    results = ebm_bench.run(["ebgan", "began"], seeds=[0, 1], budget=ebm_bench.Budget("steps", 500))
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .config import RunConfig
from .registry import load_plugin
from .runs import train_one
from .train import RunResult
from .summary import summary_table
from .sweep import matched_configs


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
