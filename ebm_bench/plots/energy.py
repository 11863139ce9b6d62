"""The energy view: energy of real and generated samples over training, every method on one scale.

Methods measure energy in units that differ by orders of magnitude (BEGAN's per-pixel L1 near 0.05, MAGAN's summed
squared error near 50, GAN's signed logit), so each run's energies are read relative to a reference real energy R:
1 + (E - R) / |R|, which is E / R for the auto-encoder methods (R > 0) and keeps the same reading (real data at 1,
generated samples above it the further D pushes them up) for GAN, where dividing by a negative R would flip it.
R is, best first: D's mean energy of held-out real images at each evaluation (evaluation.csv, interpolated over
the logged steps), the run's final held-out energy, or its last training-batch real energy; each column names
its R.

Layout: one column per method (wrapping after five), energy above and the real-vs-generated energy AUROC beneath,
the y axes shared across columns. A column per method keeps each method's three lines (real, generated, margin)
and its seed band legible, which one shared panel of five methods could not; the shared axes still let the eye
compare methods across columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.record import TRAJECTORY

from .common import (draw_spread, evaluation, figure_legend, has_values, plt, read_table_or_why, runs_label, save,
                     trajectory, warn_left_out)

MAX_COLUMNS = 5
REAL, FAKE, MARGIN_COLOUR, AUROC = "tab:blue", "tab:red", "tab:green", "tab:purple"
SOURCES = {"evaluation": "R = held-out E(x) at each evaluation", "heldout": "R = final held-out E(x)",
           "batch": "R = last training-batch E(x)"}


def normalise_energy(energy, reference) -> np.ndarray:
    """Energy relative to the reference real energy R: 1 + (E - R) / |R| (E / R when R > 0); NaN where R is 0 or
    missing."""
    energy, reference = np.asarray(energy, float), np.asarray(reference, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = 1.0 + (energy - reference) / np.abs(reference)
    return np.where(np.abs(reference) > 0, relative, np.nan)


def reference_energy(steps, evaluation_table: pd.DataFrame | None, final_heldout: float | None,
                     final_batch: float) -> tuple[np.ndarray, str]:
    """R at each of `steps` and where it came from (a key of SOURCES). Evaluations start at the first --eval-every
    step, not at step 0, so before the first one (and after the last) R holds the nearest evaluation's value."""
    steps = np.asarray(steps, float)
    if has_values(evaluation_table, "energy_heldout"):
        points = evaluation_table[["step", "energy_heldout"]].dropna().sort_values("step")
        return np.interp(steps, points["step"], points["energy_heldout"]), "evaluation"
    if final_heldout is not None and math.isfinite(final_heldout):
        return np.full(len(steps), float(final_heldout)), "heldout"
    return np.full(len(steps), float(final_batch)), "batch"


@dataclass
class RunEnergies:
    """One run's series, already relative to its R."""
    steps: np.ndarray
    real: np.ndarray
    fake: np.ndarray | None
    margin: np.ndarray | None
    source: str
    eval_steps: np.ndarray | None = None
    generated: np.ndarray | None = None  # D's energy of generated images at each evaluation
    auroc: np.ndarray | None = None
    final_auroc: float = math.nan


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def run_energies(run: pd.Series) -> RunEnergies | None:
    """The run's energies relative to its R; None when its trajectory logged no real energy (see `_no_energy`)."""
    frame = trajectory(run["run_dir"])
    if frame is None or not has_values(frame, "energy_real_mean"):
        return None
    table = evaluation(run["run_dir"])
    steps = frame["step"].to_numpy(float)
    final_batch = frame["energy_real_mean"].dropna().iloc[-1]
    reference, source = reference_energy(steps, table, _number(run.get("evaluation.energy_heldout_mean")),
                                         final_batch)

    def relative(column: str) -> np.ndarray | None:
        return normalise_energy(frame[column], reference) if has_values(frame, column) else None

    final_auroc = _number(run.get("evaluation.energy_auroc"))  # 0 is an AUROC too (generated below real)
    energies = RunEnergies(steps, relative("energy_real_mean"), relative("energy_fake_mean"), relative("margin"),
                           source, final_auroc=math.nan if final_auroc is None else final_auroc)
    if has_values(table, "energy_generated") and has_values(table, "energy_heldout"):
        energies.eval_steps = table["step"].to_numpy(float)
        energies.generated = normalise_energy(table["energy_generated"], table["energy_heldout"])
    if has_values(table, "energy_auroc"):
        energies.eval_steps = table["step"].to_numpy(float)
        energies.auroc = table["energy_auroc"].to_numpy(float)
    return energies


def _no_energy(run_dir: str) -> str:
    return read_table_or_why(run_dir, TRAJECTORY)[1] or f"{TRAJECTORY} logged no energy_real_mean"


def _draw_energy(ax, runs: list[RunEnergies]) -> list[float]:
    ax.axhline(1.0, color="0.55", ls=":", lw=1, label="reference real energy R (= 1)")
    drawn = draw_spread(ax, [(r.steps, r.real) for r in runs], color=REAL, label="E(x), training batches")
    drawn += draw_spread(ax, [(r.steps, r.fake) for r in runs if r.fake is not None], color=FAKE,
                         label="E(G(z)), training batches")
    drawn += draw_spread(ax, [(r.steps, r.margin) for r in runs if r.margin is not None], color=MARGIN_COLOUR,
                         ls="--", label="margin m")
    drawn += draw_spread(ax, [(r.eval_steps, r.generated) for r in runs if r.generated is not None], color=FAKE,
                         ls=":", marker="o", mfc="white", ms=4, label="E(G(z)), evaluations (fixed noise)")
    return drawn


def _draw_auroc(ax, runs: list[RunEnergies]) -> bool:
    """The AUROC over training (evaluation.csv), or the end-of-run AUROC as a marker at the last step."""
    over_training = [(r.eval_steps, r.auroc) for r in runs if r.auroc is not None]
    finals = [(r.steps[-1], r.final_auroc) for r in runs if r.auroc is None and math.isfinite(r.final_auroc)]
    if not over_training and not finals:
        return False
    ax.axhline(0.5, color="0.55", ls=":", lw=1, label="AUROC 0.5: energies do not separate")
    draw_spread(ax, over_training, color=AUROC, label="energy AUROC, real vs generated")
    if finals:
        ax.plot(*zip(*finals), "D", color=AUROC, ms=5, ls="none", label="energy AUROC at the end of the run")
    ax.set_ylim(-0.03, 1.03)
    return True


def energy_figure(records: pd.DataFrame):
    """The energy view of the runs (see the module's docstring), or None when no run logged an energy."""
    data = {}
    for method in sorted(records["method"].unique()):
        runs = records[records["method"] == method].reset_index(drop=True)
        found = {i: e for i, run in runs.iterrows() if (e := run_energies(run)) is not None}
        for _, run in runs.drop(index=list(found)).iterrows():
            warn_left_out("the energy view", run["run_dir"], _no_energy(run["run_dir"]))
        if found:
            data[method] = (runs.loc[list(found)], list(found.values()))  # a label counts the runs drawn only
    if not data:
        return None
    with_auroc = any(r.auroc is not None or math.isfinite(r.final_auroc) for _, rs in data.values() for r in rs)
    per_block = [3.0, 1.3] if with_auroc else [3.0]
    ncols = min(len(data), MAX_COLUMNS)
    blocks = math.ceil(len(data) / ncols)
    heights = per_block * blocks
    fig = plt.figure(figsize=(2.8 * ncols + 0.8, 0.9 * sum(heights) + 1.6), layout="constrained")
    grid = fig.add_gridspec(len(heights), ncols, height_ratios=heights)
    first_energy = first_auroc = None
    drawn: list[float] = []
    labelled: set[int] = set()  # rows of AUROC panels whose first panel carries the axis label
    for i, (method, (runs, energies)) in enumerate(data.items()):
        row, col = len(per_block) * (i // ncols), i % ncols
        ax = fig.add_subplot(grid[row, col], sharey=first_energy)
        first_energy = first_energy or ax
        drawn += _draw_energy(ax, energies)
        sources = sorted({r.source for r in energies}, key=list(SOURCES).index)
        # one line per source of R, each short enough for its column: side by side, longer titles overlapped
        ax.set_title("\n".join([f"{method}  ({runs_label(runs)})", *(SOURCES[s] for s in sources)]), fontsize=8)
        if col == 0:
            ax.set_ylabel("energy relative to R")
        else:
            ax.tick_params(labelleft=False)  # the axis is shared: its numbers stand once, in the first column
        bottom = ax
        if with_auroc:
            below = fig.add_subplot(grid[row + 1, col], sharex=ax, sharey=first_auroc)
            if _draw_auroc(below, energies):
                first_auroc = first_auroc or below
                ax.tick_params(labelbottom=False)
                bottom = below
                if row in labelled:
                    below.tick_params(labelleft=False)
                else:
                    below.set_ylabel("energy AUROC")
                    labelled.add(row)
            else:
                below.remove()  # no empty panel: this method has no AUROC
        bottom.set_xlabel("step")
    values = np.asarray(drawn, float)
    values = values[np.isfinite(values)]
    if len(values) and values.min() > 0 and values.max() / values.min() >= 10:
        first_energy.set_yscale("log")  # ratios spanning decades; shared, so every column follows
    figure_legend(fig, any(len(energies) > 1 for _, energies in data.values()))
    fig.suptitle("Energy of real and generated samples relative to real data: 1 + (E - R)/|R|, which is E/R "
                 "for R > 0", fontsize=10)
    return fig


def plot_energy(records: pd.DataFrame, out: Path) -> list[Path]:
    fig = energy_figure(records)
    if fig is None:
        raise ConfigError("no run logged an energy (trajectory.csv is missing or empty in every run folder)")
    return save(fig, Path(out), "energy")
