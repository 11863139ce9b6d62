"""The sweep plots (matplotlib, PNG and SVG): energy trajectories, margin sensitivity, score histograms (the EBGAN
paper's Figure 2) and sample grids per margin (its Figure 9)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .errors import ConfigError  # noqa: E402
from .files import SAMPLES  # noqa: E402
from .runs import load_records, load_trajectory  # noqa: E402

TRAJECTORY_PANELS = [("energy", ["energy_real_mean", "energy_fake_mean"]), ("margin", ["margin"]),
                     ("k_t", ["k_t"]), ("M_global", ["m_global"])]
MARGIN = "config.method_options.margin"


def _save(fig, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for path in paths:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths


def plot_trajectories(records: pd.DataFrame, out: Path) -> list[Path]:
    """Per method: E(x) and E(G(z)) (solid, dashed), margin, k_t and M_global over steps, one line per run."""
    methods = sorted(records["method"].unique())
    panels = [(title, cols) for title, cols in TRAJECTORY_PANELS
              if any(c in load_trajectory(d) for d in records["run_dir"] for c in cols)]
    fig, axes = plt.subplots(len(panels), len(methods), figsize=(4 * len(methods), 2.6 * len(panels)),
                             squeeze=False, sharex="col")
    for col, method in enumerate(methods):
        axes[0][col].set_title(method)
        for _, run in records[records["method"] == method].iterrows():
            frame = load_trajectory(run["run_dir"])
            for row, (title, columns) in enumerate(panels):
                for column, style in zip(columns, ("-", "--")):
                    if column in frame and frame[column].notna().any():
                        axes[row][col].plot(frame["step"], frame[column], style, lw=1,
                                            label=f"{column} (seed {run['seed']})")
        for row, (title, _) in enumerate(panels):
            axes[row][col].set_ylabel(title)
        axes[-1][col].set_xlabel("step")
    axes[0][0].legend(fontsize=6)
    return _save(fig, out, "trajectories")


def plot_margin_sensitivity(records: pd.DataFrame, out: Path, metrics: Sequence[str]) -> list[Path]:
    """Each metric against the margin m (log axis), mean and std over seeds; class coverage beside it."""
    if MARGIN not in records or records[MARGIN].isna().all():
        raise ConfigError("margin sensitivity needs runs of a method with a margin (ebgan, ebgan-pt)")
    metrics = [m for m in metrics if m in records and records[m].notna().any()]
    if not metrics:
        raise ConfigError("the runs hold none of the metrics asked for the margin plot")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
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
    return _save(fig, out, "margin_sensitivity")


def plot_histograms(records: pd.DataFrame, out: Path, metric: str) -> list[Path]:
    """Share of runs per score bin, one histogram per method on shared bins (the paper's Figure 2)."""
    if metric not in records or records[metric].notna().sum() == 0:
        raise ConfigError(f"no run holds the metric {metric!r} for a histogram")
    values = records[metric].dropna()
    bins = 20 if values.nunique() > 1 else 1
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for method, group in records.groupby("method"):
        scores = group[metric].dropna()
        ax.hist(scores, bins=bins, range=(values.min(), values.max()), alpha=0.5, label=f"{method} ({len(scores)})",
                weights=[100.0 / len(scores)] * len(scores))
    ax.set_xlabel(metric.split(".")[-1])
    ax.set_ylabel("% of runs")
    ax.legend(fontsize=7)
    return _save(fig, out, f"histogram_{metric.split('.')[-1]}")


def plot_sample_grids(records: pd.DataFrame, out: Path) -> list[Path]:
    """Sample grids side by side, one per margin (first seed), as the paper's Figure 9."""
    runs = records[records["run_dir"].map(lambda d: (Path(d) / SAMPLES).exists())]
    if MARGIN in runs and runs[MARGIN].notna().any():
        runs = runs.sort_values([MARGIN, "seed"]).groupby(MARGIN).head(1)
        labels = [f"m = {m:g}" for m in runs[MARGIN]]
    else:
        runs = runs.sort_values(["method", "seed"]).groupby("method").head(1)
        labels = list(runs["method"])
    if runs.empty:
        raise ConfigError("no run folder has a samples.png")
    fig, axes = plt.subplots(1, len(runs), figsize=(2.2 * len(runs), 2.5), squeeze=False)
    for ax, run_dir, label in zip(axes[0], runs["run_dir"], labels):
        ax.imshow(plt.imread(Path(run_dir) / SAMPLES))
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    return _save(fig, out, "samples")


def plot_all(paths: Sequence[str | Path], out: str | Path, metrics: Sequence[str] = ()) -> list[Path]:
    """Every plot that the runs under `paths` can make."""
    records = load_records(paths)
    if records.empty:
        raise ConfigError(f"no run folders under {', '.join(map(str, paths))}")
    out = Path(out)
    preferred = ["evaluation.i_prime", "evaluation.classes_covered", "evaluation.mnist_is", "evaluation.fid_mnist",
                 "evaluation.fid", "evaluation.energy_auroc"]
    metrics = list(metrics) or [c for c in preferred if c in records and records[c].notna().any()]
    written = plot_trajectories(records, out) + plot_sample_grids(records, out)
    if MARGIN in records and records[MARGIN].nunique() > 1:
        written += plot_margin_sensitivity(records, out, metrics)
    for metric in metrics[:1]:  # the paper's Figure 2 is a histogram of I'
        written += plot_histograms(records, out, metric)
    return written
