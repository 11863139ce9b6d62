"""The figures of a sweep: margin sensitivity, score histograms (the EBGAN paper's Figure 2) and sample grids
side by side (its Figure 9)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.record import SAMPLES
from ebm_bench.probe import BASELINE

from .common import draw_spread, plt, readable_samples, save

MARGIN = "config.method_options.margin"
SAMPLE_COLUMNS = 8  # grids per row: more would shrink each below legibility on a page


def margin_figure(records: pd.DataFrame, metrics: Sequence[str]):
    """Each metric against the margin m (log axis), mean and std over seeds; class coverage beside it."""
    if MARGIN not in records or records[MARGIN].isna().all():
        raise ConfigError("margin sensitivity needs runs of a method with a margin (ebgan, ebgan-pt)")
    metrics = [m for m in metrics if m in records and records[m].notna().any()]
    if not metrics:
        raise ConfigError("the runs hold none of the metrics asked for the margin plot")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False, layout="constrained")
    finished = records[records["status"] == "finished"]
    for ax, metric in zip(axes[0], metrics):
        for method, group in finished.groupby("method"):
            stats = group.groupby(MARGIN)[metric].agg(["mean", "std", "count"]).reset_index()
            ax.errorbar(stats[MARGIN], stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                        label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("margin m")
        ax.set_ylabel(metric.split(".")[-1])
        ax.legend(fontsize=7)
    diverged = records[records["status"] != "finished"]
    if len(diverged):
        fig.suptitle(f"{len(diverged)} run(s) diverged or failed: "
                     + ", ".join(f"m={m:g}" for m in sorted(diverged[MARGIN].dropna().unique())), fontsize=8)
    return fig


def histogram_figure(records: pd.DataFrame, metric: str):
    """Share of runs per score bin, one histogram per method on shared bins (the paper's Figure 2)."""
    if metric not in records or records[metric].notna().sum() == 0:
        raise ConfigError(f"no run holds the metric {metric!r} for a histogram")
    values = records[metric].dropna()
    bins = 20 if values.nunique() > 1 else 1
    fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    for method, group in records.groupby("method"):
        scores = group[metric].dropna()
        if scores.empty:
            continue
        ax.hist(scores, bins=bins, range=(values.min(), values.max()), alpha=0.5, label=f"{method} ({len(scores)})",
                weights=[100.0 / len(scores)] * len(scores))
    ax.set_xlabel(metric.split(".")[-1])
    ax.set_ylabel("% of runs")
    ax.legend(fontsize=7)
    return fig


def reliability_figure(panels: dict[str, pd.DataFrame], metric: str, thresholds: Sequence[float] = ()):
    """The paper's Figure 2: per panel (a subset of the grid), the share of each method's runs per score bin on
    shared bins, diverged runs as a bar of their own left of the axis; dashed lines at the thresholds."""
    column = f"evaluation.{metric}"
    everything = pd.concat(panels.values())
    if column not in everything or everything[column].notna().sum() == 0:
        raise ConfigError(f"no run holds the metric {metric!r} for a reliability histogram")
    values = everything[column].dropna()
    low, high = float(values.min()), float(values.max())
    width = (high - low) / 20 or 1.0
    bins = [low + i * width for i in range(21)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, (name, runs) in zip(axes[0], panels.items()):
        methods = sorted(runs["method"].unique())
        for i, method in enumerate(methods):
            group = runs[runs["method"] == method]
            if group.empty:
                continue
            share = 100.0 / len(group)
            finished = group.loc[group["status"] == "finished", column].dropna()
            color = f"C{i}"
            ax.hist(finished, bins=bins, alpha=0.5, color=color, weights=[share] * len(finished),
                    label=f"{method} ({len(group)} runs)")
            diverged = len(group) - len(finished)
            ax.bar(low - width * (1.5 + 0.6 * i), diverged * share, width=width * 0.6, color=color, alpha=0.8)
        ax.axvline(low - width * 0.5, color="0.6", lw=0.5)
        ax.text(low - width * 1.8, ax.get_ylim()[1] * 0.95, "diverged", fontsize=7, rotation=90, va="top")
        for threshold in thresholds:
            ax.axvline(threshold, color="0.3", lw=0.7, ls="--")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(metric)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("% of runs")
    return fig


def samples_figure(records: pd.DataFrame):
    """Sample grids side by side, one per margin (first seed), as the paper's Figure 9; a row per method when the
    records hold several."""
    runs = records[records["run_dir"].map(lambda d: readable_samples(d, "the sample grid"))]
    if MARGIN in runs and runs[MARGIN].notna().any():
        runs = runs[runs[MARGIN].notna()].sort_values(["method", MARGIN, "seed"]).groupby(["method", MARGIN]).head(1)
        several = runs["method"].nunique() > 1
        labels = [f"{method} m = {m:g}" if several else f"m = {m:g}" for method, m in zip(runs["method"], runs[MARGIN])]
    else:
        runs = runs.sort_values(["method", "seed"]).groupby("method").head(1)
        labels = list(runs["method"])
    if runs.empty:
        raise ConfigError("no run folder has a readable samples.png")
    ncols = min(len(runs), SAMPLE_COLUMNS)
    nrows = math.ceil(len(runs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.5 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, run_dir, label in zip(axes.flat, runs["run_dir"], labels):
        ax.imshow(plt.imread(Path(run_dir) / SAMPLES))
        ax.set_title(label, fontsize=9)
    return fig


def plot_margin_sensitivity(records: pd.DataFrame, out: Path, metrics: Sequence[str]) -> list[Path]:
    return save(margin_figure(records, metrics), Path(out), "margin_sensitivity")


def plot_histograms(records: pd.DataFrame, out: Path, metric: str) -> list[Path]:
    return save(histogram_figure(records, metric), Path(out), f"histogram_{metric.split('.')[-1]}")


def plot_reliability(panels: dict[str, pd.DataFrame], out: Path, metric: str, thresholds: Sequence[float] = (),
                     name: str = "reliability") -> list[Path]:
    return save(reliability_figure(panels, metric, thresholds), Path(out), f"{name}_{metric}")


def plot_sample_grids(records: pd.DataFrame, out: Path) -> list[Path]:
    return save(samples_figure(records), Path(out), "samples")


def probe_figure(table: pd.DataFrame):
    """The energy probe: per corruption, AUROC of clean against corrupted test digits by severity, a line per
    method (mean over runs, min-max band); 0.5 = D's energy does not notice the corruption."""
    kinds = list(dict.fromkeys(table["corruption"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.6 * len(kinds), 3.0), squeeze=False, sharey=True,
                             layout="constrained")
    methods = sorted(set(table["method"]) - {BASELINE}) + ([BASELINE] if BASELINE in set(table["method"]) else [])
    for ax, kind in zip(axes[0], kinds):
        rows = table[table["corruption"] == kind]
        for i, method in enumerate(methods):
            runs = rows[rows["method"] == method]
            series = [(r["severity"], r["auroc"]) for _, r in runs.groupby("run_id")]
            style = {"color": "0.35", "ls": "--"} if method == BASELINE else {"color": f"C{i}"}
            draw_spread(ax, series, marker="o", ms=3, label=method, **style)
        ax.axhline(0.5, color="0.5", lw=0.7, ls=":")
        ax.set_title(kind, fontsize=10)
        ax.set_xlabel("severity")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("AUROC (corrupted above clean)")
    axes[0][-1].legend(fontsize=7)
    return fig
