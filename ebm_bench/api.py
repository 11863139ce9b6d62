"""The Python API behind `ebm-bench run`: build matched configs, train them, summarise.

    import ebm_bench
    results = ebm_bench.run(["ebgan", "began"], seeds=[0, 1], budget=ebm_bench.Budget("steps", 500))
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .config import RunConfig
from .registry import load_plugin
from .runs import RunLocked, train_one
from .train import RunResult
from .summary import PlainProgress, summary_table
from .sweep import matched_configs


def _train_or_skip(config: RunConfig, restart: bool, say, **callbacks) -> RunResult:
    """Train one run; a run another process is writing is skipped with one line and reported as `locked`."""
    try:
        return train_one(config, restart=restart, **callbacks)
    except RunLocked as err:
        say(f"{err}; skipped")
        return RunResult(run_id=err.run_id, run_dir=str(err.run_dir), method=config.method, dataset=config.dataset,
                         seed=config.seed, status="locked", budget=asdict(config.budget))


def _train_with_bars(configs: Sequence[RunConfig], restart: bool, console: Console, show: bool) -> list[RunResult]:
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[energies]}"), TimeElapsedColumn(), console=console,
                  disable=not show) as progress:
        def say(text):  # above the bars; shown under --quiet too (a skipped run is worth a line)
            progress.console.print(text, markup=False, highlight=False, soft_wrap=True)

        for config in configs:
            budget = config.budget
            task = progress.add_task(f"{config.method} seed {config.seed}", total=budget.amount, energies="")

            def on_log(row, task=task, kind=budget.kind):
                used = {"steps": row["step"], "images": row["images"], "seconds": row["wall_s"]}[kind]
                energies = (f"E(x) {row['energy_real_mean']:.3g}  E(G(z)) {row['energy_fake_mean']:.3g}"
                            if "energy_fake_mean" in row else f"E(x) {row['energy_real_mean']:.3g}")
                progress.update(task, completed=used, energies=energies)

            def on_start(start):
                if start.step and show:
                    say(start.resume_message())

            result = _train_or_skip(config, restart, say, on_log=on_log, on_start=on_start)
            progress.update(task, completed=budget.amount, energies=result.status)
            results.append(result)
    return results


def _train_with_lines(configs: Sequence[RunConfig], restart: bool, console: Console) -> list[RunResult]:
    """For a log file (stderr not a terminal): a redrawn bar would stay silent there, so plain lines instead."""
    plain, results = PlainProgress(console), []
    for config in configs:
        result = _train_or_skip(config, restart, plain.print, on_log=plain.on_log, on_start=plain.on_start)
        if result.status != "locked":
            plain.print(f"{result.run_id} {result.status}: {result.steps} steps in {result.wall_s:.1f} s")
        results.append(result)
    return results


def run_configs(configs: Sequence[RunConfig], restart: bool = False, console: Console | None = None,
                show_progress: bool = True) -> list[RunResult]:
    """Train each config in turn (a progress bar per run in a terminal, plain lines elsewhere), then print a
    summary table. A run another process is writing is skipped and returned with status `locked`."""
    console = console or Console(stderr=True)
    if show_progress and not (console.is_terminal or console.is_jupyter):  # a notebook redraws bars fine
        results = _train_with_lines(configs, restart, console)
    else:
        results = _train_with_bars(configs, restart, console, show_progress)
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
