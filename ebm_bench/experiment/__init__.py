"""Experiments declared before they run: a spec (`leaderboards/NAME/experiment.toml`) names the runs, the budget
(or the rule that picks it from a pilot with seeds of its own), the primary score and its per-run statistic, and the
hypotheses with their tests, groups and directions; `run` trains the runs through the sweep machinery, `render`
writes `analysis.md` and `analysis.csv` beside the spec: raw and family-adjusted p-values, effect sizes with
intervals, and whether the spec was committed before the runs were created."""

from .analysis import Analysis, analyse, declared_budget, match_records, render, render_csv, render_markdown, run_score
from .provenance import AFTER, BEFORE, Declaration, declaration
from .runner import copy_records, run_experiment
from .spec import (MACHINE_SETTINGS, STATISTICS, TESTS, Experiment, Hypothesis, Score, load_experiment,
                   setting_column)

__all__ = ["AFTER", "Analysis", "BEFORE", "Declaration", "Experiment", "Hypothesis", "MACHINE_SETTINGS",
           "STATISTICS", "Score", "TESTS", "analyse", "copy_records", "declaration", "declared_budget",
           "load_experiment", "match_records", "render", "render_csv", "render_markdown", "run_experiment",
           "run_score", "setting_column"]
