"""`ebm-bench reliability`: how often a grid's configurations train well (the EBGAN paper's Figures 2 and 3)."""

from __future__ import annotations

from pathlib import Path

from ebm_bench.errors import ConfigError
from ebm_bench.files import atomic_write_bytes
from ebm_bench.leaderboard.reliability import (DEFAULT_THRESHOLDS, SUBSETS, optimiser_panels, reliability_markdown,
                                               reliability_table, reliability_test, subset)
from ebm_bench.plots import plot_reliability
from ebm_bench.record import check_out_dir, load_records


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("reliability", help="share of a grid's runs above score thresholds, with intervals, "
                                                  "a rank test and histograms",
                              description="Per subset of the grid (all, nLayer<=4, nLayer<=3) and per method (and "
                                          "optimiser pair): diverged share and the share of runs at or above each "
                                          "threshold with 95%% bootstrap intervals; a Mann-Whitney test of "
                                          "--better over --worse; the histograms of the EBGAN paper's Figure 2 and, "
                                          "per optimiser pair of a grid with several, of its Figure 3.")
    p.add_argument("runs", nargs="+", help="run folders, or folders of them (the grid's runs)")
    p.add_argument("--out", default="reliability", help="folder for reliability.csv/.md, tests.csv and the plots")
    p.add_argument("--metric", default="i_prime", help="the score (default: i_prime)")
    p.add_argument("--thresholds", default=",".join(f"{t:g}" for t in DEFAULT_THRESHOLDS),
                   help="comma-separated score thresholds (default: %(default)s)")
    p.add_argument("--better", default="ebgan", help="method claimed more reliable (default: ebgan)")
    p.add_argument("--worse", default="gan", help="method it is tested against (default: gan)")
    p.set_defaults(func=command)


def command(args) -> int:
    try:
        thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--thresholds takes numbers like 2,4,6; got {args.thresholds!r}") from None
    records = load_records(args.runs)
    table = reliability_table(records, args.metric, thresholds)
    check_out_dir(Path(args.out))
    methods = set(records["method"])
    tests = (reliability_test(records, args.better, args.worse, args.metric)
             if {args.better, args.worse} <= methods else None)
    out = Path(args.out)
    atomic_write_bytes(out / "reliability.csv", table.to_csv(index=False, float_format="%.6g").encode())
    if tests is not None:
        atomic_write_bytes(out / "tests.csv", tests.to_csv(index=False, float_format="%.6g").encode())
    markdown = reliability_markdown(table, tests)
    atomic_write_bytes(out / "reliability.md", markdown.encode())
    plot_reliability({name: subset(records, name) for name in SUBSETS}, out, args.metric, thresholds)
    by_optimiser = optimiser_panels(records, args.better) if args.better in methods else {}
    if by_optimiser:
        plot_reliability(by_optimiser, out, args.metric, thresholds, name="reliability_by_optimiser")
    print(markdown)
    return 0
