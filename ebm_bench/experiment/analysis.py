"""An experiment's analysis: its records matched to the declared runs, each run's score, each hypothesis's test with
an effect size and its interval, the family's adjusted p-values, and `analysis.md` / `analysis.csv` beside the spec.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ebm_bench.config import BUDGET_KINDS
from ebm_bench.errors import ConfigError
from ebm_bench.files import atomic_write_bytes
from ebm_bench.record import corrupt_file_error, EVALUATION, load_records
from ebm_bench.leaderboard import metric_direction
from ebm_bench import stats
from ebm_bench.stats import format_significant

from .provenance import Declaration, declaration
from .spec import (Experiment, Hypothesis, Score, Selector, matches, same_value, key_names, pilot_runs, setting_column,
                   with_budget)

CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
ALTERNATIVES = {"a > b": "greater", "a < b": "less", "a != b": "two-sided", "a > share0": "greater",
                "a < share0": "less", "a != share0": "two-sided"}
CSV_COLUMNS = ["kind", "id", "statement", "test", "method", "score", "groups", "n", "statistic_name", "statistic",
               "effect_name", "effect", "effect_low", "effect_high", "mean_difference", "mean_difference_low",
               "mean_difference_high", "p", "p_adjusted", "correction", "alpha", "decision", "declared",
               "declared_commit"]


# -- records -----------------------------------------------------------------------------------------------------
def _norm(value: Any) -> Any:
    """A config value as a matching key: numbers by value to 12 digits, NaN as absent."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return float(f"{float(value):.12g}")


def _record_value(row: pd.Series, name: str) -> Any:
    column = setting_column(name)
    if name in BUDGET_KINDS:
        return row.get(column) if row.get("config.budget.kind") == name else None
    return row.get(column)


@dataclass
class Matched:
    """The declared runs joined with their records (NaN where a run has none) and what matched nothing."""

    runs: pd.DataFrame
    names: list[str]
    undeclared: int  # records of other runs in the folder, left out

    @property
    def recorded(self) -> pd.DataFrame:
        return self.runs[self.runs["status"].notna()]


def match_records(declared: pd.DataFrame, records: pd.DataFrame, names: list[str]) -> Matched:
    """Each declared run with its record: the record whose config has the run's value of every setting in
    `names`. Two records for one declared run are an error (the spec does not tell them apart)."""
    index = {tuple(_norm(row[n]) for n in names): i for i, row in declared.iterrows()}
    found: dict[int, int] = {}
    undeclared = 0
    for r, row in records.iterrows():
        key = tuple(_norm(_record_value(row, n)) for n in names)
        i = index.get(key)
        if i is None:
            undeclared += 1
            continue
        if i in found:
            first, second = records.loc[found[i], "run_dir"], row["run_dir"]
            raise ConfigError(f"two records match one declared run ({first} and {second}); they differ in a setting "
                              "the spec does not declare: declare it in the run's [set] or [grid], or remove one")
        found[i] = r
    runs = declared.copy()
    columns = [c for c in records.columns if c not in runs.columns]
    joined = pd.DataFrame([records.loc[found[i], columns] if i in found else pd.Series(index=columns, dtype=object)
                           for i in declared.index], index=declared.index)
    runs = pd.concat([runs, joined], axis=1)
    if "status" not in runs:
        runs["status"] = np.nan
    return Matched(runs, names, undeclared)


def load_folder(folder: Path) -> pd.DataFrame:
    """The records under `folder` (none: an empty table)."""
    if not folder.is_dir():
        return pd.DataFrame()
    return load_records([folder])


# -- a run's score -----------------------------------------------------------------------------------------------
def read_curve(run_dir: str | Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """A run's evaluations of `metric` over training (evaluation.csv), by increasing step; a re-evaluated step (a
    resumed run) counts once, its last evaluation."""
    path = Path(run_dir) / EVALUATION
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no {EVALUATION}: it was trained without eval_every; declare the runs with "
                          "eval_every, or score them by statistic = \"final\"")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise corrupt_file_error(path, err) from None
    if metric not in table or "step" not in table or table.empty:
        raise ConfigError(f"{path} holds no {metric} by step; it was written by another ebm-bench or damaged")
    steps = pd.to_numeric(table["step"], errors="coerce")
    if steps.isna().any():
        raise ConfigError(f"{path} has a step that is not a number; it was written by another ebm-bench or damaged")
    table = table.assign(step=steps).drop_duplicates("step", keep="last").sort_values("step")
    return table["step"].to_numpy(float), pd.to_numeric(table[metric], errors="coerce").to_numpy(float)


def run_score(row: pd.Series, score: Score) -> float:
    """A finished run's score (time_to_threshold never reached: inf, the worst time)."""
    if score.source == "table":
        return _table_score(row, score)
    if score.source == "result":
        value = row.get(f"evaluation.{score.metric}")
        value = float(value) if value is not None else math.nan
        if math.isnan(value):
            raise ConfigError(f"{row['run_dir']} has no end-of-run {score.metric}; score the runs by a metric they "
                              "hold")
        return value
    steps, values = read_curve(row["run_dir"], score.metric)
    direction = metric_direction(score.metric) or score.direction
    value = stats.curve_statistics(steps, values, direction, score.last_k, score.threshold)[score.statistic]
    if score.statistic == "time_to_threshold" and math.isnan(value):
        return math.inf
    return value


@functools.cache
def _score_table(path: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise corrupt_file_error(Path(path), err) from None
    if "run_id" not in table:
        raise ConfigError(f"{path} has no run_id column; a score table has one row (or several) per run, by run_id")
    return table


def _table_score(row: pd.Series, score: Score) -> float:
    """The mean of `score.metric` over the run's rows (by its folder's name, its run id) in the score table."""
    table = _score_table(score.table)
    if score.metric not in table:
        raise ConfigError(f"{score.table} has no column {score.metric!r}; its columns: {', '.join(table.columns)}")
    values = pd.to_numeric(table.loc[table["run_id"] == Path(row["run_dir"]).name, score.metric], errors="coerce")
    if values.empty or values.isna().all():
        raise ConfigError(f"{score.table} holds no {score.metric} of run {Path(row['run_dir']).name}; write the table "
                          "from the spec's records")
    return float(values.mean())


def _worst(score: Score) -> float:
    return -math.inf if score.direction == "higher" else math.inf


@dataclass
class Values:
    """A group's scores: finite values, a diverged run as the worst value (diverged = "worst") or left out."""

    values: np.ndarray
    declared: int
    recorded: int
    diverged: int


def group_values(runs: pd.DataFrame, score: Score, cache: dict) -> Values:
    recorded = runs[runs["status"].notna()]
    out = []
    for i, row in recorded.iterrows():
        if row["status"] != "finished":
            if score.diverged == "worst":
                out.append(_worst(score))
            continue
        key = (i, score)
        if key not in cache:
            cache[key] = run_score(row, score)
        out.append(cache[key])
    diverged = int((recorded["status"] != "finished").sum())
    return Values(np.asarray(out, dtype=float), len(runs), len(recorded), diverged)


def _ranked(*groups: np.ndarray) -> list[np.ndarray]:
    """Infinite values (the worst: diverged, never reached) as a value beyond every finite one on their side, so
    that rank tests rank them last and their arithmetic stays finite."""
    both = np.concatenate(groups) if groups else np.array([])
    finite = both[np.isfinite(both)]
    low, high = (finite.min() - 1.0, finite.max() + 1.0) if finite.size else (-1.0, 1.0)
    return [np.where(g == -math.inf, low, np.where(g == math.inf, high, g)) for g in groups]


# -- tests -------------------------------------------------------------------------------------------------------
@dataclass
class GroupRow:
    label: str
    values: Values
    share: tuple[int, int] | None = None  # (runs reaching the threshold, runs)


@dataclass
class Result:
    hypothesis: Hypothesis
    method: str
    n: str
    statistic_name: str
    statistic: float
    statistic_text: str
    effect_name: str = ""
    effect: float = math.nan
    effect_low: float = math.nan
    effect_high: float = math.nan
    mean_difference: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    p: float = math.nan
    p_adjusted: float = math.nan
    decision: str = ""
    groups: list[GroupRow] = field(default_factory=list)
    note: str = ""


def _one_sided_t(t: float, p_two: float, alternative: str) -> float:
    """A one-sided p from a symmetric test's t and two-sided p."""
    if alternative == "two-sided" or math.isnan(t):
        return p_two
    toward = t > 0 if alternative == "greater" else t < 0
    return p_two / 2.0 if toward else 1.0 - p_two / 2.0


def _binomial_p(hits: int, n: int, share0: float, alternative: str) -> float:
    """Exact binomial test of hits of n against a share share0."""
    mass = [math.comb(n, k) * share0 ** k * (1.0 - share0) ** (n - k) for k in range(n + 1)]
    greater, less = min(1.0, sum(mass[hits:])), min(1.0, sum(mass[:hits + 1]))
    return {"greater": greater, "less": less, "two-sided": min(1.0, 2.0 * min(greater, less))}[alternative]


def _newcombe(hits_a: int, n_a: int, hits_b: int, n_b: int) -> tuple[float, float, float]:
    """Difference of two shares with Newcombe's hybrid score interval (from the two Wilson intervals)."""
    p_a, p_b = hits_a / n_a, hits_b / n_b
    (low_a, high_a), (low_b, high_b) = stats.wilson_interval(hits_a, n_a), stats.wilson_interval(hits_b, n_b)
    d = p_a - p_b
    return d, d - math.hypot(p_a - low_a, high_b - p_b), d + math.hypot(high_a - p_a, p_b - low_b)


def _subset(runs: pd.DataFrame, selector: Selector | None) -> pd.DataFrame:
    return runs[matches(runs, selector)] if selector else runs


def _hits(values: Values, h: Hypothesis) -> tuple[int, int]:
    better = h.score.direction == "higher"
    reach = values.values >= h.threshold if better else values.values <= h.threshold
    return int(reach.sum()), int(values.values.size)


def test_hypothesis(h: Hypothesis, runs: pd.DataFrame, cache: dict) -> Result:
    """Run one hypothesis's test on the declared runs (with their records)."""
    pool = _subset(runs, h.where)
    alternative = ALTERNATIVES.get(h.direction or "", "two-sided")
    if h.test in ("mann_whitney", "permutation", "welch"):
        return _two_groups(h, pool, alternative, cache)
    if h.test == "wilson_share":
        return _share(h, pool, alternative, cache)
    if h.test == "kruskal_wallis":
        return _kruskal(h, pool, cache)
    return _quadratic(h, pool, cache)


def _two_groups(h: Hypothesis, pool: pd.DataFrame, alternative: str, cache: dict) -> Result:
    a, b = (group_values(_subset(pool, s), h.score, cache) for s in (h.a, h.b))
    groups = [GroupRow(f"a: {h.a.describe()}", a), GroupRow(f"b: {h.b.describe()}", b)]
    n = f"{a.values.size} vs {b.values.size}"
    if a.values.size == 0 or b.values.size == 0:
        return Result(h, "", n, "", math.nan, "", groups=groups, note="a group has no scored run")
    x, y = _ranked(a.values, b.values)
    result = Result(h, "", n, "", math.nan, "", groups=groups)
    # P(a < b) = P(b > a): the effect read in the direction the hypothesis states
    first, second = (y, x) if h.direction == "a < b" else (x, y)
    result.effect_name = "P(a < b)" if h.direction == "a < b" else "P(a > b)"
    result.effect = stats.probability_of_superiority(first, second)
    result.effect_low, result.effect_high = stats.superiority_interval(first, second)
    finite = np.isfinite(a.values).all() and np.isfinite(b.values).all()
    if finite:
        difference = float(a.values.mean() - b.values.mean())
        result.mean_difference = (difference, *stats.mean_difference_interval(a.values, b.values))
    if h.test == "mann_whitney":
        u = stats.probability_of_superiority(x, y) * x.size * y.size
        if np.unique(np.concatenate([x, y])).size == x.size + y.size and x.size * y.size <= stats.MAX_EXACT_PAIRS:
            test = stats.mann_whitney_exact(x, y)
            result.method, result.p = "exact", test[f"p_{alternative.replace('-', '_')}"]
        elif math.comb(x.size + y.size, x.size) <= stats.MAX_EXACT_ARRANGEMENTS:
            # with ties U's exact null is that of the rank sum over every split of the pooled average ranks
            ranks = stats.average_ranks(np.concatenate([x, y]))
            test = stats.permutation_test(ranks[:x.size], ranks[x.size:], "mean_difference", alternative)
            result.method, result.p = "exact permutation of the ranks (ties)", test["p_value"]
        else:
            test = stats.mann_whitney(x, y)
            p_less = stats.normal_sf(-test["z"]) if test["z"] == test["z"] else math.nan
            result.method = "normal approximation"
            result.p = {"greater": test["p_greater"], "less": p_less, "two-sided": test["p_two_sided"]}[alternative]
        result.statistic_name, result.statistic = "U", u
        result.statistic_text = f"U = {format_significant(u)}"
    elif h.test == "permutation":
        test = stats.permutation_test(a.values, b.values, h.statistic, alternative)
        result.method = "exact permutation" if test["exact"] else f"{test['n_resamples']} random permutations"
        result.statistic_name, result.statistic, result.p = h.statistic, test["statistic"], test["p_value"]
        result.statistic_text = f"{h.statistic.replace('_', ' ')} = {format_significant(test['statistic'])}"
        if h.statistic == "mean_difference":
            result.effect_name = "mean(a) - mean(b)"
            result.effect, result.effect_low, result.effect_high = result.mean_difference
    else:  # welch
        t, p_two = stats.welch_t_test(float(a.values.mean()), float(a.values.std(ddof=1)) if a.values.size > 1
                                      else math.nan, a.values.size, float(b.values.mean()),
                                      float(b.values.std(ddof=1)) if b.values.size > 1 else math.nan, b.values.size)
        result.method, result.statistic_name, result.statistic = "Welch t", "t", t
        result.statistic_text, result.p = f"t = {format_significant(t)}", _one_sided_t(t, p_two, alternative)
        result.effect_name = "mean(a) - mean(b)"
        result.effect, result.effect_low, result.effect_high = result.mean_difference
    return result


def _share(h: Hypothesis, pool: pd.DataFrame, alternative: str, cache: dict) -> Result:
    a = group_values(_subset(pool, h.a), h.score, cache)
    hits_a, n_a = _hits(a, h)
    groups = [GroupRow(f"a: {h.a.describe()}", a, (hits_a, n_a))]
    reach = f"{'>=' if h.score.direction == 'higher' else '<='} {h.threshold:g}"
    if h.b is None:
        result = Result(h, "exact binomial", str(n_a), "share", hits_a / n_a if n_a else math.nan,
                        f"{hits_a} of {n_a} at {h.score.label} {reach}", groups=groups)
        if n_a:
            result.effect_name = "share of a"
            result.effect, (result.effect_low, result.effect_high) = hits_a / n_a, stats.wilson_interval(hits_a, n_a)
            result.p = _binomial_p(hits_a, n_a, h.share0, alternative)
        return result
    b = group_values(_subset(pool, h.b), h.score, cache)
    hits_b, n_b = _hits(b, h)
    groups.append(GroupRow(f"b: {h.b.describe()}", b, (hits_b, n_b)))
    result = Result(h, "", f"{n_a} vs {n_b}", "share difference", math.nan,
                    f"{hits_a} of {n_a} vs {hits_b} of {n_b} at {h.score.label} {reach}", groups=groups)
    if n_a and n_b:
        result.effect_name = "share(a) - share(b)"
        result.effect, result.effect_low, result.effect_high = _newcombe(hits_a, n_a, hits_b, n_b)
        result.statistic = result.effect
        ind_a = np.r_[np.ones(hits_a), np.zeros(n_a - hits_a)]
        ind_b = np.r_[np.ones(hits_b), np.zeros(n_b - hits_b)]
        test = stats.permutation_test(ind_a, ind_b, "mean_difference", alternative)
        result.method = "exact permutation" if test["exact"] else f"{test['n_resamples']} random permutations"
        result.p = test["p_value"]
    return result


def _levels(pool: pd.DataFrame, name: str) -> list[Any]:
    return sorted(pool[name].dropna().unique().tolist(), key=lambda v: (isinstance(v, str), v))


def _kruskal(h: Hypothesis, pool: pd.DataFrame, cache: dict) -> Result:
    levels = _levels(pool, h.by)
    values = [group_values(pool[pool[h.by].map(lambda v, level=level: same_value(v, level))], h.score, cache)
              for level in levels]
    groups = [GroupRow(f"{h.by} = {_fmt_level(level)}", v) for level, v in zip(levels, values)]
    present = [v.values for v in values if v.values.size]
    n = sum(v.size for v in present)
    result = Result(h, "chi-square approximation", f"{n} in {len(present)} groups", "H", math.nan, "",
                    groups=groups)
    if len(present) < 2:
        result.note = "fewer than 2 groups have a scored run"
        return result
    test = stats.kruskal_wallis(_ranked(*present))
    result.statistic, result.p = test["h"], test["p"]
    result.statistic_text = f"H = {format_significant(test['h'])} (df {test['df']})"
    # epsilon squared, the share of rank variance between the groups; no interval for it in stats
    result.effect_name, result.effect = "epsilon^2 = H / (n - 1)", test["h"] / (n - 1)
    return result


def _fmt_level(level: Any) -> str:
    """A config value as the spec writes it (margin = 6, lr = 0.001)."""
    return f"{level:g}" if isinstance(level, float) else str(level)


def _quadratic(h: Hypothesis, pool: pd.DataFrame, cache: dict) -> Result:
    levels = _levels(pool, h.x)
    xs, ys, groups = [], [], []
    for level in levels:
        v = group_values(pool[pool[h.x].map(lambda value, level=level: same_value(value, level))], h.score, cache)
        groups.append(GroupRow(f"{h.x} = {_fmt_level(level)}", v))
        xs += [float(level)] * v.values.size
        ys += list(v.values)
    x = np.log(np.asarray(xs)) if h.transform == "log" else np.asarray(xs)
    where = f"log {h.x}" if h.transform == "log" else h.x
    result = Result(h, "t test of the curvature", str(len(ys)), "t", math.nan, "", groups=groups)
    if np.unique(x).size < 3:
        result.note = "fewer than 3 values of x have a scored run"
        return result
    fit = stats.quadratic_trend(x, np.asarray(ys))
    result.statistic = fit["t"]
    result.effect_name, result.effect = f"curvature c (y ~ a + b x + c x^2, x = {where})", fit["c"]
    if fit["df"] > 0:
        half = stats.t_quantile(0.975, fit["df"]) * fit["se_c"]
        result.effect_low, result.effect_high = fit["c"] - half, fit["c"] + half
    vertex = -fit["b"] / (2.0 * fit["c"]) if fit["c"] else math.nan
    vertex = math.exp(vertex) if h.transform == "log" and math.isfinite(vertex) else vertex
    kind = "minimum" if fit["c"] > 0 else "maximum"
    result.statistic_text = (f"t = {format_significant(fit['t'])} (df {fit['df']}); {kind} of the fit at "
                             f"{h.x} = {format_significant(vertex)}")
    alternative = {"dip": "greater", "peak": "less", "either": "two-sided"}[h.direction]
    result.p = _one_sided_t(fit["t"], fit["p"], alternative)
    return result


# -- the budget a rule picks -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plateau:
    """One level's plateau (rule plateau, per level of `by`): where its mean curve settles."""

    level: Any  # the level of `by` (None: every pilot run)
    runs: int  # finished runs in its mean
    diverged: int  # its runs left out of the mean
    start: float  # the first evaluation step from which the mean stays within the tolerance of its last value
    last_step: float
    last_mean: float

    @property
    def still_moving(self) -> bool:
        """The mean settles only at the last evaluation: no plateau inside the pilot."""
        return self.start >= self.last_step


@dataclass(frozen=True)
class BudgetChoice:
    budget: dict[str, Any]
    text: str
    plateaus: tuple[Plateau, ...] = ()  # rule plateau: one per level of `by` (one when there is no `by`)
    set_by: Any = None  # the level whose plateau start set the budget


def plateau_start(means: np.ndarray, tolerance: float) -> int:
    """The index of the first evaluation from which every mean is within `tolerance` (relative) of the last one."""
    close = np.abs(means - means[-1]) <= tolerance * abs(means[-1])
    start = len(means) - 1
    while start > 0 and close[start - 1]:
        start -= 1
    return start


def rounded_budget(start: float, multiple: int, longest: float) -> int:
    """A plateau start rounded up to a multiple of `multiple`, never past `longest` (the pilot's budget): a budget
    longer than the pilot's runs would be one no pilot run has seen."""
    return int(min(math.ceil(start / multiple) * multiple, longest))


def _curves(runs: pd.DataFrame, metric: str, where: str) -> tuple[list[float], pd.DataFrame]:
    """The curves of `runs` (one row each) over the evaluation steps they all share."""
    curves = [pd.Series(*reversed(read_curve(row["run_dir"], metric))) for _, row in runs.iterrows()]
    steps = sorted(set.intersection(*(set(c.index) for c in curves)))
    if not steps:
        raise ConfigError(f"the pilot's runs {where} share no evaluation step; give them one eval_every")
    return steps, pd.DataFrame([c.reindex(steps).to_numpy() for c in curves], columns=steps)


def _pilot_longest(experiment: Experiment, last_step: float) -> float:
    """The pilot's longest budget in steps (its last evaluation when it is declared in images or seconds)."""
    steps = [p.own.settings["steps"] for p in experiment.rule.pilots if "steps" in p.own.settings]
    return float(max(steps)) if steps else last_step


def declared_budget(experiment: Experiment, machine: dict[str, Any] | None = None) -> BudgetChoice:
    """The main runs' budget: declared, or picked by the rule from the pilot's records."""
    if experiment.rule is None:
        if not experiment.budget:
            return BudgetChoice({}, "a grid axis of the runs")
        (kind, amount), = experiment.budget.items()
        return BudgetChoice(experiment.budget, f"{amount:g} {kind} (declared)")
    rule = experiment.rule
    declared = pilot_runs(experiment, machine or {})
    names = [c for c in declared.columns if c not in ("group", "eval_every")]
    matched = match_records(declared, load_folder(rule.records), names)
    missing = int(matched.runs["status"].isna().sum())
    if missing:
        raise ConfigError(f"the budget rule reads the pilot, and {missing} of its {len(declared)} runs have no record "
                          f"in {rule.records}; run `ebm-bench experiment run {experiment.path}` first")
    finished = matched.runs[matched.runs["status"] == "finished"]
    if finished.empty:
        raise ConfigError(f"every pilot run in {rule.records} diverged: the rule has no evaluations to read")
    seeds = ", ".join(str(s) for s in sorted(set(declared["seed"])))
    excluded = len(matched.runs) - len(finished)
    note = f"; {excluded} diverged pilot run(s) left out" if excluded else ""
    where = _relative(rule.records, experiment.folder)
    source = f"from the pilot ({len(finished)} runs, seeds {seeds}, in {where}/)"
    if rule.rule == "plateau":
        return _plateau_budget(experiment, matched.runs, f"{source}: ", note)
    steps, table = _curves(finished, rule.metric, f"in {rule.records}")
    better_low = metric_direction(rule.metric) == "lower"
    levels = finished[rule.by].map(_norm).to_numpy()
    means = table.groupby(levels).mean()
    orders = [tuple(means[step].sort_values(ascending=better_low, kind="stable").index) for step in steps]
    start = len(steps) - 1
    while start > 0 and orders[start - 1] == orders[-1]:
        start -= 1
    order = ", ".join(_fmt_level(level) for level in orders[-1])
    why = (f"the order of {rule.by} by mean {rule.metric} ({order}, best first) holds from step "
           f"{steps[start]:g} to the pilot's last evaluation, {steps[-1]:g}")
    amount = int(steps[start])
    return BudgetChoice({"steps": amount}, f"{amount} steps, picked by rule {rule.rule} {source}: {why}{note}")


def _plateau_budget(experiment: Experiment, runs: pd.DataFrame, source: str, note: str) -> BudgetChoice:
    """Rule plateau: each level's mean curve (of `by`; one level without it) settles at its plateau start; the
    budget is the latest start, rounded up."""
    rule = experiment.rule
    levels = runs[rule.by].map(_norm) if rule.by else pd.Series(None, index=runs.index, dtype=object)
    plateaus = []
    for level in sorted(set(levels), key=lambda v: (v is None, str(v))):
        mine = runs[levels.map(lambda v: same_value(v, level))]
        finished = mine[mine["status"] == "finished"]
        label = f"with {rule.by} = {_fmt_level(level)}" if rule.by else f"in {rule.records}"
        if finished.empty:
            raise ConfigError(f"every pilot run {label} diverged: rule plateau has no mean curve for it; declare a "
                              "pilot whose levels each have a finished run")
        steps, table = _curves(finished, rule.metric, label)
        means = table.mean(axis=0).to_numpy()
        start = plateau_start(means, rule.tolerance)
        plateaus.append(Plateau(level, len(finished), len(mine) - len(finished), steps[start], steps[-1], means[-1]))
    setter = max(plateaus, key=lambda p: p.start)  # the first of the latest, in the levels' order
    longest = _pilot_longest(experiment, max(p.last_step for p in plateaus))
    amount = rounded_budget(setter.start, rule.round_up, longest)
    rounding = f", rounded up to a multiple of {rule.round_up}" if rule.round_up > 1 else ""
    within = f"the mean {rule.metric} stays within {rule.tolerance:g} (relative) of its last value"
    if rule.by:
        each = "; ".join(f"{_fmt_level(p.level)} from step {p.start:g} (last {format_significant(p.last_mean)})"
                         for p in plateaus)
        latest = " and ".join(f"{_fmt_level(p.level)}'s" for p in plateaus if p.start == setter.start)
        why = f"per {rule.by}, {within}: {each}; the latest, {latest}, sets the budget{rounding}"
    else:
        why = f"{within} ({format_significant(setter.last_mean)}) from step {setter.start:g} on{rounding}"
    moving = [p for p in plateaus if p.still_moving]
    if moving:
        who = ", ".join(_fmt_level(p.level) for p in moving) if rule.by else "the pilot's"
        why += (f"; {who} mean curve was still moving at the last evaluation ({moving[0].last_step:g}): no plateau "
                "inside the pilot, so the budget is the pilot's own")
    return BudgetChoice({"steps": amount}, f"{amount} steps, picked by rule plateau {source}{why}{note}",
                        tuple(plateaus), setter.level)


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path)


# -- the analysis ------------------------------------------------------------------------------------------------
@dataclass
class Analysis:
    experiment: Experiment
    budget: BudgetChoice
    matched: Matched
    declaration: Declaration
    results: list[Result]

    @property
    def confirmatory(self) -> list[Result]:
        return [r for r in self.results if not r.hypothesis.exploratory]

    @property
    def exploratory(self) -> list[Result]:
        return [r for r in self.results if r.hypothesis.exploratory]


def adjust(results: list[Result], correction: str, alpha: float) -> None:
    """Adjust the p-values of the confirmatory family (and only those) together, and decide at alpha."""
    family = [r for r in results if not r.hypothesis.exploratory]
    raw = np.array([r.p for r in family], dtype=float)
    adjusted = stats.holm(raw) if correction == "holm" else stats.benjamini_hochberg(raw)
    for result, p in zip(family, adjusted):
        result.p_adjusted = float(p)
        result.decision = ("not computable" if p != p else "H0 rejected" if p <= alpha else "H0 not rejected")
    for result in results:
        if result.hypothesis.exploratory:
            result.decision = "exploratory: no decision"


def analyse(experiment: Experiment, records: pd.DataFrame | None = None, machine: dict[str, Any] | None = None
            ) -> Analysis:
    """The experiment's analysis from `records` (default: the records folder the spec names)."""
    budget = declared_budget(experiment, machine)
    if experiment.pilot_only:  # nothing but the rule: the declaration is dated by the pilot's runs
        pilot = load_folder(experiment.rule.records)
        created = pilot["manifest.created"].tolist() if "manifest.created" in pilot else [None] * len(pilot)
        nothing = Matched(experiment.declared.assign(status=np.nan), key_names(experiment), 0)
        return Analysis(experiment, budget, nothing, declaration(experiment.path, created), [])
    declared = with_budget(experiment, budget.budget) if experiment.rule else experiment.declared
    records = load_folder(experiment.records) if records is None else records
    matched = match_records(declared, records, key_names(experiment)) if not records.empty else \
        Matched(declared.assign(status=np.nan), key_names(experiment), 0)
    created = matched.recorded["manifest.created"].tolist() if "manifest.created" in matched.runs else \
        [None] * len(matched.recorded)
    cache: dict = {}
    results = [test_hypothesis(h, matched.runs, cache) for h in experiment.analyses]
    adjust(results, experiment.correction, experiment.alpha)
    return Analysis(experiment, budget, matched, declaration(experiment.path, created), results)


# -- rendering ---------------------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _p(value: float) -> str:
    return format_significant(value, 2)


def _interval(low: float, high: float, digits: int = 3) -> str:
    if math.isnan(low) or math.isnan(high):
        return ""
    return f"[{format_significant(low, digits)}, {format_significant(high, digits)}]"


def _effect(result: Result) -> str:
    if not result.effect_name or math.isnan(result.effect):
        return ""
    text = f"{result.effect_name} = {format_significant(result.effect)}"
    interval = _interval(result.effect_low, result.effect_high)
    return f"{text} {interval}" if interval else text


def bounded_centre(values: np.ndarray, low: float | None, high: float | None) -> float:
    """The centre `stats.bounded_interval` (method "transform") covers: the mean on its scale, mapped back. For a
    score >= 0 that is the geometric mean; with a value on a bound, or no bound, the arithmetic mean."""
    at_bound = (low is not None and (values == low).any()) or (high is not None and (values == high).any())
    if values.size == 0 or at_bound or (low is None and high is None):
        return float(values.mean()) if values.size else math.nan
    if high is None:
        return low + math.exp(float(np.log(values - low).mean()))
    if low is None:
        return high - math.exp(float(np.log(high - values).mean()))
    share = (values - low) / (high - low)
    z = float((np.log(share) - np.log1p(-share)).mean())
    return low + (high - low) / (1.0 + math.exp(-z))


def _groups_table(result: Result) -> list[str]:
    score = result.hypothesis.score
    low, high = score.bounds
    shares = bool(result.groups and result.groups[0].share)
    rows = [f"| group | runs declared | recorded | diverged | {score.label}: mean | centre [95% interval] | median |"
            + (" reaching the threshold [95% Wilson] |" if shares else ""),
            "|---|---|---|---|---|---|---|" + ("---|" if shares else "")]
    for group in result.groups:
        finite = group.values.values[np.isfinite(group.values.values)]
        mean = format_significant(float(finite.mean())) if finite.size else ""
        centre = ""
        if finite.size > 1:
            centre = (f"{format_significant(bounded_centre(finite, low, high))} "
                      f"{_interval(*stats.bounded_interval(finite, low, high))}")
        median = format_significant(float(np.median(finite))) if finite.size else ""
        never = int(np.isinf(group.values.values).sum()) - (group.values.diverged if score.diverged == "worst" else 0)
        diverged = str(group.values.diverged) + (f" (+{never} never reached)" if never > 0 else "")
        cells = [group.label, group.values.declared, group.values.recorded, diverged, mean, centre, median]
        if shares:
            hits, n = group.share
            cells.append(f"{hits}/{n} = {format_significant(hits / n)} {_interval(*stats.wilson_interval(hits, n))}"
                         if n else "")
        rows.append(_row(cells))
    return rows


def _row(cells) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _plateau_table(budget: BudgetChoice, rule) -> list[str]:
    """Each level's plateau start (rule plateau), and which one set the budget."""
    if not budget.plateaus:
        return []
    level = rule.by or "pilot"
    latest = max(p.start for p in budget.plateaus)
    rows = [f"| {level} | finished runs | diverged (left out) | mean {rule.metric} at the last evaluation | "
            "plateau starts at step | still moving | sets the budget |", "|---|---|---|---|---|---|---|"]
    for p in budget.plateaus:
        rows.append(_row([_fmt_level(p.level) if rule.by else "all", p.runs, p.diverged,
                          f"{format_significant(p.last_mean)} (step {p.last_step:g})", f"{p.start:g}",
                          "yes" if p.still_moving else "no", "yes" if p.start == latest else ""]))
    return rows + [""]


def _render_pilot(analysis: Analysis) -> str:
    """A pilot-only spec's analysis: the budget its rule picks, level by level."""
    experiment, budget = analysis.experiment, analysis.budget
    rule = experiment.rule
    pilots = ", ".join(p.name for p in rule.pilots)
    lines = [f"# {experiment.name}: budget pilot", ""]
    if experiment.description:
        lines += [experiment.description.strip(), ""]
    lines += [f"- {analysis.declaration.header()}.",
              f"- Pilot: {len(pilot_runs(experiment, {}))} declared runs in {len(rule.pilots)} sweep(s) ({pilots}).",
              f"- Budget: {budget.text}.",
              "- A pilot tests no hypothesis: it picks the budget of the runs that will.",
              "- Generated by `ebm-bench experiment render` from the spec and the records; do not edit.", ""]
    return "\n".join(lines + _plateau_table(budget, rule)) + "\n"


def render_markdown(analysis: Analysis) -> str:
    experiment, matched = analysis.experiment, analysis.matched
    if experiment.pilot_only:
        return _render_pilot(analysis)
    recorded = matched.recorded
    correction = CORRECTION_NAMES[experiment.correction]
    finished = int((recorded["status"] == "finished").sum())
    where = _relative(experiment.records, experiment.folder)
    left_out = (f"; {matched.undeclared} other record(s) in {where}/ are no declared run and are left out"
                if matched.undeclared else "")
    diverged = "counts as the worst score" if experiment.score.diverged == "worst" else "is left out (counted)"
    family = _count(len(analysis.confirmatory), "confirmatory hypothesis", "confirmatory hypotheses")
    lines = [f"# {experiment.name}: analysis", ""]
    if experiment.description:
        lines += [experiment.description.strip(), ""]
    lines += [f"- {analysis.declaration.header()}.",
              f"- Runs: {len(matched.runs)} declared, {len(recorded)} recorded ({finished} finished, "
              f"{len(recorded) - finished} diverged or failed){left_out}.",
              f"- Budget: {analysis.budget.text}.",
              f"- Primary score, per run: {experiment.score.describe()}; a diverged run {diverged}.",
              f"- Family: the {family} below, {correction}-adjusted together, decided at alpha = "
              f"{experiment.alpha:g}. Exploratory analyses are not in the family and decide nothing.",
              "- Generated by `ebm-bench experiment render` from the spec and the records; do not edit.", ""]
    lines += _plateau_table(analysis.budget, experiment.rule)
    lines += ["## Confirmatory hypotheses", "",
              f"| id | hypothesis | test | n | statistic | effect [95% interval] | p | p ({correction}) | decision |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in analysis.confirmatory:
        lines.append(_row([r.hypothesis.id, r.hypothesis.statement, _test_text(r, experiment.score), r.n,
                           r.statistic_text, _effect(r), _p(r.p), _p(r.p_adjusted), r.decision]))
    lines += [""] + _details(analysis.confirmatory)
    if analysis.exploratory:
        lines += ["## Exploratory analyses (not corrected, not confirmatory)", "",
                  "Named after the declaration or after seeing results, or outside the family: each p is raw, for "
                  "orientation only; none is a test of a declared hypothesis.", "",
                  "| id | analysis | test | n | statistic | effect [95% interval] | p (raw, uncorrected) |",
                  "|---|---|---|---|---|---|---|"]
        for r in analysis.exploratory:
            lines.append(_row([r.hypothesis.id, r.hypothesis.statement, _test_text(r, experiment.score), r.n,
                               r.statistic_text, _effect(r), _p(r.p)]))
        lines += [""] + _details(analysis.exploratory)
    lines += ["Groups: the mean of their scored runs; the centre and its 95% interval (stats.bounded_interval) are "
              "computed where the score's bounds are at infinity (log(x - low), or the logit for a score bounded on "
              "both sides) and mapped back, so the interval stays inside the score's range; for a score >= 0 the "
              "centre is the geometric mean. Shares with Wilson intervals; P(a > b) with a percentile bootstrap "
              "interval, too narrow with few runs a side; a curvature with its t interval."]
    return "\n".join(lines) + "\n"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _test_text(result: Result, primary: Score) -> str:
    """The test, its direction and its method; the score too when it is not the primary one."""
    h = result.hypothesis
    left_out = h.score.diverged != primary.diverged and h.score.diverged == "exclude"
    score = "" if h.score == primary else f" of {h.score.label}" + (" (diverged runs left out)" if left_out else "")
    what = {"kruskal_wallis": f"Kruskal-Wallis over {h.by}", "quadratic_trend": f"quadratic in "
            f"{'log ' if h.transform == 'log' else ''}{h.x} ({h.direction})",
            "mann_whitney": f"Mann-Whitney, {h.direction}", "permutation": f"permutation, {h.direction}",
            "welch": f"Welch t, {h.direction}", "wilson_share": f"share, {h.direction}"}[h.test]
    method = f"; {result.method}" if result.method else ""
    return f"{what}{score}{method}"


def _details(results: list[Result]) -> list[str]:
    """Each result's groups; a table the one before already showed (same runs, same score) is named, not repeated."""
    lines, shown = [], {}
    for r in results:
        h = r.hypothesis
        scope = f" (runs: {h.where.describe()})" if h.where else ""
        table = _groups_table(r)
        key = (scope, "\n".join(table))
        if key in shown:
            lines += [f"**{h.id}** groups{scope}, {h.score.label}: as {shown[key]}.", ""]
        else:
            shown[key] = h.id
            lines += [f"**{h.id}** groups{scope}, {h.score.label}:", ""] + table + [""]
        if r.note:
            lines += [f"Not computable: {r.note}.", ""]
    return lines


def render_csv(analysis: Analysis) -> str:
    rows = []
    for r in analysis.results:
        h = r.hypothesis
        rows.append({
            "kind": "exploratory" if h.exploratory else "confirmatory", "id": h.id, "statement": h.statement,
            "test": h.test, "method": r.method, "score": h.score.label,
            "groups": "; ".join(g.label for g in r.groups), "n": r.n, "statistic_name": r.statistic_name,
            "statistic": r.statistic, "effect_name": r.effect_name, "effect": r.effect, "effect_low": r.effect_low,
            "effect_high": r.effect_high, "mean_difference": r.mean_difference[0],
            "mean_difference_low": r.mean_difference[1], "mean_difference_high": r.mean_difference[2], "p": r.p,
            "p_adjusted": r.p_adjusted, "correction": "" if h.exploratory else analysis.experiment.correction,
            "alpha": f"{analysis.experiment.alpha:g}", "decision": r.decision, "declared": analysis.declaration.label,
            "declared_commit": analysis.declaration.commit or ""})
    table = pd.DataFrame(rows, columns=CSV_COLUMNS)
    numbers = [c for c in CSV_COLUMNS if table[c].map(lambda v: isinstance(v, float)).all()]
    for column in numbers:  # plain decimals, 6 significant digits: parse back as numbers, never 1e+02
        table[column] = table[column].map(lambda v: "" if v != v else format_significant(v, 6))
    return table.to_csv(index=False)


def render(experiment: Experiment, records: pd.DataFrame | None = None, machine: dict[str, Any] | None = None
           ) -> Analysis:
    """Analyse the experiment and write `analysis.md` and `analysis.csv` beside its spec."""
    analysis = analyse(experiment, records, machine)
    markdown = render_markdown(analysis)
    atomic_write_bytes(experiment.folder / "analysis.md", markdown.encode())
    atomic_write_bytes(experiment.folder / "analysis.csv", render_csv(analysis).encode())
    return analysis
