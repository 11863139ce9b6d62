"""`ebm-bench plot`: plots of run folders."""

from __future__ import annotations

from ebm_bench.plots import plot_all

from .common import method_list
from .leaderboard import warnings_as_lines


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("plot", help="plots of run folders: energy view, quality over training, margin curve, "
                                           "histograms, samples")
    p.add_argument("runs", nargs="+", help="run folders, or folders of them")
    p.add_argument("--out", default="plots", help="output folder for PNG and SVG files (default: plots)")
    # --metrics already names record scores (the margin curve's and the histogram's), so the logged trajectory
    # columns get their own option rather than a second meaning of --metrics
    p.add_argument("--metrics", help="comma-separated scores for the margin curve and the histogram, named as the "
                                     "leaderboard names them, e.g. i_prime,fid_mnist,i_prime.best")
    p.add_argument("--raw", action="store_true",
                   help="also draw the trajectory as logged, in each method's own units (trajectories.png): "
                        "energies, margin, k_t and M_global per method")
    p.add_argument("--raw-columns", metavar="COLUMNS",
                   help="with --raw or alone: the trajectory columns to draw instead, e.g. loss_d,loss_g,pt")
    p.set_defaults(func=command)


def command(args) -> int:
    raw = method_list(args.raw_columns) if args.raw or args.raw_columns else None
    with warnings_as_lines():  # a run a figure leaves out (no readable trajectory, a damaged samples.png)
        written = plot_all(args.runs, args.out, method_list(args.metrics), raw=raw)
    for path in written:
        print(path)
    return 0
