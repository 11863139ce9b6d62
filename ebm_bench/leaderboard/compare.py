"""Two leaderboards side by side: per method, variant and metric, B - A with Welch's t-test over seeds."""

from __future__ import annotations

import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.stats import welch_t_test

from .build import BLOCKING_SETUP, INFO_COLUMNS, _round, metric_direction
from .render import table_metrics


def _setup_value(value) -> str:
    """A setup value as text, numbers in one spelling: 10000 read back from a CSV as 10000.0 is still 10000."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def _setup_values(table: pd.DataFrame, name: str) -> set[str]:
    values = table[name].dropna() if name in table else []
    return {_setup_value(part) for v in values for part in str(v).split("|") if part}


def check_alpha(alpha: float) -> float:
    """The significance level, refused outside (0, 1): at 0 nothing and at 1 everything would be significant."""
    if not 0 < alpha < 1:  # also NaN
        raise ConfigError(f"--alpha {alpha:g} is outside (0, 1); a significance level is e.g. 0.05")
    return alpha


def setup_differences(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """What differs between the setups of two tables, blocking differences first (each as a sentence)."""
    found = []
    for name in list(BLOCKING_SETUP) + list(INFO_COLUMNS):
        values_a, values_b = _setup_values(a, name), _setup_values(b, name)
        if values_a != values_b:
            kind = "changes the numbers" if name in BLOCKING_SETUP else "may change the numbers"
            found.append(f"{name} differs ({kind}): A has {', '.join(sorted(values_a)) or 'none'}, "
                         f"B has {', '.join(sorted(values_b)) or 'none'}")
    return found


def compare_tables(a: pd.DataFrame, b: pd.DataFrame, force: bool = False, alpha: float = 0.05
                   ) -> tuple[pd.DataFrame, list[str]]:
    """Per method, variant and metric: both means, B - A, Welch's t-test over seeds, and which side is better.

    Refuses (ConfigError) when the setups differ in a way that changes the numbers, unless `force`.
    """
    check_alpha(alpha)
    differences = setup_differences(a, b)
    blocking = [d for d in differences if "(changes the numbers)" in d]
    if blocking and not force:
        raise ConfigError("these leaderboards were made under different setups, so their numbers are not "
                          "comparable:\n  " + "\n  ".join(blocking) + "\nUse --force to compare them anyway.")
    # Every key that identifies a row: the same method at two budgets is two rows, never a pair. One budget per
    # table, and they differ: that comparison was forced on purpose, so rows pair across the two budgets.
    keys = ["dataset", "budget", "method", "variant"]
    a, b = (t[t["n_runs"] > 0].fillna({"variant": ""}).astype({k: str for k in keys}) for t in (a, b))
    budgets_a, budgets_b = set(a["budget"]), set(b["budget"])
    if len(budgets_a) == len(budgets_b) == 1 and budgets_a != budgets_b:
        label = f"{budgets_a.pop()} vs {budgets_b.pop()}"
        a, b = a.assign(budget=label), b.assign(budget=label)
    merged = a.merge(b, on=keys, suffixes=("_a", "_b"))
    rows = []
    for metric in sorted(set(table_metrics(a)) & set(table_metrics(b))):
        direction = metric_direction(metric)
        for _, r in merged.iterrows():
            mean_a, mean_b = r[f"{metric}_mean_a"], r[f"{metric}_mean_b"]
            t, p = welch_t_test(mean_b, r[f"{metric}_std_b"], _count(r[f"{metric}_n_b"]),  # t of B - A
                                mean_a, r[f"{metric}_std_a"], _count(r[f"{metric}_n_a"]))
            better = ""
            if p == p and p < alpha and direction:
                better = "B" if (mean_b > mean_a) == (direction == "higher") else "A"
            rows.append({**{k: r[k] for k in keys}, "metric": metric, "mean_a": mean_a, "mean_b": mean_b,
                         "diff_b_minus_a": mean_b - mean_a, "welch_t": t, "p_value": p,
                         "significant": bool(p == p and p < alpha), "better": better})
    columns = keys + ["metric", "mean_a", "mean_b", "diff_b_minus_a", "welch_t", "p_value", "significant", "better"]
    return pd.DataFrame(rows, columns=columns).apply(lambda column: column.map(_round)), differences


def _count(value) -> int:
    return int(value) if value == value else 0  # a metric one table lacks for a row: no seeds


def compare_methods(table: pd.DataFrame, baseline: str, alpha: float = 0.05) -> pd.DataFrame:
    """Within one leaderboard: `baseline` (A) against every other method (B), per metric, Welch's t-test over
    seeds, as `compare_tables` gives for two tables (its `method` column names B)."""
    check_alpha(alpha)
    rows = table[table["n_runs"] > 0]
    base = rows[rows["method"] == baseline]
    if base.empty:
        known = ", ".join(sorted(set(rows["method"]))) or "none"
        raise ConfigError(f"--against {baseline}: no finished runs of that method in the table (it has {known})")
    parts = []
    for method in sorted(set(rows["method"]) - {baseline}):
        comparison, _ = compare_tables(base.assign(method=method), rows[rows["method"] == method], force=True,
                                       alpha=alpha)
        parts.append(comparison)
    if not parts:
        raise ConfigError(f"--against {baseline}: the table has no other method to compare it with")
    return pd.concat(parts, ignore_index=True).rename(columns={"mean_a": f"mean_{baseline}", "mean_b": "mean_method"})
