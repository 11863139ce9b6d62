"""`ebm-bench probe`: does a trained D's energy rank test digits below corrupted ones?"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.files import atomic_write_bytes
from ebm_bench.plots import probe_figure, save
from ebm_bench.probe import CORRUPTIONS, probe_markdown, probe_runs, summarise_probe
from ebm_bench.record import check_out_dir, find_run_dirs, load_record

from .common import read_csv_table


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("probe", help="energy of test digits against corrupted ones, per trained run",
                              description="For each finished run (its checkpoint is needed): the AUROC of clean "
                                          "against corrupted MNIST test digits under D's energy (a GAN's is its "
                                          "-logit), per corruption ("
                                          + ", ".join(f"{k} {'/'.join(f'{s:g}' for s in v)}"
                                                      for k, v in CORRUPTIONS.items())
                                          + ") and severity, and the Spearman correlation of energy with severity. "
                                          "--table re-renders the summary from a probe.csv without checkpoints.")
    p.add_argument("runs", nargs="*", help="run folders, or folders of them (with their checkpoints)")
    p.add_argument("--out", default="probe.csv", help="CSV of every run's rows (default: probe.csv)")
    p.add_argument("--table", help="summarise this probe.csv instead of probing runs")
    p.add_argument("--summary", help="folder for summary.md, summary.csv and probe.png (the AUROC curves)")
    p.add_argument("--n", type=int, default=2000, help="test digits per corruption (default 2000)")
    p.add_argument("--data-root", help="where MNIST is (default: each run's own)")
    p.set_defaults(func=command)


# The columns of a probe.csv (`ebm-bench probe RUNS --out`) that its summary and figure read, the numeric ones last
PROBE_TEXT_COLUMNS = ("run_id", "method", "corruption")
PROBE_NUMERIC_COLUMNS = ("severity", "auroc", "spearman", "energy_auroc_generated")


def read_probe_table(path: Path) -> pd.DataFrame:
    return read_csv_table(path, "probe", "write one with `ebm-bench probe RUNS --out probe.csv`",
                          PROBE_TEXT_COLUMNS, PROBE_NUMERIC_COLUMNS)


def command(args) -> int:
    if bool(args.runs) == bool(args.table):
        raise ConfigError("probe takes run folders, or --table probe.csv to summarise one")
    if args.table:
        table = read_probe_table(Path(args.table))
    if args.summary:  # before probing, which takes minutes; after reading a table, so that a bad one leaves no folder
        try:
            check_out_dir(Path(args.summary))
        except ConfigError as err:  # its message names --out, the folder flag of the other commands
            raise ConfigError(str(err).replace("--out ", "--summary ", 1)) from None
    if not args.table:
        run_dirs = find_run_dirs(args.runs)
        finished = [d for d in run_dirs if load_record(d)["status"] == "finished"]  # a damaged record: one line
        if len(finished) < len(run_dirs):
            print(f"skipping {len(run_dirs) - len(finished)} run(s) that did not finish (diverged or failed)")
        table = probe_runs(finished, n=args.n, data_root=args.data_root)
        atomic_write_bytes(Path(args.out), table.to_csv(index=False, float_format="%.6g").encode())
        print(f"{args.out}: {len(table)} rows from {len(finished)} run(s)")
    if args.summary:
        summary = summarise_probe(table)
        out = Path(args.summary)
        atomic_write_bytes(out / "summary.csv", summary.to_csv(index=False, float_format="%.4g").encode())
        markdown = probe_markdown(summary)
        atomic_write_bytes(out / "summary.md", markdown.encode())
        save(probe_figure(table), out, "probe")
        print(markdown)
    return 0
