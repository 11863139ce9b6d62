"""Trajectory columns as logged, in each method's own units: one column of panels per method, a line per run.
The energy view (energy.py) is the comparison across methods; these panels are for reading one method's state
(k_t, M_global, losses, the pulling-away term) as the trainer saw it."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.record import TRAJECTORY
from ebm_bench.trajectory import STANDARD_COLUMNS

from .common import plt, read_table_or_why, save, warn_left_out

DEFAULT_PANELS = [("energy", ["energy_real_mean", "energy_fake_mean"]), ("margin", ["margin"]), ("k_t", ["k_t"]),
                  ("M_global", ["m_global"])]


def _panels(columns: Sequence[str] | None, frames: dict[str, pd.DataFrame]) -> list[tuple[str, list[str]]]:
    if not columns:
        return DEFAULT_PANELS
    logged = sorted({c for frame in frames.values() for c in frame.columns} - {"step"})
    unknown = [c for c in columns if c not in logged]
    if unknown:
        known = logged or [c for c in STANDARD_COLUMNS if c != "step"]
        raise ConfigError(f"no run logged the trajectory column(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(known)}")
    return [(column, [column]) for column in columns]


def plot_raw_trajectories(records: pd.DataFrame, out: Path, columns: Sequence[str] | None = None) -> list[Path]:
    """Per method, one panel per column group (default: energies real solid and generated dashed, margin, k_t,
    M_global; or one panel per name in `columns`) over steps, one line per run; panels no run logged are left
    out."""
    frames = {}
    for run_dir in records["run_dir"]:
        frames[run_dir], why = read_table_or_why(run_dir, TRAJECTORY)
        if why:
            warn_left_out("the raw trajectory plot", run_dir, why)
    frames = {d: f for d, f in frames.items() if f is not None}
    if not frames:
        raise ConfigError("no run logged a trajectory (trajectory.csv is missing or empty in every run folder)")
    panels = [(title, cols) for title, cols in _panels(columns, frames)
              if any(c in f and f[c].notna().any() for f in frames.values() for c in cols)]
    if not panels:
        asked = [c for _, names in _panels(columns, frames) for c in names]
        raise ConfigError(f"the runs logged no value in {', '.join(asked)}; choose other trajectory columns")
    methods = sorted(records.loc[records["run_dir"].isin(frames), "method"].unique())
    fig, axes = plt.subplots(len(panels), len(methods), figsize=(4 * len(methods), 2.6 * len(panels)),
                             squeeze=False, sharex="col")
    for col, method in enumerate(methods):
        axes[0][col].set_title(method)
        for _, run in records[records["method"] == method].iterrows():
            frame = frames.get(run["run_dir"])
            if frame is None:
                continue
            for row, (_, names) in enumerate(panels):
                for column, style in zip(names, ("-", "--")):
                    if column in frame and frame[column].notna().any():
                        axes[row][col].plot(frame["step"], frame[column], style, lw=1,
                                            label=f"{column} (seed {run['seed']})")
        for row, (title, _) in enumerate(panels):
            axes[row][col].set_ylabel(title)
        axes[-1][col].set_xlabel("step")
    axes[0][0].legend(fontsize=6)
    return save(fig, Path(out), "trajectories")
