"""`ebm-bench leaderboard` and `ebm-bench compare`."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

from ebm_bench.errors import ConfigError
from ebm_bench.leaderboard import (compare_methods, compare_tables, display_rows, leaderboard_from_runs, load_table,
                                   render)

from .common import emit, load_plugins, method_list, print_rich

FORMATS = ("rich", "markdown", "csv", "latex", "html")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("leaderboard", help="a ranked table of methods from run folders",
                              description="One row per method (and variant) per dataset and budget: mean, std "
                                          "and 95%% CI of each metric over seeds, seeds and diverged runs, size, "
                                          "speed, and the real-data reference row.")
    p.add_argument("runs", nargs="+", help="run folders, or folders of them")
    p.add_argument("--format", choices=FORMATS, default="rich")
    p.add_argument("--metrics", help="comma-separated metrics (default: every metric the records hold)")
    p.add_argument("--rank-by", help="metric to rank by, in its own direction (default: the first metric)")
    p.add_argument("--reference", default="auto",
                   help="real-data reference row: auto (MNIST train images scored like the runs), none")
    p.add_argument("--data-root", help="where MNIST is, for the reference row (default: as for `run`)")
    p.add_argument("--output", help="write to this file instead of stdout")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file registering metrics (for their directions) or methods (repeatable)")
    p.set_defaults(func=command)
    c = subparsers.add_parser("compare", help="two leaderboards side by side, with significance of differences",
                              description="Per method and metric: both means, B - A, and Welch's t-test over "
                                          "seeds. Refuses setups that differ in what changes the numbers. With "
                                          "--against METHOD and one leaderboard: that method against each other.")
    c.add_argument("a", help="a leaderboard CSV, or a folder of runs")
    c.add_argument("b", nargs="?", help="a leaderboard CSV, or a folder of runs (not with --against)")
    c.add_argument("--against", metavar="METHOD",
                   help="compare METHOD (as A) with every other method of one leaderboard (as B)")
    c.add_argument("--force", action="store_true", help="compare even when the setups differ")
    c.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    c.add_argument("--format", choices=("rich", "markdown", "csv"), default="rich")
    c.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file registering metrics (for their directions) (repeatable)")
    c.set_defaults(func=compare_command)


@contextmanager
def warnings_as_lines():
    """Warnings (a skipped record, a missing reference row) as one plain line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                Console(stderr=True).print(f"warning: {escape(str(warning.message))}", highlight=False,
                                           soft_wrap=True)


def command(args) -> int:
    load_plugins(args.plugin)
    with warnings_as_lines():
        table = leaderboard_from_runs(args.runs, method_list(args.metrics), args.rank_by, args.reference,
                                      args.data_root)
    if args.format == "rich" and not args.output:
        print_rich(*display_rows(table), title="ebm-bench leaderboard",
                    note="mean ± std [95% CI] over finished seeds")
    else:
        emit(render(table, "markdown" if args.format == "rich" else args.format), args.output)
    return 0


def compare_command(args) -> int:
    load_plugins(args.plugin)
    if (args.b is None) == (args.against is None):
        raise ConfigError("compare takes two leaderboards A B, or one with --against METHOD")
    with warnings_as_lines():
        a = load_table(args.a)
        b = load_table(args.b) if args.b else None
    if args.against:
        comparison, differences = compare_methods(a, args.against, args.alpha), []
        title = f"method - {args.against}  ({args.a}; Welch's t-test, alpha {args.alpha})"
    else:
        comparison, differences = compare_tables(a, b, args.force, args.alpha)
        title = f"B - A  (A = {args.a}, B = {args.b}; Welch's t-test, alpha {args.alpha})"
    for line in differences:
        Console(stderr=True).print(f"setup: {escape(line)}", highlight=False, soft_wrap=True)
    if args.format == "rich":
        header = list(comparison.columns)
        print_rich(header, [[str(v) for v in row] for row in comparison.itertuples(index=False)], title=title)
    elif args.format == "csv":
        emit(render(comparison, "csv"), None)
    else:
        lines = ["| " + " | ".join(comparison.columns) + " |", "|" + "---|" * len(comparison.columns)]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in comparison.itertuples(index=False)]
        emit("\n".join(lines) + "\n", None)
    return 0


