"""`ebm-bench leaderboard` and `ebm-bench compare`, and the terminal tables they print."""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from typing import Sequence

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ebm_bench.errors import ConfigError
from ebm_bench.leaderboard import (check_alpha, compare_methods, compare_tables, default_rank_by,
                                   display_rows, headline_metrics, leaderboard_from_runs, load_table, render,
                                   table_metrics)
from ebm_bench.metrics import ranking_order
from ebm_bench.table import TextTable

from .common import emit, load_plugins, method_list

FORMATS = ("rich", "markdown", "csv", "latex", "html")
VIEWS = ("headline", "all")
GAP = 2  # spaces between two columns of a terminal table


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("leaderboard", help="a ranked table of methods from run folders",
                              description="One row per method (and variant) per dataset and budget: mean, std "
                                          "and 95%% CI of each metric over seeds, seeds and diverged runs, size, "
                                          "speed, and the real-data reference row. In the terminal (--format rich) "
                                          "the headline scores, fitted to its width; --columns all for the rest.")
    p.add_argument("runs", nargs="+", help="run folders, or folders of them")
    p.add_argument("--format", choices=FORMATS, default="rich")
    p.add_argument("--metrics", help="comma-separated metrics (default: every metric the records hold)")
    p.add_argument("--rank-by", help="metric to rank by, in its own direction (default: the first of "
                                     f"{', '.join(ranking_order())} the records hold)")
    p.add_argument("--columns", choices=VIEWS, default="headline",
                   help="terminal view (--format rich): headline (rank, method, variant, seeds and the primary "
                        "scores, or those of --metrics) or all; the other formats hold every column")
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
                                          "--against METHOD and one leaderboard: that method against each other. "
                                          "In the terminal the primary scores' rows; --columns all for the rest.")
    c.add_argument("a", help="a leaderboard CSV, or a folder of runs")
    c.add_argument("b", nargs="?", help="a leaderboard CSV, or a folder of runs (not with --against)")
    c.add_argument("--against", metavar="METHOD",
                   help="compare METHOD (as A) with every other method of one leaderboard (as B)")
    c.add_argument("--force", action="store_true", help="compare even when the setups differ")
    c.add_argument("--alpha", type=float, default=0.05, help="significance level, in (0, 1) (default 0.05)")
    c.add_argument("--metrics", help="comma-separated metrics to compare (default: every metric both tables hold; "
                                     "in the terminal the primary ones)")
    c.add_argument("--columns", choices=VIEWS, default="headline",
                   help="terminal view (--format rich): headline (the primary scores) or all")
    c.add_argument("--format", choices=("rich", "markdown", "csv"), default="rich")
    c.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file registering metrics (for their directions) (repeatable)")
    c.set_defaults(func=compare_command)


@contextmanager
def warnings_as_lines():
    """Warnings (a skipped record, a missing reference row, an unreadable file) as one plain line each on stderr,
    each said once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for message in dict.fromkeys(str(warning.message) for warning in caught):
                Console(stderr=True).print(f"warning: {escape(message)}", highlight=False, soft_wrap=True)


# -- terminal tables ---------------------------------------------------------------------------------------------
def _header_pieces(name: str) -> list[str]:
    """Where a header may break: between words and after an underscore (`classes_` `covered`)."""
    return [piece for word in name.split() for piece in word.replace("_", "_\n").split("\n") if piece]


def _wrap_header(name: str, width: int) -> str:
    """The header in lines of at most `width`, broken between words, then after underscores."""
    lines: list[str] = []
    for word in name.split():
        for k, piece in enumerate(_header_pieces(word)):
            joiner = "" if k else " "  # the pieces of one word join without a space
            if lines and len(lines[-1]) + len(joiner) + len(piece) <= width:
                lines[-1] += joiner + piece
            else:
                lines.append(piece)
    return "\n".join(lines)


def fit_widths(header: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> tuple[list[int], list[int]]:
    """(the columns shown, their widths) for a table of `width` characters: each column at least as wide as its
    longest word (header words may break after an underscore), so that no cell is ever cut; taken in order, a
    column that does not fit beside those before it is left out. The widest give up space first, wrapping."""
    least = [max([len(p) for p in _header_pieces(h)] + [len(w) for row in rows for w in row[i].split()] + [1])
             for i, h in enumerate(header)]
    most = [max([len(h)] + [len(line) for row in rows for line in row[i].split("\n")]) for i, h in enumerate(header)]
    shown: list[int] = []
    used = 0
    for i in range(len(header)):
        need = least[i] + (GAP if shown else 0)
        if not shown or used + need <= width:
            shown.append(i)
            used += need
    widths = [most[i] for i in shown]
    excess = sum(widths) + GAP * (len(shown) - 1) - width
    while excess > 0:
        room = [w - least[i] for w, i in zip(widths, shown)]
        if max(room) <= 0:
            break
        k = max(range(len(widths)), key=lambda j: (widths[j] if room[j] > 0 else -1, -j))
        widths[k] -= 1
        excess -= 1
    return shown, widths


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], title: str, note: str = "",
                text_columns: Sequence[str] = (), elsewhere: str = "--format markdown or csv",
                console: Console | None = None) -> None:
    """A table that fits the terminal: cells wrap between words and are never cut; columns that do not fit even
    so are left out and named in the note, with `elsewhere` (where they are). Numbers align right, the
    `text_columns` left."""
    console = console or Console()
    shown, widths = fit_widths(header, rows, console.width)
    left_out = [header[i] for i in range(len(header)) if i not in shown]
    if left_out:
        note = (note + "; " if note else "") + (f"left out to fit {console.width} columns: {', '.join(left_out)} "
                                                f"(a wider terminal shows them, as does {elsewhere})")
    table = Table(title=title, caption=note or None, box=None, padding=(0, 1), pad_edge=False,
                  header_style="bold", caption_justify="left", title_justify="left")
    for i, column_width in zip(shown, widths):
        table.add_column(Text(_wrap_header(header[i], column_width)), width=column_width, overflow="fold",
                         justify="left" if header[i] in text_columns else "right")
    for row in rows:
        table.add_row(*[Text(row[i]) for i in shown])
    console.print(table, soft_wrap=False)


def _interval_below(cell: str) -> str:
    """'2 ± 1 [0.1, 3.9]' as two lines, the 95% interval beneath, so that score columns stay narrow."""
    return cell.replace(" [", "\n[", 1)


LEADERBOARD_TEXT = ("dataset", "budget", "method", "variant")


def leaderboard_view(table: pd.DataFrame, rank_by: str | None, metrics: Sequence[str] = (), view: str = "headline"
                     ) -> tuple[list[str], list[list[str]], str, str]:
    """(header, rows, title, note) of a leaderboard in the terminal. The headline view: rank, method, variant (when
    any), seeds (with the diverged ones) and the headline scores (`metrics`, else `headline_metrics`); dataset and
    budget go in the title when they are one. The view "all": every column of `display_rows`."""
    header, rows = display_rows(table)
    title = "ebm-bench leaderboard" + (f", ranked by {rank_by}" if rank_by else "")
    note = "mean ± std [95% interval] over the seeds that finished; ↑ higher is better, ↓ lower is better"
    rows = [[_interval_below(cell) for cell in row] for row in rows]
    if view == "all":
        return header, rows, title, note
    position = {name: i for i, name in enumerate(header)}
    scores = {h.rstrip(" ↑↓"): i for i, h in enumerate(header) if h.rstrip(" ↑↓") in table_metrics(table)}
    constant = [k for k in ("dataset", "budget") if table[k].astype(str).nunique() == 1]
    if constant:
        title += ": " + ", ".join(str(table[k].iloc[0]) for k in constant)
    keys = ["rank"] + [k for k in ("dataset", "budget") if k not in constant] + ["method"]
    if any(row[position["variant"]] for row in rows):
        keys.append("variant")
    chosen = list(dict.fromkeys([m for m in [rank_by, *metrics] if m in scores])) if metrics \
        else headline_metrics(list(scores), rank_by)
    columns = [position[k] for k in keys] + [position["seeds"]] + [scores[m] for m in chosen]
    seeds, diverged = position["seeds"], position["diverged"]
    out = []
    for row in rows:
        cells = [row[i] for i in columns]
        if row[diverged] not in ("0", "-"):
            cells[len(keys)] = f"{row[seeds]} ({row[diverged]} diverged)"
        out.append(cells)
    hidden = len(scores) - len(chosen)
    note += f"; --columns all for every column ({f'{hidden} more scores, ' if hidden else ''}sizes, time, speed)"
    return [header[i] for i in columns], out, title, note


def command(args) -> int:
    load_plugins(args.plugin)
    with warnings_as_lines():
        table = leaderboard_from_runs(args.runs, method_list(args.metrics), args.rank_by, args.reference,
                                      args.data_root)
    if args.format == "rich" and not args.output:
        rank_by = args.rank_by or default_rank_by(table_metrics(table))
        if not (table["rank"].astype(str) != "").any():
            rank_by = None
        header, rows, title, note = leaderboard_view(table, rank_by, method_list(args.metrics), args.columns)
        print_table(header, rows, title, note, LEADERBOARD_TEXT)
    else:
        emit(render(table, "markdown" if args.format == "rich" else args.format), args.output)
    return 0


# -- compare -----------------------------------------------------------------------------------------------------
COMPARE_LABELS = {"mean_a": "A", "mean_b": "B", "diff_b_minus_a": "B - A", "welch_t": "t", "p_value": "p",
                  "mean_method": "B"}
COMPARE_TEXT = ("dataset", "budget", "method", "variant", "metric", "better")


def _number(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def compare_view(comparison: pd.DataFrame, view: str = "headline", baseline: str | None = None
                 ) -> tuple[list[str], list[list[str]], str]:
    """(header, rows, the constant keys as text) of a comparison in the terminal. The headline view leaves out the
    dataset and budget when they are one (they go in the title), an empty variant column and `significant` (a
    `better` side, or p, says it); "all" keeps every column. With a `baseline` (compare --against) its mean is A."""
    columns = list(comparison.columns)
    constant = []
    if view == "headline":
        constant = [k for k in ("dataset", "budget") if comparison[k].astype(str).nunique() == 1]
        drop = set(constant) | {"significant"}
        if not (comparison["variant"].astype(str) != "").any():
            drop.add("variant")
        columns = [c for c in columns if c not in drop]
    context = ", ".join(str(comparison[k].iloc[0]) for k in constant)
    rows = [[_number(v) for v in row] for row in comparison[columns].itertuples(index=False)]
    labels = COMPARE_LABELS | ({f"mean_{baseline}": "A"} if baseline else {})
    return [labels.get(c, c) for c in columns], rows, context


def _compared_metrics(comparison: pd.DataFrame, asked: Sequence[str], view: str, fmt: str) -> list[str]:
    held = list(dict.fromkeys(comparison["metric"]))
    unknown = [m for m in asked if m not in held]
    if unknown:
        raise ConfigError(f"--metrics {', '.join(unknown)}: not compared; the tables have in common "
                          f"{', '.join(sorted(held)) or 'no metric in common'}")
    if asked:
        return list(asked)
    if fmt == "rich" and view == "headline":
        return headline_metrics(held, default_rank_by(held))
    return held


def compare_command(args) -> int:
    load_plugins(args.plugin)
    check_alpha(args.alpha)
    if (args.b is None) == (args.against is None):
        raise ConfigError("compare takes two leaderboards A B, or one with --against METHOD")
    with warnings_as_lines():
        a = load_table(args.a)
        b = load_table(args.b) if args.b else None
    if args.against:
        comparison, differences = compare_methods(a, args.against, args.alpha), []
        title = f"B - A, A = {args.against}, B = each other method  ({args.a}; Welch's t-test, alpha {args.alpha:g})"
    else:
        comparison, differences = compare_tables(a, b, args.force, args.alpha)
        title = f"B - A  (A = {args.a}, B = {args.b}; Welch's t-test, alpha {args.alpha:g})"
    for line in differences:
        Console(stderr=True).print(f"setup: {escape(line)}", highlight=False, soft_wrap=True)
    metrics = _compared_metrics(comparison, method_list(args.metrics), args.columns, args.format)
    left_out = len(set(comparison["metric"])) - len(metrics)
    order = {m: i for i, m in enumerate(metrics)}
    comparison = comparison[comparison["metric"].isin(metrics)]
    if args.format == "rich":
        comparison = comparison.sort_values("metric", key=lambda column: column.map(order), kind="stable")
        header, rows, context = compare_view(comparison, args.columns, args.against)
        note = f"{left_out} more metrics with --columns all or --metrics" if left_out else ""
        print_table(header, rows, title + (f": {context}" if context else ""), note, COMPARE_TEXT)
    elif args.format == "csv":
        emit(render(comparison, "csv"), None)
    else:
        emit(TextTable([str(c) for c in comparison.columns],
                       [[str(v) for v in row] for row in comparison.itertuples(index=False)]).render(args.format), None)
    return 0
