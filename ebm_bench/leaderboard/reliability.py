"""Reliability over a grid (the EBGAN paper's Figures 2 and 3): how often does a configuration train well?

A run is scored by one metric (I' by default). A run that diverged has no score and counts as a failure: below
every threshold, and lowest in the rank test. Each row is a subset of the grid (all configurations, or those with
at most 4 or 3 layers in G and D, as the paper's panels b and c) and a group (the method, and for a grid with
several optimiser settings, each optimiser pair as the paper's Figure 3 separates them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.table import TextTable
from ebm_bench.stats import mann_whitney, wilson_interval

from .build import metric_column

SUBSETS = {"all": 5, "nLayer<=4": 4, "nLayer<=3": 3}  # the largest n_layer_g and n_layer_d of the subset
N_LAYERS = ("config.mlp.n_layer_g", "config.mlp.n_layer_d")
OPTIMIZERS = ("config.optim.optimizer_d", "config.optim.optimizer_g")
DEFAULT_THRESHOLDS = (2.0, 4.0, 6.0, 8.0)


def subset(records: pd.DataFrame, name: str) -> pd.DataFrame:
    most = SUBSETS[name]
    return records[(records[N_LAYERS[0]] <= most) & (records[N_LAYERS[1]] <= most)]


def groups(records: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Each method; for a method whose runs use several optimiser pairs, each pair too (optimD/optimG)."""
    out = []
    for method, runs in records.groupby("method", sort=True):
        out.append((method, runs))
        if all(c in runs for c in OPTIMIZERS) and runs[list(OPTIMIZERS)].drop_duplicates().shape[0] > 1:
            for (opt_d, opt_g), pair in runs.groupby(list(OPTIMIZERS), sort=True):
                out.append((f"{method} D:{opt_d} G:{opt_g}", pair))
    return out


def optimiser_panels(records: pd.DataFrame, reference: str) -> dict[str, pd.DataFrame]:
    """The paper's Figure 3: a panel per optimiser pair (optimD, optimG) of each method whose runs use several,
    holding that pair's runs and, beside them, every run of `reference` (the paper's EBGAN, one optimiser)."""
    if not all(c in records for c in OPTIMIZERS):
        return {}
    beside = records[records["method"] == reference]
    panels = {}
    for method, runs in records[records["method"] != reference].groupby("method", sort=True):
        if runs[list(OPTIMIZERS)].drop_duplicates().shape[0] > 1:
            for (opt_d, opt_g), pair in runs.groupby(list(OPTIMIZERS), sort=True):
                panels[f"{method} D:{opt_d} G:{opt_g}"] = pd.concat([pair, beside])
    return panels


def scores(runs: pd.DataFrame, column: str) -> np.ndarray:
    """The metric per run, -inf for a run that did not finish (diverged): below any threshold, ranked lowest."""
    finished = runs["status"] == "finished"
    return np.where(finished, runs[column].astype(float), -np.inf)


def _share_cell(hits: np.ndarray) -> tuple[float, float, float]:
    """A share of runs with its 95% Wilson interval: a bootstrap of 0 of 64 gives the empty [0, 0], Wilson
    [0, 0.06]."""
    low, high = wilson_interval(int(hits.sum()), hits.size)
    return float(hits.mean()) if hits.size else float("nan"), low, high


def reliability_table(records: pd.DataFrame, metric: str = "i_prime",
                      thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """One row per subset and group: runs, diverged share, median score and the share of runs at or above each
    threshold, each share with its 95% Wilson interval (columns `<name>`, `<name>_low`, `<name>_high`)."""
    column = metric_column(metric)
    if records.empty or column not in records:
        raise ConfigError(f"no run holds the metric {metric!r}; reliability needs it on every finished run")
    missing = [c for c in N_LAYERS if c not in records]
    if missing:
        raise ConfigError("reliability needs MLP runs (n_layer_g, n_layer_d in their configs)")
    rows = []
    for name in SUBSETS:
        for group, runs in groups(subset(records, name)):
            values = scores(runs, column)
            row = {"subset": name, "group": group, "runs": len(values)}
            row["diverged"], row["diverged_low"], row["diverged_high"] = _share_cell(np.isinf(values))
            finite = values[np.isfinite(values)]
            row[f"median_{metric}"] = float(np.median(finite)) if finite.size else float("nan")
            for threshold in thresholds:
                key = f"share_{metric}>={threshold:g}"
                row[key], row[f"{key}_low"], row[f"{key}_high"] = _share_cell(values >= threshold)
            rows.append(row)
    return pd.DataFrame(rows)


def reliability_test(records: pd.DataFrame, better: str, worse: str, metric: str = "i_prime") -> pd.DataFrame:
    """Per subset: the Mann-Whitney test that `better`'s runs score higher than `worse`'s (diverged lowest).
    `auc` is P(a `better` run beats a `worse` run), ties counted half; `p_greater` is one-sided."""
    column = metric_column(metric)
    rows = []
    for name in SUBSETS:
        runs = subset(records, name)
        a, b = (scores(runs[runs["method"] == m], column) for m in (better, worse))
        # -inf would make the rank test's arithmetic NaN: any value below every score ranks the same
        both = np.concatenate([a, b])
        floor = (both[np.isfinite(both)].min() if np.isfinite(both).any() else 0.0) - 1.0
        a, b = np.where(np.isinf(a), floor, a), np.where(np.isinf(b), floor, b)
        test = mann_whitney(a, b)
        rows.append({"subset": name, "better": better, "worse": worse, "runs_better": a.size, "runs_worse": b.size,
                     "auc": test["auc"], "z": test["z"], "p_greater": test["p_greater"]})
    return pd.DataFrame(rows)


def _cell(row: pd.Series, key: str) -> str:
    return f"{row[key]:.2f} [{row[f'{key}_low']:.2f}, {row[f'{key}_high']:.2f}]"


def reliability_markdown(table: pd.DataFrame, tests: pd.DataFrame | None = None) -> str:
    """The table as markdown, each share as `share [95% interval]`; the rank tests beneath."""
    shares = [c for c in table.columns if c.startswith("share_") and not c.endswith(("_low", "_high"))]
    medians = [c for c in table.columns if c.startswith("median_")]
    header = ["subset", "group", "runs", "diverged", *medians, *(c.removeprefix("share_") for c in shares)]
    rows = [[row["subset"], row["group"], str(row["runs"]), _cell(row, "diverged"),
             *(f"{row[c]:.2f}" for c in medians), *(_cell(row, c) for c in shares)] for _, row in table.iterrows()]
    text = TextTable(header, rows, note="Share of runs [95% Wilson interval]; a diverged run counts below every "
                                        "threshold.", text_columns=2).markdown()
    if tests is not None and not tests.empty:
        text += "\n" + TextTable(
            ["subset", "test", "runs", "P(better > worse)", "z", "one-sided p"],
            [[r.subset, f"{r.better} > {r.worse} (Mann-Whitney)", f"{r.runs_better} vs {r.runs_worse}",
              f"{r.auc:.3f}", f"{r.z:.2f}", f"{r.p_greater:.3g}"] for r in tests.itertuples()],
            text_columns=2).markdown()
    return text
