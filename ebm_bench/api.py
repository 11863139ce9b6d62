"""The Python API behind `ebm-bench run`: build matched configs, train them, summarise; and the page of the result.

    import ebm_bench
    results = ebm_bench.run(["ebgan", "began"], seeds=[0, 1], budget=ebm_bench.Budget("steps", 500))
    ebm_bench.write_report(["runs"], "report")  # report/index.html
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

from .config import RunConfig
from .pack import pack_size, plan_packs
from .record import RunLocked  # noqa: F401 (API: what train_one raises for a run another process is writing)
from .registry import load_plugin
from .report import write_report  # noqa: F401 (the API of `ebm-bench report`)
from .runs import train_one  # noqa: F401 (API: one run, trained and recorded)
from .summary import PlainProgress, summary_table
from .sweep import Local, Outcome, Progress, checked, execute, matched_configs
from .train import RunResult


def _results(configs: Sequence[RunConfig], outcomes: list[Outcome], say) -> list[RunResult]:
    """One RunResult per config, in the order of `configs`: what each recorded, or a `locked` stand-in (said in one
    line) for a run another process is writing."""
    by_config = {id(outcome.config): outcome for outcome in outcomes}
    results = []
    for config in configs:
        outcome = by_config[id(config)]
        if outcome.result is None:  # locked: that process's run to finish (a failure raised in `execute`)
            say(f"{outcome.error}; skipped")
            results.append(RunResult(run_id=outcome.run_id, run_dir=str(Path(config.out) / (outcome.run_id or "")),
                                     method=config.method, dataset=config.dataset, seed=config.seed, status="locked",
                                     budget=asdict(config.budget)))
        else:
            results.append(outcome.result)
    return results


class _Bars(Progress):
    """A progress bar per run in a terminal: steps (or images, seconds) and the energies of the last logged row."""

    def __init__(self, configs: Sequence[RunConfig], progress, show: bool):
        super().__init__(progress.console)
        self.bars, self.show = progress, show
        self.tasks = {id(c): progress.add_task(f"{c.method} seed {c.seed}", total=c.budget.amount, energies="")
                      for c in configs}

    def say(self, text: str) -> None:  # above the bars; shown under --quiet too (a skipped run is worth a line)
        self.bars.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def run_callbacks(self, config):
        task, kind = self.tasks[id(config)], config.budget.kind

        def on_log(row):
            used = {"steps": row["step"], "images": row["images"], "seconds": row["wall_s"]}[kind]
            energies = (f"E(x) {row['energy_real_mean']:.3g}  E(G(z)) {row['energy_fake_mean']:.3g}"
                        if "energy_fake_mean" in row else f"E(x) {row['energy_real_mean']:.3g}")
            self.bars.update(task, completed=used, energies=energies)

        def on_start(start):
            if start.step and self.show:
                self.say(start.resume_message())
        return on_log, on_start

    def done(self, outcome: Outcome) -> None:
        self.bars.update(self.tasks[id(outcome.config)], completed=outcome.config.budget.amount,
                         energies=outcome.status)


def _train_with_bars(packs, configs: Sequence[RunConfig], executor: Local, console: Console, show: bool
                     ) -> list[RunResult]:
    with RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[energies]}"), TimeElapsedColumn(), console=console,
                      disable=not show) as bars:
        progress = _Bars(configs, bars, show)
        return _results(configs, execute(packs, executor, progress, raise_errors=True), progress.say)


def _train_with_lines(packs, configs: Sequence[RunConfig], executor: Local, console: Console) -> list[RunResult]:
    """For a log file (stderr not a terminal): a redrawn bar would stay silent there, so plain lines instead, each
    run's last line as soon as its pack ends."""
    outcomes = execute(packs, executor, Progress(console), raise_errors=True)
    return _results(configs, outcomes, PlainProgress(console).print)


def run_configs(configs: Sequence[RunConfig], restart: bool = False, console: Console | None = None,
                show_progress: bool = True, pack: int | str = 1, threads: int | None = None) -> list[RunResult]:
    """Train the configs (a progress bar per run in a terminal, plain lines elsewhere), then print a summary
    table. `pack` > 1 (or "auto") trains runs that differ only in seed, float method options, learning rates and
    dropout as one stacked model (ebm_bench.pack), with the same records as solo. A run another process is
    writing is skipped and returned with status `locked`. `threads`: torch threads to train with (None: as set);
    not part of any run's identity."""
    console = console or Console(stderr=True)
    packs, executor = plan_packs(list(configs), pack_size(pack, configs)), Local(1, threads, restart)
    if show_progress and not (console.is_terminal or console.is_jupyter):  # a notebook redraws bars fine
        results = _train_with_lines(packs, configs, executor, console)
    else:
        results = _train_with_bars(packs, configs, executor, console, show_progress)
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
