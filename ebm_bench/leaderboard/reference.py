"""Leaderboards from run folders or CSV files, with the real-data reference row computed like the runs' scores."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from ebm_bench.datasets import default_data_root, to_unit_range
from ebm_bench.datasets.mnist import load_mnist
from ebm_bench.errors import ConfigError
from ebm_bench.runs import load_records

from .build import leaderboard_table, record_metrics


def reference_scores(records: pd.DataFrame, metrics: Sequence[str], data_root: str | None) -> dict[str, float]:
    """Scores of real MNIST training images, as many as the runs scored, against the runs' reference set.

    Real images are the ceiling a generator is measured against; the training split is used so that FID-type
    metrics compare two different real sets (the runs are scored against the test split).
    """
    from ebm_bench.metrics import METRICS, score_images

    scored = [m for m in metrics if m in METRICS and METRICS[m].needs in ("classifier", "samples", "inception")]
    if not scored:
        return {}
    n = int(records["evaluation.n"].dropna().max())
    image_size = int(records["config.image_size"].iloc[0])
    root = data_root or records["config.data_root"].iloc[0] or default_data_root()
    if not Path(root).exists():
        root = default_data_root()
    images = to_unit_range(load_mnist(root, "train", image_size).images[:n])
    reference = records["evaluation_provenance.reference"].dropna().iloc[0] \
        if "evaluation_provenance.reference" in records else "mnist-test"
    return score_images(images, scored, reference=reference, data_root=root)


def leaderboard_from_runs(paths: Sequence[str], metrics: Sequence[str] = (), rank_by: str | None = None,
                          reference: str = "auto", data_root: str | None = None) -> pd.DataFrame:
    records = load_records(paths)
    if records.empty:
        raise ConfigError(f"no run folders (with result.json) under {', '.join(paths)}")
    metrics = list(metrics) or record_metrics(records)
    ref_scores, label = None, "real data"
    if reference not in ("auto", "none"):
        raise ConfigError(f"--reference is auto or none, not {reference!r}")
    if reference == "auto" and set(records["dataset"]) == {"mnist"} and "evaluation.n" in records:
        ref_scores = reference_scores(records, metrics, data_root)
        label = f"real data (MNIST train, N={int(records['evaluation.n'].max())})"
    return leaderboard_table(records, metrics, rank_by, ref_scores, label)


def load_table(path: str) -> pd.DataFrame:
    """A leaderboard from a CSV written by `ebm-bench leaderboard --format csv`, or computed from run folders."""
    if Path(path).is_file():
        if not path.endswith(".csv"):
            raise ConfigError(f"{path}: expected a leaderboard .csv or a folder of runs")
        return pd.read_csv(path, dtype={"variant": str, "rank": str}).fillna({"variant": "", "rank": ""})
    return leaderboard_from_runs([path], reference="none")
