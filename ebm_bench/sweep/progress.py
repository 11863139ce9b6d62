"""Progress lines of `run` and `sweep` in a log file (stderr not a terminal), and the threads a run trains with.

A log file gets the throttled trajectory lines of `PlainProgress`, and besides them every line that says where a
run is: its start, its last trajectory row (never throttled away: it is the step the run ended at), each
--eval-every evaluation with its step, the start of its end-of-run evaluation, and its end.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable

from rich.console import Console

from ebm_bench.config import RunConfig
from ebm_bench.errors import ConfigError
from ebm_bench.summary import PlainProgress, progress_line
from ebm_bench.train import RunResult, RunStart

MAX_AUTO_THREADS = 8  # beyond this, torch's small MLP matmuls gain nothing from more threads on a CPU


def parse_threads(text: str | int) -> int | str:
    """--threads: a number of threads (>= 1) or auto."""
    if text == "auto":
        return "auto"
    try:
        threads = int(text)
    except (TypeError, ValueError):
        threads = 0
    if threads < 1:
        raise ConfigError(f"--threads takes a number of threads per training process (>= 1) or auto, not {text!r}; "
                          "on a busy machine --threads 1")
    return threads


def thread_count(setting: str | int, processes: int = 1) -> int:
    """The torch threads of each of `processes` training processes. auto: the CPUs this process may use, shared
    between the processes, at least 1 and at most MAX_AUTO_THREADS; an OMP_NUM_THREADS set in the environment caps
    it (someone chose that number for this machine)."""
    setting = parse_threads(setting)
    if setting != "auto":
        return int(setting)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cap = os.environ.get("OMP_NUM_THREADS", "")
    limit = min(MAX_AUTO_THREADS, int(cap)) if cap.isdigit() and int(cap) > 0 else MAX_AUTO_THREADS
    return max(1, min(limit, cpus // max(1, processes)))


def use_threads(threads: int | None) -> None:
    """Train with `threads` torch threads from now on in this process (None: as it is). Torch's default, one thread
    per core, oversubscribes a machine that other work shares: a run was 17-23x slower than with one thread."""
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # allowed only before any inter-op work (and once): a fresh worker process, not a reused one
        pass


class RunLines(PlainProgress):
    """One run's lines for a log file: `on_log` and `on_start` go to its trainer, `ended` after its evaluation."""

    def __init__(self, console: Console, config: RunConfig, clock: Callable[[], float] | None = None):
        super().__init__(console, **({"clock": clock} if clock else {}))
        self.eval_every = config.eval_every
        self.last_step: int | None = None
        self.evaluating_since: float | None = None

    def on_start(self, start: RunStart) -> None:
        super().on_start(start)  # a resumed run says where it resumes
        self.last_step = start.step
        if not start.step:
            self.print(f"{start.run_id} training: " + (start.total if start.total_steps is None
                                                      else f"{start.total} steps"))

    def on_log(self, row: dict[str, Any]) -> None:
        if self.start is None:
            return
        step, run_id = int(row["step"]), self.start.run_id
        last = self._is_last(row)
        scored = [] if last == "diverged" else self._scored_steps(step, last == "budget")
        self.last_step = step
        if last or scored:  # never throttled: these rows say where the run is
            self.printed_at = self.clock()
            self.print(progress_line(self.start, row))
        else:
            super().on_log(row)
        for at in scored:
            self.print(f"{run_id} scored at step {at} (evaluation.csv)")
        if last == "diverged":
            self.print(f"{run_id} diverged at step {step}: not evaluated")
        elif last:
            self.evaluating_since = self.clock()
            self.print(f"{run_id} trained to step {step}; end-of-run evaluation started")

    def ended(self, result: RunResult) -> None:
        """The run's last line: its status, and how long its end-of-run evaluation took when it ran here."""
        took = "" if self.evaluating_since is None else \
            f"; end-of-run evaluation took {self.clock() - self.evaluating_since:.1f} s"
        self.print(f"{result.run_id} {result.status}: {result.steps} steps in {result.wall_s:.1f} s{took}")

    def _scored_steps(self, step: int, last: bool) -> list[int]:
        """The --eval-every evaluations since the previous row: a trainer scores before it logs the same step, and
        at steps between rows when eval_every is no multiple of log_every (its last step is always a row)."""
        if not self.eval_every or self.last_step is None:
            return []
        every = self.eval_every
        steps = list(range((self.last_step // every + 1) * every, step + 1, every))
        if last and step not in steps:
            steps.append(step)  # the run's last step is always scored
        return steps

    def _is_last(self, row: dict[str, Any]) -> str:
        """'diverged' or 'budget' when `row` is the run's last trajectory row, else ''."""
        start = self.start
        if start is None:
            return ""
        watched = [v for k, v in row.items() if k.startswith(("loss_", "energy_"))]
        if any(isinstance(v, float) and not math.isfinite(v) for v in watched):
            return "diverged"
        if start.total_steps is not None:
            return "budget" if row["step"] >= start.total_steps else ""
        wall = row.get("wall_s")
        # rows round wall_s to the millisecond; the trainer stops once it reaches the budget
        return "budget" if wall is not None and wall >= start.budget.amount - 1e-3 else ""
