"""An experiment spec (`leaderboards/NAME/experiment.toml`) read, checked strictly and planned into runs.

A spec declares, before any run: the runs (one or more sweep groups: a preset or none, methods, seeds, `[set]`,
`[grid]`, `sample`), the budget or the rule that picks it from a pilot with seeds of its own, the primary score and
its per-run statistic, the confirmatory hypotheses (each with its test, groups and direction) corrected together,
and exploratory analyses, which are never corrected into that family. Any key it does not know, a test it does not
know, or a selector that matches no declared run is one line naming the spec and the fix.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ebm_bench.config import BUDGET_KINDS, ConfigFile, MLPConfig, OptimConfig, RunConfig, config_file, read_config
from ebm_bench.config import read_config_file
from ebm_bench.errors import ConfigError
from ebm_bench.evaluate import quality_columns
from ebm_bench.leaderboard import metric_direction
from ebm_bench.metrics import METRICS
from ebm_bench.sweep import Plan, plan_runs, setting_of
from ebm_bench.sweep.grid import typed_setting

SPEC_KEYS = ("name", "description", "records", "runs", "budget", "score", "alpha", "correction", "hypotheses",
             "exploratory")
GROUP_KEYS = ("name", "preset", "sample", "sample_seed")  # besides a sweep config file's own keys
PILOT_KEYS = ("records",)
# Where a run trains and where its data are belong to a machine, not to what an experiment declares
MACHINE_SETTINGS = ("out", "data_root", "download", "device", "inception_weights")
STATISTICS = ("final", "last_k_mean", "best", "auc", "drop", "time_to_threshold")
# result.json's end-of-run evaluation, the last row of evaluation.csv, or a per-run table written beside the spec
# (a probe's CSV: one or more rows per run_id; the run's score is the mean of its rows' `metric` column)
SOURCES = ("result", "evaluation", "table")
# evaluation.csv's scores (the quality over training that --eval-every writes)
CURVE_METRICS = tuple(c for c in quality_columns() if c not in ("step", "wall_s", "eval_s", "n"))
SCORE_KEYS = ("metric", "statistic", "source", "last_k", "threshold", "bounds", "diverged", "direction", "table")
DIVERGED = ("worst", "exclude")
# The range of a score, for intervals that respect it (stats.bounded_interval); [score] bounds overrides
METRIC_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "i_prime": (0.0, None), "mnist_is": (0.0, None), "is": (0.0, None), "fid": (0.0, None),
    "fid_mnist": (0.0, None), "kid": (None, None), "class_kl": (0.0, None), "classes_covered": (0.0, None),
    "precision": (0.0, 1.0), "recall": (0.0, 1.0), "coverage": (0.0, 1.0), "density": (0.0, None),
    "energy_auroc": (0.0, 1.0)}
TWO_GROUP_TESTS = ("mann_whitney", "permutation", "welch")
TESTS = (*TWO_GROUP_TESTS, "kruskal_wallis", "quadratic_trend", "wilson_share")
# Tests that need a number for every run: a diverged run (diverged = "worst") or a threshold never reached has none
VALUE_TESTS = ("permutation", "welch", "quadratic_trend")
TWO_GROUP_DIRECTIONS = ("a > b", "a < b", "a != b")
SHARE_DIRECTIONS = ("a > share0", "a < share0", "a != share0")
TREND_DIRECTIONS = ("dip", "peak", "either")  # a quadratic's curvature: a minimum inside (U), a maximum, either
TRANSFORMS = ("none", "log")
PERMUTATION_STATISTICS = ("mean_difference", "median_difference")
_COMMON = ("id", "statement", "test", "score", "where")
TEST_KEYS = {
    "mann_whitney": (*_COMMON, "a", "b", "direction"),
    "permutation": (*_COMMON, "a", "b", "direction", "statistic"),
    "welch": (*_COMMON, "a", "b", "direction"),
    "kruskal_wallis": (*_COMMON, "by"),
    "quadratic_trend": (*_COMMON, "x", "transform", "direction"),
    "wilson_share": (*_COMMON, "a", "b", "threshold", "share0", "direction"),
}
CORRECTIONS = ("holm", "bh")
BUDGET_RULES = ("order_stable", "plateau")
RULE_KEYS = {"order_stable": ("rule", "metric", "by", "pilot"),
             "plateau": ("rule", "metric", "tolerance", "by", "round_up", "pilot")}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_MLP_FIELDS = {f.name for f in dataclasses.fields(MLPConfig)}
_OPTIM_FIELDS = {f.name for f in dataclasses.fields(OptimConfig)}
_RUN_FIELDS = {f.name for f in dataclasses.fields(RunConfig)} - {"budget", "mlp", "optim", "method_options"}


@dataclass(frozen=True)
class Score:
    """A run's score: a metric and the statistic of its run that a test compares."""

    metric: str
    statistic: str = "final"
    source: str = "result"
    last_k: int = 3
    threshold: float | None = None
    bounds: tuple[float | None, float | None] = (None, None)
    diverged: str = "worst"
    direction: str = "higher"  # of the statistic: which side is better
    table: str | None = None  # source "table": the CSV (beside the spec) whose rows, by run_id, hold `metric`

    def describe(self) -> str:
        what = {"final": "the end-of-run evaluation (result.json)" if self.source == "result"
                else f"the mean of the run's rows in {Path(self.table).name}" if self.source == "table"
                else "the last evaluation over training (evaluation.csv)",
                "last_k_mean": f"the mean of the last {self.last_k} evaluations (evaluation.csv)",
                "best": "the best evaluation (evaluation.csv)",
                "auc": "the time-average of the evaluations (area under the curve / steps; evaluation.csv)",
                "drop": "the drop from the best evaluation to the last (evaluation.csv)",
                "time_to_threshold": f"the first evaluated step reaching {self.threshold:g} (evaluation.csv; "
                                     "never: worst)" if self.threshold is not None else ""}[self.statistic]
        return f"{self.metric} ({self.statistic}: {what}; {self.direction} is better)"

    @property
    def label(self) -> str:
        return self.metric if self.statistic == "final" and self.source == "result" else \
            f"{self.metric}.{self.statistic}"


@dataclass(frozen=True)
class Selector:
    """Declared runs by config fields: each name's value equal to one of its values (`margin = [6, 8]`)."""

    values: dict[str, tuple]

    def describe(self) -> str:
        return " and ".join(f"{name} = {_show(v[0])}" if len(v) == 1 else
                            f"{name} in [{', '.join(_show(x) for x in v)}]" for name, v in self.values.items())


@dataclass(frozen=True)
class Hypothesis:
    id: str
    statement: str
    test: str
    score: Score
    exploratory: bool = False
    a: Selector | None = None
    b: Selector | None = None
    where: Selector | None = None
    by: str | None = None  # kruskal_wallis: a config field whose values are the groups
    x: str | None = None  # quadratic_trend: a numeric config field
    transform: str = "none"
    direction: str | None = None
    threshold: float | None = None  # wilson_share: a run "reaches" it in its score's better direction
    share0: float | None = None
    statistic: str = "mean_difference"  # permutation


@dataclass(frozen=True)
class RunGroup:
    """One sweep of the declared runs: its own keys (a sweep config's) over an optional preset."""

    name: str
    own: ConfigFile
    preset: ConfigFile | None = None
    sample: int | None = None
    sample_seed: int = 0

    @property
    def seeds(self) -> list[int]:
        return self.own.seeds or (self.preset.seeds if self.preset else []) or [0]

    def names(self) -> set[str]:
        """The settings this group declares (hers and her preset's): what tells its runs apart from others."""
        files = [self.own] + ([self.preset] if self.preset else [])
        return {name for f in files for name in (*f.settings, *f.options, *f.grid)}


@dataclass(frozen=True)
class BudgetRule:
    """A budget picked from a pilot's evaluations (its seeds disjoint from the main runs'). The pilot is one sweep
    group or several (`[[budget.pilot]]`: e.g. one per stratum of a stratified sample), recorded in one folder."""

    rule: str
    metric: str
    pilots: tuple[RunGroup, ...]
    records: Path
    by: str | None = None  # order_stable: the setting whose levels are ordered; plateau: a plateau per level
    tolerance: float = 0.1
    round_up: int = 1  # plateau: the budget is rounded up to a multiple of it (never past the pilot's budget)


@dataclass
class Experiment:
    path: Path
    name: str
    description: str
    records: Path
    groups: list[RunGroup]
    budget: dict[str, Any]  # {"steps": 859}; empty when a rule picks it, or a grid runs over it
    rule: BudgetRule | None
    score: Score | None  # None: a pilot only (a budget rule and its pilot, no main runs, nothing tested)
    alpha: float
    correction: str
    hypotheses: list[Hypothesis]
    exploratory: list[Hypothesis]
    declared: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per declared run (`declared_runs`)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def pilot_only(self) -> bool:
        return not self.groups

    @property
    def analyses(self) -> list[Hypothesis]:
        return self.hypotheses + self.exploratory


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class _Spec:
    """Messages that name the spec."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, text: str) -> ConfigError:
        return ConfigError(f"{self.path}: {text}")

    def table(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"{where} must be a table, got {value!r}")
        return value

    def known(self, table: dict[str, Any], allowed, where: str) -> None:
        unknown = [key for key in table if key not in allowed]
        if unknown:
            raise self.error(f"unknown key {unknown[0]!r} in {where}; known: {', '.join(allowed)}")

    def number(self, value: Any, where: str, low: float | None = None, high: float | None = None) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or (low is not None and value <= low) or (high is not None and value >= high):
            bounds = f" between {low:g} and {high:g}" if low is not None and high is not None else \
                f" above {low:g}" if low is not None else ""
            raise self.error(f"{where} must be a finite number{bounds}, got {value!r}")
        return float(value)

    def text(self, value: Any, where: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str) or (choices is not None and value not in choices):
            expected = f"one of {', '.join(choices)}" if choices else "a string"
            raise self.error(f"{where} must be {expected}, got {value!r}")
        return value


def load_experiment(path: str | Path, machine: dict[str, Any] | None = None) -> Experiment:
    """The spec at `path`, checked and planned. `machine`: settings of this machine (data_root, device, ...) for
    the runs, never declared by the spec."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment spec not found: {path}; pass the experiment.toml of a leaderboards/NAME/ "
                          "folder")
    spec = _Spec(path)
    data = read_config_file(path)
    spec.known(data, SPEC_KEYS, "the spec")
    pilot_only = "runs" not in data and isinstance(data.get("budget"), dict) and "rule" in data["budget"]
    for key in ("runs", "score", "hypotheses"):
        if pilot_only and key in data:
            raise spec.error(f"declares {key} but no [[runs]]: a spec with a budget rule and no main runs is a pilot, "
                             "which tests nothing; remove it, or declare the main runs in [[runs]]")
        if key not in data and not pilot_only:
            raise spec.error(f"declares no {key}; an experiment declares its runs, its score and its hypotheses "
                             "before any run (see leaderboards/mnist-margin-sensitivity/experiment.toml), or a pilot "
                             "only its [budget] rule and [[budget.pilot]] runs")
    name = spec.text(data.get("name", path.resolve().parent.name), "name")  # a relative path's parent has no name
    description = spec.text(data.get("description", ""), "description")
    records = path.parent / spec.text(data.get("records", "records"), "records")
    raw_groups = [] if pilot_only else data["runs"] if isinstance(data["runs"], list) else [data["runs"]]
    groups = [_group(spec, spec.table(g, "[[runs]]"), f"{name}-{i + 1}" if len(raw_groups) > 1 else name, "[[runs]]")
              for i, g in enumerate(raw_groups)]
    if len({g.name for g in groups}) < len(groups):
        raise spec.error("two [[runs]] groups share a name; give each its own name")
    budget, rule = _budget(spec, data.get("budget"), groups, machine or {})
    score = None if pilot_only else _score(spec, spec.table(data["score"], "[score]"), None, "[score]")
    alpha = spec.number(data.get("alpha", 0.05), "alpha", 0.0, 1.0)
    correction = spec.text(data.get("correction", "holm"), "correction", CORRECTIONS)
    experiment = Experiment(path, name, description, records, groups, budget, rule, score, alpha, correction, [], [])
    experiment.declared = declared_runs(experiment, plan_groups(experiment, machine or {}))
    if pilot_only:
        return experiment
    hypotheses = _hypotheses(spec, data["hypotheses"], "hypotheses", experiment)
    if not hypotheses:
        raise spec.error("[[hypotheses]] is empty; declare at least one confirmatory hypothesis")
    exploratory = _hypotheses(spec, data.get("exploratory", []), "exploratory", experiment)
    ids = [h.id for h in hypotheses + exploratory]
    if len(set(ids)) < len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise spec.error(f"the id {twice!r} is given twice; each hypothesis and exploratory analysis needs its own")
    experiment.hypotheses, experiment.exploratory = hypotheses, exploratory
    return experiment


def _group(spec: _Spec, table: dict[str, Any], default_name: str, where: str, pilot: bool = False) -> RunGroup:
    name = spec.text(table.get("name", default_name), f"name in {where}")
    where = f"{where} {name}"
    own = {k: v for k, v in table.items() if k not in (*GROUP_KEYS, *(PILOT_KEYS if pilot else ()))}
    sample = table.get("sample")
    if sample is not None and (not isinstance(sample, int) or isinstance(sample, bool) or sample < 1):
        raise spec.error(f"sample in {where} must be a whole number >= 1, got {sample!r}")
    sample_seed = table.get("sample_seed", 0)
    if not isinstance(sample_seed, int) or isinstance(sample_seed, bool):
        raise spec.error(f"sample_seed in {where} must be a whole number, got {sample_seed!r}")
    preset = None
    if "preset" in table:
        given = spec.text(table["preset"], f"preset in {where}")
        beside = spec.path.parent / given
        preset = read_config(beside if beside.is_file() else given)
    file = config_file(own, f"{spec.path} {where}")
    for name_ in [*file.settings, *file.grid]:
        if name_ in MACHINE_SETTINGS:
            raise spec.error(f"{where} sets {name_}, which belongs to the machine, not the experiment: remove it "
                             f"(pass --{name_.replace('_', '-')} to `ebm-bench experiment run`)")
    return RunGroup(name, file, preset, sample, sample_seed)


def _budget(spec: _Spec, table: Any, groups: list[RunGroup], machine: dict[str, Any]
            ) -> tuple[dict[str, Any], BudgetRule | None]:
    for group in groups:
        if any(kind in group.own.settings for kind in BUDGET_KINDS):
            raise spec.error(f"[[runs]] {group.name} sets a budget; declare it once, in [budget] (steps = N, or a "
                             "rule and its pilot)")
    over_grid = [g.name for g in groups if any(kind in g.own.grid for kind in BUDGET_KINDS)]
    if table is None:
        if len(over_grid) == len(groups):
            return {}, None
        raise spec.error("declares no [budget]; add [budget] steps = N (or images, seconds), or a rule that picks it "
                         "from a pilot")
    table = spec.table(table, "[budget]")
    if over_grid:
        raise spec.error(f"[[runs]] {over_grid[0]} has a budget axis in [grid] and the spec a [budget]; keep one")
    if "rule" not in table:
        spec.known(table, BUDGET_KINDS, "[budget]")
        if len(table) != 1:
            raise spec.error("[budget] must give one of steps, images or seconds (e.g. steps = 859), or a rule")
        kind, amount = next(iter(table.items()))
        spec.number(amount, f"[budget] {kind}", 0.0)
        return {kind: amount}, None
    rule = spec.text(table["rule"], "[budget] rule", BUDGET_RULES)
    spec.known(table, RULE_KEYS[rule], f"[budget] (rule {rule})")
    metric = spec.text(table.get("metric"), "[budget] metric", CURVE_METRICS)
    if "pilot" not in table:
        raise spec.error(f"[budget] rule {rule} picks the budget from a pilot: declare its runs in [budget.pilot] "
                         "(with seeds of their own), or several sweeps in [[budget.pilot]]")
    raw = table["pilot"] if isinstance(table["pilot"], list) else [table["pilot"]]
    tables = [spec.table(t, "[budget.pilot]") for t in raw]
    if not tables:
        raise spec.error("[[budget.pilot]] is empty; declare the pilot's runs")
    pilots = tuple(_group(spec, t, "pilot" if len(tables) == 1 else f"pilot-{i + 1}", "[budget.pilot]", pilot=True)
                   for i, t in enumerate(tables))
    if len({p.name for p in pilots}) < len(pilots):
        raise spec.error("two [[budget.pilot]] groups share a name; give each its own name")
    for pilot in pilots:
        if not any(kind in pilot.own.settings for kind in BUDGET_KINDS):
            raise spec.error(f"[budget.pilot] {pilot.name} declares no budget of its own; add e.g. steps = 1718 "
                             "(longer than any budget the rule may pick)")
    main_seeds = sorted({s for g in groups for s in g.seeds})
    overlap = sorted({s for p in pilots for s in p.seeds} & set(main_seeds))
    if overlap:
        raise spec.error(f"the pilot's seeds {', '.join(map(str, overlap))} are also main runs' seeds "
                         f"({', '.join(map(str, main_seeds))}): a pilot that picks the budget must not be scored "
                         f"again; give it seeds of its own (e.g. seeds = [{max(main_seeds) + 100}])")
    folders = {spec.text(t.get("records", "pilot/records"), "[budget.pilot] records") for t in tables}
    if len(folders) > 1:
        raise spec.error(f"the [[budget.pilot]] groups name different records folders ({', '.join(sorted(folders))}); "
                         "a pilot is read from one: give them the same records")
    records = spec.path.parent / folders.pop()
    by = None
    if rule == "order_stable" or "by" in table:
        by = spec.text(table.get("by"), "[budget] by")
    tolerance = spec.number(table.get("tolerance", 0.1), "[budget] tolerance", 0.0) if rule == "plateau" else 0.1
    round_up = table.get("round_up", 1)
    if not isinstance(round_up, int) or isinstance(round_up, bool) or round_up < 1:
        raise spec.error(f"[budget] round_up must be a whole number of steps >= 1 (e.g. 500), got {round_up!r}")
    budget_rule = BudgetRule(rule, metric, pilots, records, by, tolerance, round_up)
    machine = {**machine, "out": str(records)}
    planned = [(p.name, c) for p in pilots for c in plan_group(spec.path, p, {}, machine).configs]
    configs = [c for _, c in planned]
    first: dict[str, str] = {}
    for group, config in planned:
        if first.setdefault(repr(config), group) != group:
            raise spec.error(f"[[budget.pilot]] groups {first[repr(config)]} and {group} declare the same run twice; "
                             "make their settings differ or merge them")
    if any(not c.eval_every for c in configs):
        raise spec.error(f"the pilot's runs are scored only at their end: rule {rule} reads their evaluation.csv; "
                         "set eval_every in [budget.pilot.set]")
    if by is not None:
        if by not in ("method", "seed") and setting_column(by).startswith("config.method_options.") \
                and all(_value(c, by) is None for c in configs):
            raise spec.error(f"[budget] by = {by!r} is no setting of the pilot's runs; name one they set, e.g. by = "
                             "\"method\"")
        if len({_value(c, by) for c in configs}) < 2:
            raise spec.error(f"[budget] by = {by!r} takes fewer than 2 values over the pilot's runs: nothing to "
                             f"{'order' if rule == 'order_stable' else 'compare'}")
    return {}, budget_rule


def _score(spec: _Spec, table: dict[str, Any], base: Score | None, where: str) -> Score:
    """[score], or a hypothesis's `score` over it: what the table gives replaces the base's; what follows from the
    metric and statistic (source, direction, bounds) is the base's only while those two are unchanged."""
    spec.known(table, SCORE_KEYS, where)
    if "metric" not in table and base is None:
        raise spec.error(f"{where} names no metric; e.g. metric = \"fid_mnist\"")
    metric = spec.text(table.get("metric", base.metric if base else None), f"{where} metric")
    statistic = spec.text(table.get("statistic", base.statistic if base else "final"), f"{where} statistic",
                          STATISTICS)
    same = base is not None and (metric, statistic) == (base.metric, base.statistic)
    source = spec.text(table.get("source", base.source if same else "result" if statistic == "final"
                                 else "evaluation"), f"{where} source", SOURCES)
    table_path = None
    if source == "table":
        if statistic != "final" or "table" not in table:
            raise spec.error(f"{where}: source \"table\" reads one value per run from a CSV beside the spec: give "
                             "table = \"FILE.csv\" (rows with a run_id column) and no statistic")
        table_path = spec.path.parent / spec.text(table["table"], f"{where} table")
        if not table_path.is_file():
            raise spec.error(f"{where} table {table_path} does not exist; write it first (e.g. `ebm-bench probe`)")
        table_path = str(table_path)
    elif "table" in table:
        raise spec.error(f"{where} table is for source = \"table\"; remove it or set the source")
    if statistic != "final" and source != "evaluation":
        raise spec.error(f"{where}: statistic {statistic} is taken over the evaluations in evaluation.csv; drop "
                         "source or set source = \"evaluation\"")
    if source == "result" and metric not in METRICS:
        raise spec.error(f"{where} metric {metric!r} is not a registered metric; known: {', '.join(sorted(METRICS))}")
    if source == "evaluation" and metric not in CURVE_METRICS:
        raise spec.error(f"{where} metric {metric!r} is not scored over training; evaluation.csv holds "
                         f"{', '.join(CURVE_METRICS)}")
    last_k = table.get("last_k", base.last_k if base else 3)
    if not isinstance(last_k, int) or isinstance(last_k, bool) or last_k < 1:
        raise spec.error(f"{where} last_k must be a whole number >= 1, got {last_k!r}")
    threshold = None
    if statistic == "time_to_threshold":
        threshold = spec.number(table.get("threshold", base.threshold if same else None),
                                f"{where} threshold (statistic time_to_threshold needs one)")
    elif "threshold" in table:
        raise spec.error(f"{where} threshold is for statistic time_to_threshold; remove it")
    if statistic in ("best", "drop", "time_to_threshold") and metric_direction(metric) is None:
        raise spec.error(f"{where}: statistic {statistic} needs a metric with a better side, and {metric} has none")
    if "direction" in table:
        direction = spec.text(table["direction"], f"{where} direction", ("higher", "lower"))
    elif same:
        direction = base.direction
    elif statistic in ("drop", "time_to_threshold"):
        direction = "lower"
    else:
        direction = metric_direction(metric)
        if direction is None:
            raise spec.error(f"{where} metric {metric} has no better side; add direction = \"higher\" or \"lower\"")
    if "bounds" in table:
        bounds = table["bounds"]
        if not (isinstance(bounds, list) and len(bounds) == 2
                and all(isinstance(b, (int, float)) and not isinstance(b, bool) and b == b for b in bounds)):
            raise spec.error(f"{where} bounds must be [low, high], inf or -inf for no bound, e.g. [0.0, inf]")
        bounds = tuple(None if math.isinf(b) else float(b) for b in bounds)
        if None not in bounds and not bounds[0] < bounds[1]:
            raise spec.error(f"{where} bounds must have low < high, got {list(table['bounds'])}")
    elif same:
        bounds = base.bounds
    else:
        bounds = (0.0, None) if statistic in ("drop", "time_to_threshold") else METRIC_BOUNDS.get(metric, (None, None))
    diverged = spec.text(table.get("diverged", base.diverged if base else "worst"), f"{where} diverged", DIVERGED)
    return Score(metric, statistic, source, last_k, threshold, bounds, diverged, direction, table_path)


def _hypotheses(spec: _Spec, raw: Any, kind: str, experiment: Experiment) -> list[Hypothesis]:
    if not isinstance(raw, list) or not all(isinstance(h, dict) for h in raw):
        raise spec.error(f"{kind} must be an array of tables ([[{kind}]]), got {raw!r}")
    return [_hypothesis(spec, h, f"[[{kind}]] #{i + 1}", experiment, kind == "exploratory") for i, h in enumerate(raw)]


def _hypothesis(spec: _Spec, table: dict[str, Any], where: str, experiment: Experiment, exploratory: bool
                ) -> Hypothesis:
    if "id" in table:
        where = f"{where.split(' #')[0]} {table['id']}"
    test = table.get("test")
    if test not in TESTS:
        raise spec.error(f"{where} has test {test!r}; known tests: {', '.join(TESTS)}")
    spec.known(table, TEST_KEYS[test], f"{where} (test {test})")
    hid = spec.text(table.get("id"), f"id in {where}")
    if not _ID.fullmatch(hid):
        raise spec.error(f"id {hid!r} in {where} must be letters, digits, _ . or -, e.g. id = \"H1\"")
    statement = spec.text(table.get("statement"), f"statement in {where}")
    score = _score(spec, spec.table(table["score"], f"score in {where}"), experiment.score, f"score in {where}") \
        if "score" in table else experiment.score
    declared = experiment.declared
    where_sel = _selector(spec, table["where"], f"where in {where}", declared) if "where" in table else None
    pool = declared[matches(declared, where_sel)] if where_sel else declared
    if score.source == "evaluation":
        no_curve = pool[~pool["eval_every"].astype(bool)]
        if not no_curve.empty:
            raise spec.error(f"{where}: statistic {score.statistic} reads evaluation.csv, but declared runs of "
                             f"[[runs]] {no_curve['group'].iloc[0]} have eval_every = 0; set eval_every in their "
                             "[set]")
    values = {"id": hid, "statement": statement, "test": test, "score": score, "exploratory": exploratory,
              "where": where_sel}
    needs_value = test in VALUE_TESTS
    if needs_value and (score.diverged == "worst" or score.statistic == "time_to_threshold"):
        reason = ("a run that never reaches the threshold has no time" if score.statistic == "time_to_threshold"
                  else "a diverged run has no score (diverged = \"worst\" ranks it last, which only rank tests can "
                       "use)")
        raise spec.error(f"{where}: test {test} needs a number for every run, and {reason}; use a rank test "
                         "(mann_whitney, kruskal_wallis) or set diverged = \"exclude\" in its score")
    if test in TWO_GROUP_TESTS or test == "wilson_share":
        if "a" not in table:
            raise spec.error(f"{where} (test {test}) needs a = {{ field = value }}: the runs it tests")
        values["a"] = _selector(spec, table["a"], f"a in {where}", pool)
        if test != "wilson_share" or "b" in table:
            if "b" not in table:
                raise spec.error(f"{where} (test {test}) needs b = {{ field = value }}: the runs a is compared with")
            values["b"] = _selector(spec, table["b"], f"b in {where}", pool)
            both = pool[matches(pool, values["a"]) & matches(pool, values["b"])]
            if not both.empty:
                raise spec.error(f"{where}: a ({values['a'].describe()}) and b ({values['b'].describe()}) share "
                                 f"{len(both)} declared run(s); the groups must be disjoint")
            directions = TWO_GROUP_DIRECTIONS
        else:
            if "share0" not in table:
                raise spec.error(f"{where} (wilson_share of one group) needs share0 = the share under H0, or b")
            values["share0"] = spec.number(table["share0"], f"share0 in {where}", 0.0, 1.0)
            directions = SHARE_DIRECTIONS
        if test == "wilson_share":
            values["threshold"] = spec.number(table.get("threshold"), f"threshold in {where} (wilson_share needs "
                                                                      "the score a run must reach)")
            if "share0" in table and "b" in table:
                raise spec.error(f"{where}: share0 is for a wilson_share of one group; with b, remove it")
        values["direction"] = spec.text(table.get("direction"), f"direction in {where}", directions)
        if test == "permutation":
            values["statistic"] = spec.text(table.get("statistic", "mean_difference"), f"statistic in {where}",
                                            PERMUTATION_STATISTICS)
    elif test == "kruskal_wallis":
        values["by"] = _field(spec, table.get("by"), f"by in {where}", pool)
        if pool[values["by"]].nunique(dropna=False) < 2:
            raise spec.error(f"{where}: by = {values['by']!r} takes one value over its declared runs; Kruskal-Wallis "
                             "needs at least 2 groups")
    else:  # quadratic_trend
        values["x"] = _field(spec, table.get("x"), f"x in {where}", pool)
        values["transform"] = spec.text(table.get("transform", "none"), f"transform in {where}", TRANSFORMS)
        xs = pool[values["x"]]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs):
            raise spec.error(f"{where}: x = {values['x']!r} must be a numeric field")
        if values["transform"] == "log" and (xs.astype(float) <= 0).any():
            raise spec.error(f"{where}: transform = \"log\" needs x > 0, and {values['x']} takes {xs.min()}")
        if xs.nunique() < 3:
            raise spec.error(f"{where}: x = {values['x']!r} takes {xs.nunique()} values over its declared runs; a "
                             "curvature needs at least 3")
        values["direction"] = spec.text(table.get("direction"), f"direction in {where}", TREND_DIRECTIONS)
    return Hypothesis(**values)


def _field(spec: _Spec, name: Any, where: str, declared: pd.DataFrame) -> str:
    name = spec.text(name, where)
    if name not in declared:
        raise spec.error(f"{where} names {name!r}, which no declared run sets; the declared fields are "
                         f"{', '.join(c for c in declared.columns if c not in ('group', 'eval_every'))}")
    return name


def _selector(spec: _Spec, table: Any, where: str, declared: pd.DataFrame) -> Selector:
    table = spec.table(table, where)
    if not table:
        raise spec.error(f"{where} is empty; name the runs, e.g. {{ method = \"ebgan\" }}")
    values = {}
    for name, value in table.items():
        _field(spec, name, where, declared)
        given = value if isinstance(value, list) else [value]
        methods = sorted(set(declared["method"]))
        try:
            typed = [v if name in ("method", "seed") else typed_setting(name, v, methods) for v in given]
        except ConfigError as err:
            raise spec.error(f"{where}: {err}") from None
        values[name] = tuple(typed)
    selector = Selector(values)
    if not matches(declared, selector).any():
        raise spec.error(f"{where} ({selector.describe()}) matches no declared run; check the values against the "
                         "[[runs]] (their grid and seeds)")
    return selector


def same_value(a: Any, b: Any) -> bool:
    """Config values equal as a record holds them: numbers by value (a JSON 6 and a 6.0), NaN as absent."""
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return a == b


def matches(frame: pd.DataFrame, selector: Selector | None) -> pd.Series:
    keep = pd.Series(True, index=frame.index)
    for name, allowed in (selector.values.items() if selector else []):
        keep &= frame[name].map(lambda v: any(same_value(v, a) for a in allowed))
    return keep


def _value(config: RunConfig, name: str) -> Any:
    return getattr(config, name) if name in ("method", "seed") else setting_of(config, name)


def setting_column(name: str) -> str:
    """The `load_records` column of a setting (as `ebm_bench.sweep.apply_setting` names it)."""
    if name == "lr":
        return "config.optim.lr_g"
    if name in BUDGET_KINDS:
        return "config.budget.amount"
    if name in _MLP_FIELDS:
        return f"config.mlp.{name}"
    if name in _OPTIM_FIELDS:
        return f"config.optim.{name}"
    if name in _RUN_FIELDS or name in ("method", "seed"):
        return f"config.{name}"
    return f"config.method_options.{name}"


def plan_group(spec_path: Path, group: RunGroup, budget: dict[str, Any], machine: dict[str, Any]) -> Plan:
    """The runs of one group, each config typed and checked as `ebm-bench sweep` would: the group's keys over its
    preset, then the budget and this machine's settings."""
    for name in machine:
        if name in group.names():
            raise ConfigError(f"{spec_path} [[runs]] {group.name} declares {name}; drop the flag that sets it")
    fixed = {**budget, **machine}
    try:
        if group.preset is None:
            return plan_runs(group.own, fixed=fixed, sample=group.sample, sample_seed=group.sample_seed)
        return plan_runs(group.preset, group.own.methods, group.own.seeds, settings=group.own.settings,
                         options=group.own.options, fixed=fixed, grid=group.own.grid, sample=group.sample,
                         sample_seed=group.sample_seed)
    except ConfigError as err:
        raise ConfigError(f"{spec_path} [[runs]] {group.name}: {err}") from None


def plan_groups(experiment: Experiment, machine: dict[str, Any], budget: dict[str, Any] | None = None
                ) -> list[tuple[RunGroup, Plan]]:
    """Every group's runs. With a budget rule and no `budget` yet, the pilot's budget stands in: it checks every
    config, and the rule's budget is never longer."""
    if budget is None:
        budget = experiment.budget
        if experiment.rule is not None:
            pilot = experiment.rule.pilots[0].own.settings
            budget = {kind: pilot[kind] for kind in BUDGET_KINDS if kind in pilot}
    machine = {"out": str(experiment.records), **machine}
    return [(group, plan_group(experiment.path, group, budget, machine)) for group in experiment.groups]


def key_names(experiment: Experiment) -> list[str]:
    """The settings that tell the declared runs apart, with the method, the seed and the budget."""
    names = {"method", "seed", *(n for g in experiment.groups for n in g.names()), *experiment.budget}
    if experiment.rule is not None:
        names.add("steps")  # the rule picks steps
    return sorted(names - set(MACHINE_SETTINGS), key=lambda n: (n not in ("method", "seed"), n))


def declared_runs(experiment: Experiment, plans: list[tuple[RunGroup, Plan]]) -> pd.DataFrame:
    """One row per declared run: its group, and its value of every setting that tells the runs apart."""
    return runs_table(experiment, plans, key_names(experiment))


def pilot_runs(experiment: Experiment, machine: dict[str, Any]) -> pd.DataFrame:
    """The pilot's runs (a budget rule's), as `declared_runs`."""
    rule = experiment.rule
    assert rule is not None
    plans = pilot_plans(experiment, {"out": str(rule.records), **machine})
    names = {"method", "seed", *(n for p in rule.pilots for n in p.names()), *([rule.by] if rule.by else [])}
    return runs_table(experiment, plans, sorted(names - set(MACHINE_SETTINGS)))


def pilot_plans(experiment: Experiment, machine: dict[str, Any]) -> list[tuple[RunGroup, Plan]]:
    """Each pilot group's runs (a budget rule's), at the pilot's own budget."""
    assert experiment.rule is not None
    return [(group, plan_group(experiment.path, group, {}, machine)) for group in experiment.rule.pilots]


def runs_table(experiment: Experiment, plans: list[tuple[RunGroup, Plan]], names: list[str]) -> pd.DataFrame:
    rows = [{"group": group.name, "eval_every": config.eval_every} | {name: _value(config, name) for name in names}
            for group, plan in plans for config in plan.configs]
    frame = pd.DataFrame(rows, columns=None if rows else ["group", "eval_every", *names])
    settings = [c for c in frame.columns if c not in ("group", "eval_every")]
    twice = frame[frame.duplicated(settings, keep=False)]
    if not twice.empty:
        raise ConfigError(f"{experiment.path}: groups {' and '.join(sorted(set(twice['group'])))} declare the same "
                          "run twice; make their settings differ or merge them")
    return frame


def with_budget(experiment: Experiment, budget: dict[str, Any]) -> pd.DataFrame:
    """The declared runs with the budget a rule picked."""
    (kind, amount), = budget.items()
    frame = experiment.declared.copy()
    for other in BUDGET_KINDS:
        if other in frame and other != kind:
            frame = frame.drop(columns=other)
    frame[kind] = amount
    return frame
