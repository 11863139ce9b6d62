"""`ebm-bench plot`: plots of run folders."""

from __future__ import annotations

from ebm_bench.plots import plot_all

from .common import method_list

def add_parser(subparsers) -> None:
    p = subparsers.add_parser("plot", help="plots of run folders: trajectories, margin curve, histograms, samples")
    p.add_argument("runs", nargs="+", help="run folders, or folders of them")
    p.add_argument("--out", default="plots", help="output folder for PNG and SVG files (default: plots)")
    p.add_argument("--metrics", help="comma-separated record columns to plot, e.g. evaluation.i_prime")
    p.set_defaults(func=command)


def command(args) -> int:
    for path in plot_all(args.runs, args.out, method_list(args.metrics)):
        print(path)
    return 0


