"""`ebm-bench report`: one self-contained HTML page of run folders."""

from __future__ import annotations

from ebm_bench.metrics import ranking_order
from ebm_bench.report import write_report

from .common import load_plugins, method_list
from .leaderboard import warnings_as_lines


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="one HTML page of run folders: leaderboard, samples, energy view, "
                                             "quality over training, setup",
                              description="Writes OUT/index.html, self-contained (images embedded, no script, "
                                          "nothing fetched when viewed): the leaderboard, each method's samples, "
                                          "the energy view, quality over training, a sweep's margin curve or "
                                          "histogram, and the setup (budget, evaluation N, versions, hashes).")
    p.add_argument("runs", nargs="+", help="run folders, or folders of them (e.g. a leaderboard's records/)")
    p.add_argument("--out", default="report", help="folder for index.html (default: report)")
    p.add_argument("--metrics", help="comma-separated leaderboard metrics (default: every metric the records hold)")
    p.add_argument("--rank-by", help="metric to rank by (default, as `ebm-bench leaderboard`: the first of "
                                     f"{', '.join(ranking_order())} the records hold)")
    p.add_argument("--reference", default="auto",
                   help="real-data reference row: auto (as `ebm-bench leaderboard`), none")
    p.add_argument("--data-root", help="where MNIST is, for the reference row (default: as for `run`)")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file registering metrics or methods (repeatable)")
    p.set_defaults(func=command)


def command(args) -> int:
    load_plugins(args.plugin)
    with warnings_as_lines():
        page = write_report(args.runs, args.out, metrics=method_list(args.metrics), rank_by=args.rank_by,
                            reference=args.reference, data_root=args.data_root)
    print(page)
    return 0
