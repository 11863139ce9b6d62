"""Quality over training (runs trained with --eval-every): one panel per score in evaluation.csv, a line per
method (mean over its runs, min-max band), so that a late collapse or an early peak shows beside the final score
the leaderboard ranks by."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.record import EVALUATION
from ebm_bench.metrics import METRICS, over_training_metrics

from .common import (draw_spread, evaluation, figure_legend, has_values, plt, read_table_or_why, runs_label, save,
                     trajectory, warn_left_out)

MAX_COLUMNS = 3


def _title(metric: str) -> str:
    direction = METRICS[metric].direction if metric in METRICS else None
    return metric + {"higher": " (higher is better)", "lower": " (lower is better)"}.get(direction or "", "")


def quality_figure(records: pd.DataFrame):
    """The figure, or None when no run has an evaluation.csv with a score in it."""
    tables = {}
    for run_dir in records["run_dir"]:
        tables[run_dir], why = read_table_or_why(run_dir, EVALUATION)
        if why and (Path(run_dir) / EVALUATION).exists():  # one trained without --eval-every has none: no news
            warn_left_out("quality over training", run_dir, why)
    metrics = [m for m in over_training_metrics() if any(has_values(t, m) for t in tables.values())]
    if not metrics:
        return None
    drawn = records[records["run_dir"].map(lambda d: any(has_values(tables[d], m) for m in metrics))]
    methods = sorted(drawn["method"].unique())
    colours = {method: f"C{i % 10}" for i, method in enumerate(methods)}
    ncols = min(len(metrics), MAX_COLUMNS)
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.9 * nrows + 0.9), squeeze=False,
                             layout="constrained")
    banded = False
    for ax, metric in zip(axes.flat, metrics):
        for method in methods:
            runs = drawn[drawn["method"] == method]  # the legend counts the runs with scores over training only
            series = [(tables[d]["step"], tables[d][metric]) for d in runs["run_dir"] if has_values(tables[d], metric)]
            banded |= len(series) > 1
            draw_spread(ax, series, color=colours[method], label=f"{method} ({runs_label(runs)})")
        ax.set_title(_title(metric), fontsize=9)
        ax.set_xlabel("step")
    for ax in list(axes.flat)[len(metrics):]:
        ax.remove()  # no empty panels when the scores do not fill the last row
    figure_legend(fig, banded)
    fig.suptitle("Quality over training (evaluation.csv, the same noise for every run)", fontsize=10)
    return fig


def plot_quality(records: pd.DataFrame, out: Path) -> list[Path]:
    fig = quality_figure(records)
    if fig is None:
        raise ConfigError("no run has scores over training (evaluation.csv); train with --eval-every N")
    return save(fig, Path(out), "quality")


def tracking_figure(records: pd.DataFrame, measure: str, metric: str):
    """Does `measure` (a trajectory column, e.g. BEGAN's M_global) follow `metric` over training? One panel per
    run: the measure as logged (left axis) and the metric at each evaluation (right axis, dashed)."""
    runs = [(row.run_id, trajectory(row.run_dir), evaluation(row.run_dir)) for row in records.itertuples()]
    runs = [(r, t, e) for r, t, e in runs if has_values(t, measure) and has_values(e, metric)]
    if not runs:
        raise ConfigError(f"no run has {measure!r} in its trajectory and {metric!r} in an evaluation.csv")
    ncols = min(len(runs), MAX_COLUMNS + 2)
    nrows = math.ceil(len(runs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows + 0.5), squeeze=False,
                             layout="constrained")
    for ax, (run_id, logged, scores) in zip(axes.flat, runs):
        ax.plot(logged["step"], logged[measure], color="C0", lw=1)
        ax.set_ylabel(measure, color="C0", fontsize=8)
        right = ax.twinx()
        right.plot(scores["step"], scores[metric], color="C3", ls="--", marker="o", ms=3)
        right.set_ylabel(metric, color="C3", fontsize=8)
        ax.set_title(run_id.rsplit("-", 1)[0], fontsize=8)
        ax.set_xlabel("step")
    for ax in list(axes.flat)[len(runs):]:
        ax.remove()
    fig.suptitle(f"{measure} (solid, left) against {metric} (dashed, right) over training", fontsize=10)
    return fig
