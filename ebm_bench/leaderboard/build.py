"""Run records -> a leaderboard table (one row per method and variant per dataset and budget).

A leaderboard row is one method (and variant, where the configs of a method's runs differ in more than the seed)
on one dataset and budget: for each metric the mean, std and 95% Student-t interval over the seeds that
finished, how many seeds ran and how many diverged (a diverged or failed run counts as a failure, never
silently dropped), parameter counts, wall time and speed, and the setup the numbers depend on (evaluation N,
classifier and Inception weights hashes, library versions, data hash). Rows are ranked by a metric in its own
direction (higher or lower is better), by default by the first of the metrics' ranking order
(metrics.ranking_order) the table holds.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.metrics import METRICS, headline_order, ranking_order
from ebm_bench.stats import ci95_half_width

GROUP_KEYS = ["dataset", "budget", "method", "variant"]
# Columns of the records that say what a number means; a comparison across different values is refused.
SETUP_COLUMNS = {
    "eval_n": "evaluation.n",
    "classifier_sha256": "evaluation_provenance.classifier_sha256",
    "inception_sha256": "evaluation_provenance.inception_weights_sha256",
    "torch_fidelity": "evaluation_provenance.torch_fidelity_version",
    "data_sha256": "manifest.data_sha256",
    "image_size": "config.image_size",
}
INFO_COLUMNS = {"torch": "manifest.versions.torch", "ebm_bench": "manifest.versions.ebm-bench"}
BLOCKING_SETUP = ("budget", "eval_n", "classifier_sha256", "inception_sha256", "torch_fidelity", "data_sha256",
                  "image_size")
# Config columns that never make a variant: they do not change results or are the grouping keys already.
_NOT_VARIANT = {"config.seed", "config.out", "config.data_root", "config.download", "config.log_every",
                "config.checkpoint_every", "config.method", "config.dataset", "config.budget.kind",
                "config.budget.amount", "config.n_samples"}
# The scores a reader sees first (the report's first table, the terminal's headline view) and the default ranking
# are facts of each metric (its `headline` and `ranking` places, metrics/base.py). FID-MNIST ranks first because it
# is worse for both failures the committed experiments found: a G collapsed onto a few confidently drawn digits and
# one that draws noise (the margin U-shape of leaderboards/mnist-margin-sensitivity shows on it). I', a reverse-KL
# confidence score, rewards the collapse (leaderboards/mnist-mlp-4ep, mnist-grid-reliability), so it stands beside
# FID-MNIST with classes covered.
HEADLINE_SCORES = 5  # how many scores a table's headline view shows


# A score over training (--eval-every) is named "<metric>.<statistic>", e.g. "i_prime.best" or "fid_mnist.drop"
# (stats.quality_statistics): last_k_mean (of the last 3 evaluations) and auc (the curve's time-average) see more
# of an oscillating curve than its final point does.
QUALITY_STATISTICS = ("best", "final", "last_k_mean", "auc", "drop", "near_best_share", "best_step")
# the statistics that are values of the metric itself, better in its direction
_IN_METRIC_DIRECTION = ("best", "final", "last_k_mean", "auc")


def metric_direction(metric: str) -> str | None:
    """"higher" or "lower" (which is better), or None for diagnostics without a better side."""
    base, _, statistic = metric.rpartition(".")
    if base and statistic in QUALITY_STATISTICS:
        if statistic in _IN_METRIC_DIRECTION:
            return metric_direction(base)
        return {"drop": "lower", "near_best_share": "higher"}.get(statistic)
    return METRICS[metric].direction if metric in METRICS else None


def default_rank_by(metrics: Sequence[str]) -> str | None:
    """The metric a table ranks by when none is asked for: the first of the metrics' ranking order among `metrics`,
    else their first with a better side; None (no ranking) when none has one."""
    return next((m for m in ranking_order() if m in metrics), next((m for m in metrics if metric_direction(m)), None))


def headline_metrics(metrics: Sequence[str], rank_by: str | None, n: int = HEADLINE_SCORES) -> list[str]:
    """The `n` scores of `metrics` shown first: the ranking one, then the metrics' headline order, then the others in
    order."""
    ordered = [m for m in [rank_by, *headline_order()] if m in metrics] + list(metrics)
    return list(dict.fromkeys(ordered))[:n]


def metric_column(metric: str) -> str:
    """The records' column of a metric: `evaluation.<name>`, or `quality.<name>.<statistic>` for a score over
    training."""
    base, _, statistic = metric.rpartition(".")
    return f"quality.{metric}" if base and statistic in QUALITY_STATISTICS else f"evaluation.{metric}"


def _short(column: str) -> str:
    for prefix in ("config.method_options.", "config.mlp.", "config.optim.", "config."):
        if column.startswith(prefix):
            return column[len(prefix):]
    return column


def _variants(records: pd.DataFrame) -> pd.Series:
    """Per run: the config fields in which its method's runs differ (besides the seed), as 'name=value; ...'."""
    variant = pd.Series("", index=records.index)
    for _, runs in records.groupby(["dataset", "method"]):
        columns = [c for c in runs.columns if c.startswith("config.") and c not in _NOT_VARIANT
                   and runs[c].astype(str).nunique() > 1]
        variant[runs.index] = runs[columns].apply(
            lambda row: "; ".join(f"{_short(c)}={row[c]}" for c in columns), axis=1) if columns else ""
    return variant


def record_metrics(records: pd.DataFrame) -> list[str]:
    """Metric names present in the records' `evaluation.*` columns (counts like n and n_heldout excluded). Scores
    over training (`quality_metrics`) join a table when asked for by name."""
    names = [c[len("evaluation."):] for c in records.columns if c.startswith("evaluation.")]
    return [n for n in names if not (n == "n" or n.startswith("n_")) and pd.api.types.is_numeric_dtype(
        records[f"evaluation.{n}"])]


def quality_metrics(records: pd.DataFrame) -> list[str]:
    """The records' scores over training, e.g. "i_prime.best", "i_prime.drop" (see QUALITY_STATISTICS)."""
    return [c[len("quality."):] for c in records.columns if c.startswith("quality.")
            and pd.api.types.is_numeric_dtype(records[c])]


def _round(value, digits: int = 6):
    """Floats to 6 significant digits, so a table re-renders identically; counts stay exact."""
    if not isinstance(value, float) or value != value or value in (math.inf, -math.inf) or value.is_integer():
        return value
    return float(f"{value:.{digits}g}")


def leaderboard_table(records: pd.DataFrame, metrics: Sequence[str] = (), rank_by: str | None = None,
                      reference: dict[str, float] | None = None, reference_label: str = "real data"
                      ) -> pd.DataFrame:
    """One row per (dataset, budget, method, variant), ranked by `rank_by` (default: `default_rank_by`) within each
    dataset and budget."""
    if records.empty:
        raise ConfigError("no run records to make a leaderboard from")
    records = records.copy()
    records["budget"] = records["budget.amount"].map(lambda a: f"{a:g}") + " " + records["budget.kind"]
    records["variant"] = _variants(records)
    metrics = list(metrics) or record_metrics(records)
    if rank_by is not None and rank_by not in metrics:
        metrics.append(rank_by)  # ranking by a score shows it
    missing = [m for m in metrics if metric_column(m) not in records]
    if missing:
        raise ConfigError(f"the records hold no metric(s) {', '.join(missing)}; they hold: "
                          f"{', '.join(record_metrics(records) + quality_metrics(records)) or 'none'}")
    rows = []
    for key, runs in records.groupby(GROUP_KEYS, sort=True):
        finished = runs[runs["status"] == "finished"]
        row = dict(zip(GROUP_KEYS, key)) | {"n_runs": len(runs), "n_diverged": int((runs["status"] != "finished")
                                                                                     .sum())}
        for metric in metrics:
            values = finished[metric_column(metric)].dropna().astype(float)
            n = len(values)
            std = values.std(ddof=1) if n > 1 else float("nan")
            row |= {f"{metric}_mean": values.mean() if n else float("nan"), f"{metric}_std": std,
                    f"{metric}_ci95": ci95_half_width(std, n), f"{metric}_n": n}
        row |= {"params_g": int(runs["params_g"].iloc[0]), "params_d": int(runs["params_d"].iloc[0]),
                "wall_s": finished["wall_s"].mean(), "steps_per_s": finished["steps_per_s"].mean()}
        for name, column in (SETUP_COLUMNS | INFO_COLUMNS).items():
            values = sorted(runs[column].dropna().astype(str).unique()) if column in runs else []
            row[name] = "|".join(values)
        rows.append(row)
    table = pd.DataFrame(rows)
    if reference:
        table = pd.concat([table, _reference_rows(table, metrics, reference, reference_label)], ignore_index=True)
    table = _rank(table, rank_by or default_rank_by(metrics))
    return table.apply(lambda column: column.map(_round)) if not table.empty else table


def _reference_rows(table: pd.DataFrame, metrics: Sequence[str], reference: dict[str, float], label: str
                    ) -> pd.DataFrame:
    rows = []
    for dataset, budget in table[["dataset", "budget"]].drop_duplicates().itertuples(index=False):
        row = {"dataset": dataset, "budget": budget, "method": label, "variant": "", "n_runs": 0, "n_diverged": 0}
        for metric in metrics:
            row |= {f"{metric}_mean": reference.get(metric, float("nan")), f"{metric}_std": float("nan"),
                    f"{metric}_ci95": float("nan"), f"{metric}_n": 0}
        rows.append(row)
    return pd.DataFrame(rows)


def _rank(table: pd.DataFrame, rank_by: str | None) -> pd.DataFrame:
    if rank_by is None:
        table.insert(0, "rank", "")
        return table
    if f"{rank_by}_mean" not in table:
        raise ConfigError(f"cannot rank by {rank_by!r}: not a metric of this table")
    ascending = metric_direction(rank_by) == "lower"
    table = table.sort_values(["dataset", "budget", f"{rank_by}_mean"], ascending=[True, True, ascending],
                              na_position="last", kind="stable").reset_index(drop=True)
    is_model = table["n_runs"] > 0
    ranks = table[is_model].groupby(["dataset", "budget"]).cumcount() + 1
    table.insert(0, "rank", ranks.reindex(table.index).map(lambda r: "" if r != r else str(int(r))))
    return table
