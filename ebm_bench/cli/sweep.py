"""`ebm-bench sweep`: a grid of runs (or a preset), resumable, local or on Ray."""

from __future__ import annotations

from ebm_bench.config import preset_names
from ebm_bench.sweep import sweep_main

from .common import add_config_arguments, base_config, load_plugins, method_list, method_options

def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="a grid of runs (or a paper preset), resumable, local or on Ray",
                              description="Expand a grid over config fields x methods x seeds and train every run "
                                          "not finished yet. Re-running resumes; diverged runs stay recorded.")
    p.add_argument("--preset", help=f"a shipped sweep ({', '.join(preset_names())}) or a .toml file")
    p.add_argument("--methods", help="comma-separated methods (default: the preset's)")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                   help="a grid axis over any config field or method option, e.g. margin=1,2,4 (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="fix a field for every run, after the preset (e.g. --set size_g=800)")
    p.add_argument("--sample", type=int, help="a seeded random subset of K grid points")
    p.add_argument("--dry-run", action="store_true", help="print the runs and exit")
    p.add_argument("--name", help="sweep name for its summary and plots (default: the preset or 'sweep')")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in this process)")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray CPUs per run")
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="Ray GPUs per run (fractions share a GPU)")
    p.add_argument("--no-plots", action="store_true", help="skip the plots at the end")
    add_config_arguments(p)
    p.set_defaults(func=command)


def command(args) -> int:
    load_plugins(args.plugin)
    return sweep_main(args, base_config(args), method_options(args), method_list(args.methods))


