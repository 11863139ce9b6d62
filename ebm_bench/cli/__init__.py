"""`ebm-bench`: a thin command line over the Python API, one module per subcommand."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.markup import escape

from ebm_bench import __version__
from ebm_bench.errors import EbmBenchError

from . import (config, convergence, density_probe, experiment, leaderboard, plot, probe, records, reliability, report,
               run, score, sweep)
from . import list as listing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebm-bench", description="Benchmark energy-based GANs under matched "
                                     "budgets: GAN, EBGAN, EBGAN-PT, BEGAN, MAGAN.")
    parser.add_argument("--version", action="version", version=f"ebm-bench {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in (run, sweep, experiment, config, plot, report, leaderboard, reliability, convergence, score, probe,
                   density_probe, records, listing):
        module.add_parser(subparsers)
    score.add_classifier_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EbmBenchError as err:
        Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(str(err))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted: run the same command again to resume from the last checkpoint")
        return 130


if __name__ == "__main__":
    sys.exit(main())
