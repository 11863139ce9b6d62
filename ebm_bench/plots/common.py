"""What every figure shares: the file-only backend, saving, run files read tolerantly, and a mean with its spread
over the runs of one method."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ebm_bench.files import atomic_write_bytes
from ebm_bench.record import EVALUATION, SAMPLES, TRAJECTORY  # noqa: E402

DPI = 110
# Config fields that do not change what a run computes: runs differing only in these and the seed are seeds
_NOT_SETTINGS = {"config.seed", "config.out", "config.data_root", "config.download", "config.log_every",
                 "config.checkpoint_every", "config.device"}


def figure_bytes(fig, fmt: str = "png") -> bytes:
    """The figure as PNG or SVG bytes, the same bytes for the same figure: a committed plot that re-renders
    unchanged stays unchanged (an SVG would otherwise carry its date and random element ids)."""
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None
    with matplotlib.rc_context({"svg.hashsalt": "ebm-bench"}):
        fig.savefig(buffer, format=fmt, dpi=DPI, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def save(fig, out: Path, name: str) -> list[Path]:
    """`name`.png and `name`.svg under `out`, each written whole or not at all; the figure is closed."""
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    try:
        for path in paths:
            atomic_write_bytes(path, figure_bytes(fig, path.suffix[1:]))
    finally:
        plt.close(fig)
    return paths


def read_table_or_why(run_dir: str | Path, name: str) -> tuple[pd.DataFrame | None, str]:
    """(a run's CSV, "") or, when it has no rows to draw, (None, why): it is absent, empty (a run that diverged
    before its first log), or not a table of numbers by step (damaged: a figure leaves that run out, never fails)."""
    path = Path(run_dir) / name
    if not path.is_file():
        return None, f"no {name}"
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None, f"{name} is empty"
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError, OSError) as err:  # binary or damaged
        reason = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        return None, f"{name} is unreadable ({reason[:100]})"
    if "step" in table and table.empty:  # a header alone: its columns read as text, though nothing is wrong
        return None, f"{name} holds no row"
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if "step" not in table or text:
        what = f"its column {text[0]!r} holds text" if text else "it has no step column"
        return None, f"{name} is not a table of numbers by step ({what})"
    return table, ""


def read_table(run_dir: str | Path, name: str) -> pd.DataFrame | None:
    """A run's CSV, or None when it has no rows to draw (see `read_table_or_why`)."""
    return read_table_or_why(run_dir, name)[0]


def trajectory(run_dir: str | Path) -> pd.DataFrame | None:
    return read_table(run_dir, TRAJECTORY)


def evaluation(run_dir: str | Path) -> pd.DataFrame | None:
    """evaluation.csv of a run trained with --eval-every; None without one."""
    return read_table(run_dir, EVALUATION)


def warn_left_out(figure: str, run_dir: str | Path, why: str) -> None:
    """One line for a run that a figure leaves out, naming the run and why."""
    warnings.warn(f"{figure} leaves out {run_dir}: {why}", stacklevel=3)


def readable_samples(run_dir: str | Path, figure: str) -> bool:
    """Whether a run's samples.png is there and decodes whole; a damaged one (e.g. truncated) is named in a
    warning, so that a figure or page leaves it out instead of failing or embedding a broken image."""
    path = Path(run_dir) / SAMPLES
    if not path.is_file():
        return False
    try:
        plt.imread(path)
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's, under matplotlib, for a truncated or foreign file
        reason = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        warnings.warn(f"{figure} leaves out {path}: not a readable PNG ({reason[:100]})", stacklevel=2)
        return False
    return True


def has_values(table: pd.DataFrame | None, column: str) -> bool:
    return table is not None and column in table and bool(table[column].notna().any())


def spread(series: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, mean, min, max) of several runs' (x, y) series on one x grid.

    Runs of one method log at the same steps, so their own steps are used as they are; where they differ (a
    diverged run stops early), the grid is every step inside the range all runs cover, each run interpolated onto
    it, so that the mean never mixes a different set of runs from one step to the next.
    """
    series = [(np.asarray(x, float), np.asarray(y, float)) for x, y in series]
    series = [(x[np.isfinite(y)], y[np.isfinite(y)]) for x, y in series]
    series = [(x, y) for x, y in series if len(x)]
    if not series:
        empty = np.array([])
        return empty, empty, empty, empty
    first = series[0][0]
    if all(len(x) == len(first) and np.array_equal(x, first) for x, _ in series):
        grid, stacked = first, np.stack([y for _, y in series])
    else:
        low, high = max(x.min() for x, _ in series), min(x.max() for x, _ in series)
        grid = np.unique(np.concatenate([x for x, _ in series]))
        grid = grid[(grid >= low) & (grid <= high)]
        stacked = np.stack([np.interp(grid, x, y) for x, y in series])
    return grid, stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)


def draw_spread(ax, series: list[tuple[np.ndarray, np.ndarray]], **line) -> list[float]:
    """The mean line of the runs and, for more than one, a min-max band; returns the values drawn (for limits)."""
    x, mean, low, high = spread(series)
    if not len(x):
        return []
    if len(x) == 1:
        line = {"marker": "o"} | line
    ax.plot(x, mean, lw=1.4, **line)
    if sum(1 for _, y in series if np.isfinite(np.asarray(y, float)).any()) > 1:
        ax.fill_between(x, low, high, color=line.get("color"), alpha=0.18, lw=0)
    return [*low, *high]


def runs_label(runs: pd.DataFrame) -> str:
    """'3 seeds' when the runs differ only in their seed, else '8 runs' (a sweep's variants share the band)."""
    config = [c for c in runs.columns if c.startswith("config.") and c not in _NOT_SETTINGS]
    varied = any(runs[c].astype(str).nunique() > 1 for c in config)
    n = len(runs)
    if n == 1:
        return "1 run"
    return f"{n} runs" if varied else f"{n} seeds"


def figure_legend(fig, banded: bool) -> None:
    """One legend under all panels, each label once; the band's meaning is said when a band is drawn."""
    handles, labels = [], []
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if banded:
        handles.append(Patch(color="0.5", alpha=0.25))
        labels.append("line: mean over the runs; band: min-max over the runs")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8, frameon=False)
