"""Does a quantity logged during training track sample quality? (BEGAN's claim for M_global.)

For each run with the quantity in its trajectory and an evaluation.csv (--eval-every), the quantity at each
evaluation step is paired with the scores there, and Spearman's correlation is taken per run and over all runs'
pairs together. A convergence measure should fall as quality rises: positive against FID, negative against I'.
The step's own correlation with each score rides along (`rho_step_<metric>`): a measure that only falls with time
tells no more than the step count does.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.record import corrupt_file_error, EVALUATION, load_trajectory, TRAJECTORY
from ebm_bench.stats import spearman


def _read(path: Path) -> pd.DataFrame | None:
    """A run's CSV of numbers by step, or None (with a warning naming it) when it is damaged: the table leaves that
    run out rather than fail."""
    try:
        table = load_trajectory(path.parent) if path.name == TRAJECTORY else pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as err:
        warnings.warn(f"the convergence table leaves out {path.parent}: {corrupt_file_error(path, err)}", stacklevel=3)
        return None
    if "step" in table and table.empty:  # a header alone (its columns read as text): no pair, nothing wrong
        return None
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if "step" not in table or text:
        what = f"its column {text[0]!r} holds text" if text else "it has no step column"
        warnings.warn(f"the convergence table leaves out {path.parent}: {path.name} is not a table of numbers by "
                      f"step ({what})", stacklevel=3)
        return None
    return table


def paired(run_dir: str | Path, measure: str) -> pd.DataFrame | None:
    """evaluation.csv joined with the trajectory's `measure` at the same steps (None where either is missing)."""
    path = Path(run_dir) / EVALUATION
    if not path.exists():
        return None
    trajectory = _read(Path(run_dir) / TRAJECTORY)
    if trajectory is None or measure not in trajectory or trajectory[measure].isna().all():
        return None
    scores = _read(path)
    if scores is None:
        return None
    return scores.merge(trajectory[["step", measure]], on="step").dropna(subset=[measure])


def convergence_table(records: pd.DataFrame, measure: str = "m_global",
                      metrics: Sequence[str] = ("fid_mnist", "i_prime", "precision")) -> pd.DataFrame:
    """One row per run, then one row "all runs" pooling their pairs: points, and Spearman's rho of `measure`
    against each metric (columns `rho_<metric>`), and of the step against it (`rho_step_<metric>`)."""
    tables = []
    for row in records.itertuples():
        table = paired(row.run_dir, measure)
        if table is not None and len(table) >= 3:
            tables.append(table.assign(run_id=row.run_id, method=row.method, seed=row.seed))
    if not tables:
        raise ConfigError(f"no run has both {measure!r} in its trajectory and an evaluation.csv with 3 or more "
                          "rows; train with --eval-every")
    rows = []
    for label, table in [(t["run_id"].iloc[0], t) for t in tables] + [("all runs", pd.concat(tables))]:
        row = {"run_id": label, "method": ",".join(sorted(set(table["method"]))), "points": len(table)}
        for metric in metrics:
            found = metric in table
            row[f"rho_{metric}"] = spearman(table[measure], table[metric]) if found else float("nan")
            row[f"rho_step_{metric}"] = spearman(table["step"], table[metric]) if found else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
