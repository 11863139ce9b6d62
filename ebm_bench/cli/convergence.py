"""`ebm-bench convergence`: does a logged training quantity (BEGAN's M_global) track quality over training?"""

from __future__ import annotations

from pathlib import Path

from ebm_bench.errors import ConfigError
from ebm_bench.files import atomic_write_bytes
from ebm_bench.leaderboard.convergence import convergence_table
from ebm_bench.plots import save, tracking_figure
from ebm_bench.runs import load_records

from .common import method_list


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("convergence", help="Spearman correlation of a logged quantity (e.g. m_global) with "
                                                  "quality over training (--eval-every runs)",
                              description="Pairs a trajectory column with the scores of evaluation.csv at the same "
                                          "steps; per run and pooled, Spearman's rho against each score; and a "
                                          "figure of both over training.")
    p.add_argument("runs", nargs="+", help="run folders, or folders of them")
    p.add_argument("--measure", default="m_global", help="trajectory column (default: m_global, BEGAN's)")
    p.add_argument("--methods", help="comma-separated methods to include (default: every run that logs the measure)")
    p.add_argument("--out", default="convergence", help="folder for convergence.csv and the figure")
    p.set_defaults(func=command)


def command(args) -> int:
    records = load_records(args.runs)
    methods = method_list(args.methods)
    if methods:
        records = records[records["method"].isin(methods)]
    if records.empty:
        raise ConfigError(f"no runs of {', '.join(methods)} under {', '.join(args.runs)}")
    table = convergence_table(records, args.measure)
    out = Path(args.out)
    atomic_write_bytes(out / "convergence.csv", table.to_csv(index=False, float_format="%.4g").encode())
    save(tracking_figure(records, args.measure, "fid_mnist"), out, f"{args.measure}_vs_fid_mnist")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0
