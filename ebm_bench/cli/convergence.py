"""`ebm-bench convergence`: does a logged training quantity (BEGAN's M_global) track quality over training?"""

from __future__ import annotations

from pathlib import Path

from ebm_bench.errors import ConfigError
from ebm_bench.files import atomic_write_bytes
from ebm_bench.leaderboard.convergence import convergence_table
from ebm_bench.plots import save, tracking_figure
from ebm_bench.record import check_out_dir, load_records

from .common import method_list
from .leaderboard import print_table, warnings_as_lines


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
    with warnings_as_lines():  # a run left out for a damaged trajectory.csv or evaluation.csv
        table = convergence_table(records, args.measure)
        out = Path(args.out)
        check_out_dir(out)
        atomic_write_bytes(out / "convergence.csv", table.to_csv(index=False, float_format="%.4g").encode())
        save(tracking_figure(records, args.measure, "fid_mnist"), out, f"{args.measure}_vs_fid_mnist")
    rows = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]
    print_table(list(table.columns), rows, f"Spearman's rho of {args.measure} and of the step against each score",
                text_columns=("run_id", "method"), elsewhere=str(out / "convergence.csv"))
    return 0
