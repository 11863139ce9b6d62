"""`ebm-bench run`: train methods x seeds under one matched budget."""

from __future__ import annotations

import json
from dataclasses import asdict

from ebm_bench.api import run_configs
from ebm_bench.pack import AUTO_PACK, parse_pack
from ebm_bench.sweep import parse_threads, thread_count

from .common import add_config_arguments, add_threads_argument, command_parser, plan_of


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "run", help="train methods under one matched budget",
                       description="Train each method x seed with identical data order, networks, optimiser and "
                                   "budget; write one run directory per run.")
    p.add_argument("--methods", help="comma-separated method names (see `ebm-bench list`); required unless the "
                                     "--config file names them")
    add_config_arguments(p)
    p.add_argument("--pack", default="1", metavar="K|auto",  # parsed in `command`: one line, not argparse's usage
                   help="train up to K runs that differ only in seed, float method options (margin, ...), learning "
                        "rates or dropout as one stacked model; same records as alone (default 1: each alone; "
                        f"auto: {AUTO_PACK['cpu']} on a CPU, {AUTO_PACK['cuda']} on a GPU)")
    add_threads_argument(p)
    p.add_argument("--restart", action="store_true", help="discard existing run folders and train from scratch")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary table")
    p.set_defaults(func=command)


def command(args) -> int:
    pack, threads = parse_pack(args.pack), thread_count(parse_threads(args.threads))
    plan = plan_of(args, sweep=False)
    results = run_configs(plan.configs, restart=args.restart, show_progress=not args.quiet, pack=pack,
                          threads=threads)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2, default=str))
    # A run another process is writing (locked) was reported and is that process's to finish
    return 0 if all(r.status in ("finished", "locked") for r in results) else 1
