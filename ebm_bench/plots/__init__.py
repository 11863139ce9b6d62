"""Plots of run folders (matplotlib, PNG and SVG), one module per figure family:

energy   the energy view: real and generated energy relative to real data, margin, energy AUROC, per method
quality  scores over training from evaluation.csv (--eval-every), a line per method
sweep    margin sensitivity, score histograms (the EBGAN paper's Figure 2), sample grids (its Figure 9)
raw      trajectory columns as logged, in each method's own units

Each `*_figure` returns a matplotlib figure (for pages that embed it) and each `plot_*` writes one to a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ebm_bench.errors import ConfigError
from ebm_bench.metrics import headline_order
from ebm_bench.record import check_out_dir, load_records

from .common import figure_bytes, readable_samples, save
from .energy import energy_figure, normalise_energy, plot_energy, reference_energy
from .quality import plot_quality, quality_figure, tracking_figure
from .raw import DEFAULT_PANELS, plot_raw_trajectories
from .sweep import (
    MARGIN,
    histogram_figure,
    margin_figure,
    plot_histograms,
    plot_margin_sensitivity,
    plot_reliability,
    plot_sample_grids,
    probe_figure,
    reliability_figure,
    samples_figure,
)


__all__ = ["DEFAULT_PANELS", "MARGIN", "energy_figure", "figure_bytes", "histogram_figure",
           "margin_figure", "normalise_energy", "plot_all", "plot_energy", "plot_histograms",
           "plot_margin_sensitivity", "plot_quality", "plot_raw_trajectories", "plot_reliability", "plot_sample_grids",
           "probe_figure", "quality_figure", "record_columns", "reference_energy", "reliability_figure",
           "samples_figure", "save", "tracking_figure"]


def default_metrics(records) -> list[str]:
    """The scores a margin curve and a histogram show by default: the metrics' headline order, those present."""
    columns = [f"evaluation.{name}" for name in headline_order()]
    return [c for c in columns if c in records and records[c].notna().any()]


def record_columns(records, names: Sequence[str]) -> list[str]:
    """Record columns for score names as the leaderboard spells them: `i_prime` is `evaluation.i_prime` and
    `i_prime.best` is `quality.i_prime.best`; a full column name stays as it is."""
    columns, unknown = [], []
    for name in names:
        found = next((c for c in (name, f"evaluation.{name}", f"quality.{name}") if c in records), None)
        (columns if found else unknown).append(found or name)
    if unknown:
        raise ConfigError(f"the runs hold no score named {', '.join(unknown)}; use a name from their records, "
                          f"e.g. i_prime, fid_mnist or i_prime.best")
    return columns


def plot_all(paths: Sequence[str | Path], out: str | Path, metrics: Sequence[str] = (),
             raw: Sequence[str] | None = None) -> list[Path]:
    """Every plot that the runs under `paths` can make: the energy view, quality over training (runs with
    evaluation.csv), sample grids, and for a sweep the margin curve and a score histogram. `raw` also draws the
    logged trajectory columns in their own units: () for the default panels, or the columns to draw."""
    records = load_records(paths)
    if records.empty:
        raise ConfigError(f"no run folders under {', '.join(map(str, paths))}")
    out_arg, out = out, Path(out)
    metrics = record_columns(records, metrics) if metrics else default_metrics(records)
    check_out_dir(out_arg)  # after the records and metrics: a mistyped argument leaves no empty folder behind
    written = []
    for figure, name in ((energy_figure(records), "energy"), (quality_figure(records), "quality")):
        if figure is not None:
            written += save(figure, out, name)
    if records["run_dir"].map(lambda d: readable_samples(d, "the sample grid")).any():
        written += plot_sample_grids(records, out)
    if MARGIN in records and records[MARGIN].nunique() > 1:
        written += plot_margin_sensitivity(records, out, metrics)
    for metric in metrics[:1]:  # the paper's Figure 2 is a histogram of I'
        written += plot_histograms(records, out, metric)
    if raw is not None:
        written += plot_raw_trajectories(records, out, list(raw) or None)
    return written
