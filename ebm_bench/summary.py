"""What a person watching runs sees: plain progress lines for a log file, and the end-of-run summary table."""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

from rich.console import Console
from rich.table import Table

from .metrics import METRICS, headline_order
from .train import RunStart

SUMMARY_SCORES = 4  # headline scores in the end-of-run table: more would not fit 80 columns
PLAIN_EVERY_S = 30.0  # a log file gets a line per logging interval, or per this many seconds if that is rarer


def _fmt(value, digits: int = 4) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def summary_table(results: Sequence) -> Table:
    """One row per run: status, steps and the first SUMMARY_SCORES headline scores the runs hold (the metrics'
    `headline` order: FID-MNIST, I', classes covered, ... where the classifier scored them)."""
    table = Table(title="ebm-bench runs")
    scores = [name for name in headline_order() if any(name in r.evaluation for r in results)][:SUMMARY_SCORES]
    for column in ("method", "seed", "status", "steps"):
        table.add_column(column, justify="left" if column in ("method", "status") else "right")
    for name in scores:
        table.add_column(METRICS[name].label or name, justify="right")
    for r in results:
        table.add_row(r.method, str(r.seed), r.status, str(r.steps), *(_fmt(r.evaluation.get(s)) for s in scores))
    return table


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def progress_line(start: RunStart, row: dict[str, float]) -> str:
    """run, step/total, steps/s, ETA, E(x), E(G(z)): one plain line from one trajectory row."""
    step, wall = row["step"], row["wall_s"]
    rate = step / wall if wall > 0 else 0.0
    if start.total_steps is not None:
        where = f"step {step}/{start.total_steps}"
        eta = (start.total_steps - step) / rate if rate > 0 else math.inf
    else:  # a budget in seconds
        where, eta = f"step {step} ({wall:.0f}/{start.budget.amount:g} s)", start.budget.amount - wall
    energies = [f"{name} {row[key]:.4g}" for name, key in (("E(x)", "energy_real_mean"),
                                                            ("E(G(z))", "energy_fake_mean"))
                if row.get(key) is not None and row[key] == row[key]]
    return "  ".join([start.run_id, where, f"{rate:.3g} steps/s",
                      f"ETA {_duration(eta) if math.isfinite(eta) else '?'}", *energies])


class PlainProgress:
    """Progress for a console that is not a terminal (a log file): plain lines, never a redrawn bar."""

    def __init__(self, console: Console, every_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.console, self.clock = console, clock
        self.every_s = PLAIN_EVERY_S if every_s is None else every_s
        self.start: RunStart | None = None
        self.printed_at: float | None = None

    def print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def on_start(self, start: RunStart) -> None:
        self.start, self.printed_at = start, None
        if start.step:
            self.print(start.resume_message())

    def on_log(self, row: dict[str, float]) -> None:
        now = self.clock()
        if self.start is None or (self.printed_at is not None and now - self.printed_at < self.every_s):
            return
        self.printed_at = now
        self.print(progress_line(self.start, row))
