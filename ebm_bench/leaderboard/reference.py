"""Leaderboards from run folders or CSV files: reading records tolerantly, and the real-data reference row.

The reference row (real MNIST training images scored like the runs) is computed once and stored beside the
records in `reference.json`, keyed by what changes it: the data's sha256, the evaluation N, the classifier's
sha256, the image size and the reference set. A committed leaderboard then renders from its records alone, with
no data on disk, in a second or two instead of a minute.
"""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import pandas as pd

from ebm_bench.datasets import default_data_root, to_unit_range
from ebm_bench.datasets.mnist import load_mnist
from ebm_bench.errors import ConfigError, EbmBenchError
from ebm_bench.files import write_json
from ebm_bench.record import read_records

from .build import leaderboard_table, record_metrics
from .render import table_metrics

REFERENCE_FILE = "reference.json"


def _reference_key(records: pd.DataFrame, image_size: int, reference: str) -> str:
    def one(column: str) -> str:
        values = sorted(records[column].dropna().astype(str).unique()) if column in records else []
        return "|".join(values)

    return (f"data={one('manifest.data_sha256')} n={int(records['evaluation.n'].dropna().max())} "
            f"classifier={one('evaluation_provenance.classifier_sha256')} size={image_size} reference={reference}")


def _cache_path(paths: Sequence[str]) -> Path | None:
    """`reference.json` in the first given folder of runs (not a run folder itself); None when there is none."""
    for path in map(Path, paths):
        if path.is_dir() and not (path / "result.json").exists():
            return path / REFERENCE_FILE
    return None


def reference_scores(records: pd.DataFrame, metrics: Sequence[str], data_root: str | None,
                     cache: Path | None = None) -> dict[str, float]:
    """Scores of real MNIST training images, as many as the runs scored, against the runs' reference set.

    Real images are the ceiling a generator is measured against; the training split is used so that FID-type
    metrics compare two different real sets (the runs are scored against the test split). Stored scores are
    read from `cache`; missing ones are computed (which needs MNIST) and stored.
    """
    from ebm_bench.metrics import METRICS, score_images

    scored = [m for m in metrics if m in METRICS and METRICS[m].needs in ("classifier", "samples", "inception")]
    if not scored:
        return {}
    image_size = int(records["config.image_size"].iloc[0])
    reference = records["evaluation_provenance.reference"].dropna().iloc[0] \
        if "evaluation_provenance.reference" in records else "mnist-test"
    key = _reference_key(records, image_size, reference)
    stored = _read_cache(cache)
    scores = dict(stored.get(key, {}).get("scores", {}))
    missing = [m for m in scored if m not in scores]
    if missing:
        n = int(records["evaluation.n"].dropna().max())
        root = data_root or records["config.data_root"].iloc[0] or default_data_root()
        if not Path(root).exists():
            root = default_data_root()
        images = to_unit_range(load_mnist(root, "train", image_size, download=False).images[:n])
        scores |= score_images(images, missing, reference=reference, data_root=root)
        if cache is not None:
            stored[key] = {"scores": scores, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            try:
                write_json(cache, {"entries": stored})
            except OSError as err:
                warnings.warn(f"could not store the reference row in {cache}: {err.strerror}", stacklevel=2)
    return {m: scores[m] for m in scored}


def _read_cache(cache: Path | None) -> dict:
    if cache is None or not cache.is_file():
        return {}
    try:
        return json.loads(cache.read_text()).get("entries", {})
    except (ValueError, AttributeError):
        warnings.warn(f"{cache} is unreadable; the reference row is computed again", stacklevel=2)
        return {}


def leaderboard_from_runs(paths: Sequence[str], metrics: Sequence[str] = (), rank_by: str | None = None,
                          reference: str = "auto", data_root: str | None = None) -> pd.DataFrame:
    """The leaderboard of the runs under `paths`; unreadable records are skipped with a warning each and
    counted in an `n_unreadable` column."""
    if reference not in ("auto", "none"):
        raise ConfigError(f"--reference is auto or none, not {reference!r}")
    records, unreadable = read_records(paths)
    for line in unreadable:
        warnings.warn(f"skipped {line}", stacklevel=2)
    if records.empty:
        raise ConfigError(f"no readable run folders (with result.json) under {', '.join(map(str, paths))}")
    metrics = list(metrics) or record_metrics(records)
    ref_scores, label = None, "real data"
    if reference == "auto" and set(records["dataset"]) == {"mnist"} and "evaluation.n" in records:
        try:
            ref_scores = reference_scores(records, metrics, data_root, _cache_path(paths))
            label = f"real data (MNIST train, N={int(records['evaluation.n'].max())})"
        except EbmBenchError as err:  # no MNIST here and nothing stored: the table without its reference row
            warnings.warn(f"no real-data reference row: {str(err).splitlines()[0]}", stacklevel=2)
    table = leaderboard_table(records, metrics, rank_by, ref_scores, label)
    if unreadable:
        table["n_unreadable"] = len(unreadable)
    return table


# The columns every leaderboard CSV has (a metric adds <metric>_mean, _std, _ci95 and _n)
TABLE_COLUMNS = ("dataset", "budget", "method", "variant", "n_runs")
_WRITE_ONE = "write one with `ebm-bench leaderboard RUNS --format csv --output TABLE.csv`"


def load_table(path: str) -> pd.DataFrame:
    """A leaderboard from a CSV written by `ebm-bench leaderboard --format csv`, or computed from run folders. A file
    that is not such a table (unreadable, empty, other columns) is a ConfigError saying which."""
    if Path(path).is_file():
        if not path.endswith(".csv"):
            raise ConfigError(f"{path}: expected a leaderboard .csv or a folder of runs")
        try:
            table = pd.read_csv(path, dtype={"variant": str, "rank": str})
        except pd.errors.EmptyDataError:
            raise ConfigError(f"{path} is empty, not a leaderboard table; {_WRITE_ONE}") from None
        except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as err:
            reason = (str(err).splitlines() or [type(err).__name__])[0][:120]
            raise ConfigError(f"{path} is not a leaderboard table: it does not read as CSV ({reason}); "
                              f"{_WRITE_ONE}") from None
        missing = [c for c in TABLE_COLUMNS if c not in table]
        if not any(f"{m}_std" in table and f"{m}_n" in table for m in table_metrics(table)):
            missing.append("<metric>_mean, _std, _ci95 and _n for at least one metric")
        if missing:
            raise ConfigError(f"{path} is not a leaderboard table: it lacks the column(s) {', '.join(missing)}; "
                              f"{_WRITE_ONE}")
        metrics = table_metrics(table)
        numeric = ["n_runs"] + [f"{m}_{part}" for m in metrics for part in ("mean", "std", "ci95", "n")]
        text = [c for c in numeric if c in table and not pd.api.types.is_numeric_dtype(table[c])]
        if text:
            raise ConfigError(f"{path} is not a leaderboard table: its column(s) {', '.join(text[:5])} hold text "
                              f"where numbers belong; {_WRITE_ONE}")
        return table.fillna({"variant": "", "rank": ""})
    if not Path(path).exists():
        raise ConfigError(f"{path} does not exist; pass a leaderboard .csv or a folder of runs")
    return leaderboard_from_runs([path], reference="none")
