"""The Python API behind `ebm-bench run`: build matched configs, train them, summarise; and the page of the result.

    import ebm_bench
    results = ebm_bench.run(["ebgan", "began"], seeds=[0, 1], budget=ebm_bench.Budget("steps", 500))
    ebm_bench.write_report(["runs"], "report")  # report/index.html
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .config import RunConfig
from .registry import load_plugin
from .report import write_report  # noqa: F401 (the API of `ebm-bench report`)
from .pack import pack_size, plan_packs
from .runs import train_one, train_pack
from .record import RunLocked  # noqa: F401 (train_one is API)
from .train import RunResult
from .summary import PlainProgress, summary_table
from .sweep import RunLines, checked, matched_configs, use_threads


def _train_packs(configs: Sequence[RunConfig], pack: int | str, restart: bool, say, progress,
                 ended=None) -> list[RunResult]:
    """Train `configs` in packs (solo when `pack` is 1); a run another process is writing is skipped with one
    line and reported as `locked`. Results come back in the order of `configs`; `ended(i, result)` hears of each
    run as its pack ends."""
    index = {id(config): i for i, config in enumerate(configs)}
    results: list[RunResult | None] = [None] * len(configs)
    for members in plan_packs(list(configs), pack_size(pack, configs)):
        positions = [index[id(c)] for c in members]
        trained = train_pack(members, restart=restart, progress=lambda k: progress(positions[k]) if progress
                             else (None, None))
        for position, config, outcome in zip(positions, members, trained):
            if isinstance(outcome, RunLocked):
                say(f"{outcome}; skipped")
                outcome = RunResult(run_id=outcome.run_id, run_dir=str(outcome.run_dir), method=config.method,
                                    dataset=config.dataset, seed=config.seed, status="locked",
                                    budget=asdict(config.budget))
            elif ended:
                ended(position, outcome)
            results[position] = outcome
    return results  # type: ignore[return-value]


def _train_with_bars(configs: Sequence[RunConfig], pack: int | str, restart: bool, console: Console, show: bool
                     ) -> list[RunResult]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[energies]}"), TimeElapsedColumn(), console=console,
                  disable=not show) as progress:

        def say(text):  # above the bars; shown under --quiet too (a skipped run is worth a line)
            progress.console.print(text, markup=False, highlight=False, soft_wrap=True)

        tasks = [progress.add_task(f"{c.method} seed {c.seed}", total=c.budget.amount, energies="") for c in configs]

        def callbacks(i):
            task, kind = tasks[i], configs[i].budget.kind

            def on_log(row):
                used = {"steps": row["step"], "images": row["images"], "seconds": row["wall_s"]}[kind]
                energies = (f"E(x) {row['energy_real_mean']:.3g}  E(G(z)) {row['energy_fake_mean']:.3g}"
                            if "energy_fake_mean" in row else f"E(x) {row['energy_real_mean']:.3g}")
                progress.update(task, completed=used, energies=energies)

            def on_start(start):
                if start.step and show:
                    say(start.resume_message())
            return on_log, on_start

        results = _train_packs(configs, pack, restart, say, callbacks)
        for task, config, result in zip(tasks, configs, results):
            progress.update(task, completed=config.budget.amount, energies=result.status)
    return results


def _train_with_lines(configs: Sequence[RunConfig], pack: int | str, restart: bool, console: Console
                      ) -> list[RunResult]:
    """For a log file (stderr not a terminal): a redrawn bar would stay silent there, so plain lines instead, each
    run's last line as soon as its pack ends."""
    lines = [RunLines(console, config) for config in configs]
    return _train_packs(configs, pack, restart, PlainProgress(console).print,
                        lambda i: (lines[i].on_log, lines[i].on_start), lambda i, result: lines[i].ended(result))


def run_configs(configs: Sequence[RunConfig], restart: bool = False, console: Console | None = None,
                show_progress: bool = True, pack: int | str = 1, threads: int | None = None) -> list[RunResult]:
    """Train the configs (a progress bar per run in a terminal, plain lines elsewhere), then print a summary
    table. `pack` > 1 (or "auto") trains runs that differ only in seed, float method options, learning rates and
    dropout as one stacked model (ebm_bench.pack), with the same records as solo. A run another process is
    writing is skipped and returned with status `locked`. `threads`: torch threads to train with (None: as set);
    not part of any run's identity."""
    console = console or Console(stderr=True)
    use_threads(threads)
    if show_progress and not (console.is_terminal or console.is_jupyter):  # a notebook redraws bars fine
        results = _train_with_lines(configs, pack, restart, console)
    else:
        results = _train_with_bars(configs, pack, restart, console, show_progress)
    if show_progress:
        console.print(summary_table(results))
        for out in sorted({config.out for config in configs}):
            console.print(f"run folders are in {out}/ (result.json, trajectory.csv, samples.png)")
    return results


def run(methods: Sequence[str], seeds: Iterable[int] = (0,), *, base: RunConfig | None = None,
        method_options: dict[str, Any] | None = None, plugins: Iterable[str] = (), restart: bool = False,
        show_progress: bool = True, pack: int | str = 1, threads: int | None = None) -> list[RunResult]:
    """Train `methods` x `seeds` under one matched configuration (`base`); returns one result per run."""
    for plugin in plugins:
        load_plugin(plugin)
    configs = [checked(config) for config in matched_configs(list(methods), seeds, base, method_options)]
    return run_configs(configs, restart=restart, show_progress=show_progress, pack=pack, threads=threads)
