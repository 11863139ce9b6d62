"""Leaderboards: run records -> a ranked table (build), its renderings (render), and comparisons of two (compare).

The real-data reference row and the readers of tables and run folders are in `reference`.
"""

from .build import (HEADLINE_SCORES, default_rank_by, headline_metrics, leaderboard_table,
                    metric_direction, record_metrics)
from .compare import check_alpha, compare_methods, compare_tables, setup_differences
from .reference import leaderboard_from_runs, load_table, reference_scores
from .render import display_rows, render, table_metrics

__all__ = ["HEADLINE_SCORES", "check_alpha", "compare_methods", "compare_tables",
           "default_rank_by", "display_rows", "headline_metrics", "leaderboard_from_runs", "leaderboard_table",
           "load_table", "metric_direction", "record_metrics", "reference_scores", "render", "setup_differences",
           "table_metrics"]
