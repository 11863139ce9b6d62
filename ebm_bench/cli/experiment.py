"""`ebm-bench experiment run|render SPEC`: train an experiment declared in a spec, and render its analysis."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ebm_bench.errors import ConfigError
from ebm_bench.experiment import load_experiment, render, run_experiment
from ebm_bench.pack import AUTO_PACK, parse_pack
from ebm_bench.stats import format_significant
from ebm_bench.sweep import parse_threads, parse_time_limit

from .common import add_threads_argument, load_plugins
from .sweep import sweep_main


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("experiment", help="an experiment declared before it runs: train it, render its tests",
                              description="An experiment spec (leaderboards/NAME/experiment.toml) declares the runs, "
                                          "the budget, the score and the hypotheses before any run. `run` trains "
                                          "the runs; `render` writes analysis.md and analysis.csv beside the spec.")
    actions = p.add_subparsers(dest="experiment_command", required=True)
    r = actions.add_parser("run", help="train the spec's runs (the pilot first, when a rule picks the budget)",
                           description="Train every declared run not finished yet, through the sweep machinery: "
                                       "re-running resumes. A budget rule's pilot trains first and picks the main "
                                       "runs' budget from its evaluations.")
    r.add_argument("spec", help="the experiment.toml")
    r.add_argument("--out", help="where the runs train (default: the spec's records folders); records trained "
                                 "elsewhere are copied there, without checkpoints")
    r.add_argument("--dry-run", action="store_true", help="check the spec and every run's config, list the runs")
    r.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in this process)")
    r.add_argument("--pack", default="auto", metavar="K|auto",
                   help=f"train up to K same-shape runs as one model (default auto: {AUTO_PACK['cpu']} on a CPU, "
                        f"{AUTO_PACK['cuda']} on a GPU)")
    add_threads_argument(r)
    r.add_argument("--data-root", help="where datasets live (default: $EBM_BENCH_DATA, then ~/.cache/ebm-bench/data)")
    r.add_argument("--no-download", action="store_true", help="never try to download missing data")
    r.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: auto)")
    r.add_argument("--inception-weights", help="Inception weights file (default: $EBM_BENCH_INCEPTION_WEIGHTS)")
    r.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file registering extra methods or metrics (repeatable)")
    r.add_argument("--time-limit", metavar="DURATION|@T",
                   help="train only the packs predicted to end inside this time (9m, 540s, 1.5h, or @T in Unix "
                        "seconds), one deadline for the pilot and every group (see `ebm-bench sweep --time-limit`); "
                        "the same command again continues")
    r.add_argument("--no-plots", action="store_true",
                   help="accepted as `ebm-bench sweep` takes it (benchmarks/gpu.sh campaign passes it to a make.sh): "
                        "an experiment's runs never plot")
    r.set_defaults(func=run_command)
    d = actions.add_parser("render", help="write analysis.md and analysis.csv beside the spec",
                           description="Match the records to the declared runs, test each hypothesis (raw and "
                                       "family-adjusted p, effect sizes with intervals, the decision at alpha), and "
                                       "say whether the spec was committed before the runs were created.")
    d.add_argument("spec", help="the experiment.toml")
    d.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file registering extra methods or metrics (repeatable)")
    d.set_defaults(func=render_command)


def _machine(args) -> dict:
    """This machine's settings for the runs: never declared by the spec."""
    machine = {name: getattr(args, name) for name in ("data_root", "device", "inception_weights")
               if getattr(args, name) is not None}
    if args.no_download:
        machine["download"] = False
    return machine


def run_command(args) -> int:
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1 (1: train in this process), got {args.workers}")
    if args.out is not None and not str(args.out).strip():
        raise ConfigError("--out is empty; pass the folder the runs train in, or drop it (the spec's records folder)")
    if args.time_limit is not None:  # one deadline, counted from here, for the pilot and every group
        args.time_limit = parse_time_limit(args.time_limit)
    args.pack, args.threads = parse_pack(args.pack), parse_threads(args.threads)
    args.executor, args.no_plots = "local", True
    load_plugins(args.plugin)
    machine = _machine(args)
    experiment = load_experiment(args.spec, machine)
    code = run_experiment(experiment, args, machine, Path(args.out) if args.out else None, sweep_main)
    if not args.dry_run:
        print(f"experiment {experiment.name}: render its analysis with `ebm-bench experiment render {args.spec}`")
    return code


def render_command(args) -> int:
    load_plugins(args.plugin)
    experiment = load_experiment(args.spec)
    analysis = render(experiment)
    missing = len(analysis.matched.runs) - len(analysis.matched.recorded)
    if missing:
        Console(stderr=True).print(f"warning: {missing} of {len(analysis.matched.runs)} declared runs have no record "
                                   f"in {experiment.records}; train them with `ebm-bench experiment run {args.spec}`",
                                   highlight=False, soft_wrap=True, markup=False)
    print(f"{analysis.declaration.label}; wrote {experiment.folder / 'analysis.md'} and "
          f"{experiment.folder / 'analysis.csv'}")
    for result in analysis.results:
        kind = "exploratory" if result.hypothesis.exploratory else "confirmatory"
        adjusted = ("" if result.hypothesis.exploratory else
                    f", adjusted {format_significant(result.p_adjusted, 2)}: {result.decision}")
        print(f"  {result.hypothesis.id} ({kind}): p {format_significant(result.p, 2)}{adjusted}")
    return 0
