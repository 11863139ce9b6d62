"""`ebm-bench density-probe`: on gaussians-2d, does a trained D's energy track -log P or log Q/P?"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ebm_bench.density_probe import density_probe_runs, summarise, summary_markdown
from ebm_bench.errors import ConfigError
from ebm_bench.files import atomic_write_bytes
from ebm_bench.record import check_out_dir, find_run_dirs, load_record

from .common import read_csv_table


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("density-probe", help="on gaussians-2d: D's energy against -log P and log Q/P, per run",
                              description="For each finished run on gaussians-2d (its checkpoint is needed): "
                                          "Spearman's rho of D's energy with -log P (the data's energy) and with "
                                          "log Q/P (the optimal GAN energy; known when G was frozen at Q, --arch "
                                          "toy-fixed-q), on samples of P and on a grid over the plane, with "
                                          "bootstrap intervals. --table re-renders the summary from a CSV it wrote.")
    p.add_argument("runs", nargs="*", help="run folders, or folders of them (with their checkpoints)")
    p.add_argument("--out", default="density-probe.csv", help="CSV of every run's rows (default: density-probe.csv)")
    p.add_argument("--table", help="summarise this CSV instead of probing runs")
    p.add_argument("--summary", help="folder for summary.md and summary.csv")
    p.add_argument("--n", type=int, default=2000, help="samples of P scored (default 2000)")
    p.add_argument("--grid", type=int, default=64, help="points per side of the grid over [-1, 1]^2 (default 64)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples per interval (default 2000)")
    p.add_argument("--data-root", help="where datasets are (default: each run's own; gaussians-2d needs none)")
    p.set_defaults(func=command)


# What `summarise` reads of a table, the numeric columns last
TEXT_COLUMNS = ("method", "generator", "points", "target")
NUMERIC_COLUMNS = ("rho", "ci_low", "ci_high")


def read_table(path: Path) -> pd.DataFrame:
    return read_csv_table(path, "density-probe", "write one with `ebm-bench density-probe RUNS --out "
                          "density-probe.csv`", TEXT_COLUMNS, NUMERIC_COLUMNS)


def command(args) -> int:
    if bool(args.runs) == bool(args.table):
        raise ConfigError("density-probe takes run folders, or --table density-probe.csv to summarise one")
    for flag in ("n", "grid", "n_boot"):
        if getattr(args, flag) < 2:
            raise ConfigError(f"--{flag.replace('_', '-')} {getattr(args, flag)} is too small; use 2 or more")
    if args.table:
        table = read_table(Path(args.table))
    if args.summary:  # before probing; after reading a table, so that a bad one leaves no folder
        try:
            check_out_dir(Path(args.summary))
        except ConfigError as err:
            raise ConfigError(str(err).replace("--out ", "--summary ", 1)) from None
    if not args.table:
        run_dirs = find_run_dirs(args.runs)
        finished = [d for d in run_dirs if load_record(d)["status"] == "finished"]
        if len(finished) < len(run_dirs):
            print(f"skipping {len(run_dirs) - len(finished)} run(s) that did not finish (diverged or failed)")
        if not finished:
            raise ConfigError(f"no finished run under {', '.join(args.runs)}; train some on gaussians-2d first")
        table = density_probe_runs(finished, n=args.n, grid=args.grid, n_boot=args.n_boot, data_root=args.data_root)
        atomic_write_bytes(Path(args.out), table.to_csv(index=False, float_format="%.6g").encode())
        print(f"{args.out}: {len(table)} rows from {len(finished)} run(s)")
    summary = summarise(table)
    markdown = summary_markdown(summary)
    if args.summary:
        out = Path(args.summary)
        atomic_write_bytes(out / "summary.csv", summary.to_csv(index=False, float_format="%.4g").encode())
        atomic_write_bytes(out / "summary.md", markdown.encode())
    print(markdown)
    return 0
