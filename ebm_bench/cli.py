"""`ebm-bench`: a thin command line over the Python API (`ebm_bench.api`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import asdict

from rich.console import Console
from rich.markup import escape

from . import __version__
from .api import run
from .config import Budget, OptimConfig, RunConfig
from .data import DATASETS, get_dataset
from .errors import EbmBenchError
from .method import available_methods, load_plugin
from .nets import MLPConfig
from .scoring import add_classifier_parser, add_score_parser
from .sweep import PRESETS


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 0,1,2; got {text!r}") from None


def _option(text: str) -> tuple[str, object]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, e.g. gamma=0.7; got {text!r}")
    for parse in (int, float):
        try:
            return name.strip(), parse(raw)
        except ValueError:
            pass
    lowered = raw.strip().lower()
    return name.strip(), {"true": True, "false": False, "none": None}.get(lowered, raw)


def _add_run_parser(subparsers) -> None:
    p = subparsers.add_parser("run", help="train methods under one matched budget",
                              description="Train each method x seed with identical data order, networks, "
                                          "optimiser and budget; write one run directory per run.")
    p.add_argument("--methods", required=True, help="comma-separated method names (see `ebm-bench list`)")
    _add_config_arguments(p)
    p.add_argument("--restart", action="store_true", help="discard existing run folders and train from scratch")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary table")
    p.set_defaults(func=_cmd_run)


def _add_config_arguments(p) -> None:
    """The settings every run of one invocation shares (run and sweep)."""
    p.add_argument("--dataset", default="mnist", help="dataset name (default: mnist)")
    p.add_argument("--data-root", help="where datasets live (default: $EBM_BENCH_DATA, then ~/.cache/ebm-bench/data)")
    p.add_argument("--no-download", action="store_true", help="never try to download missing data")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="budget in training steps (default: 2000)")
    budget.add_argument("--images", type=int, help="budget in real images seen")
    budget.add_argument("--seconds", type=float, help="budget in wall-clock seconds of training")
    p.add_argument("--seeds", type=_int_list, default=[0], help="comma-separated seeds (default: 0)")
    p.add_argument("--out", default="runs", help="output directory for run folders (default: runs)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file registering extra methods (repeatable)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, help="image side (MNIST: 32 zero-padded, or 28)")
    p.add_argument("--margin", type=float, help="margin for methods that take one (default: dataset's, MNIST 10)")
    p.add_argument("-o", "--option", type=_option, action="append", default=[], metavar="NAME=VALUE",
                   help="a method option, e.g. -o gamma=0.7 -o pt_weight=0.1 (goes to methods that have it)")
    arch = p.add_argument_group("architecture (MNIST: the paper's MLPs, default its best EBGAN)")
    arch.add_argument("--arch", default="auto", help="network family (default: the dataset's; MNIST: mlp)")
    defaults = MLPConfig()
    arch.add_argument("--n-layer-g", type=int, default=defaults.n_layer_g)
    arch.add_argument("--size-g", type=int, default=defaults.size_g)
    arch.add_argument("--n-layer-d", type=int, default=defaults.n_layer_d)
    arch.add_argument("--size-d", type=int, default=defaults.size_d)
    arch.add_argument("--dropout-d", action="store_true", help="dropout (p=0.5) in D")
    arch.add_argument("--z-dim", type=int, default=RunConfig().z_dim)
    optim = p.add_argument_group("optimiser (the same for every method; unset flags keep the dataset's defaults, "
                                 "MNIST: Adam lr 1e-3 betas 0.9/0.999)")
    optim.add_argument("--optimizer-g", choices=("adam", "sgd"))
    optim.add_argument("--optimizer-d", choices=("adam", "sgd"))
    optim.add_argument("--lr", type=float, help="learning rate for both G and D")
    optim.add_argument("--lr-g", type=float)
    optim.add_argument("--lr-d", type=float)
    optim.add_argument("--beta1", type=float)
    optim.add_argument("--beta2", type=float)
    logs = p.add_argument_group("logging and checkpoints")
    logs.add_argument("--log-every", type=int, default=100, help="steps between trajectory rows")
    logs.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")
    logs.add_argument("--holdout", type=int, default=5000, help="training images held out for energy evaluation")
    scores = p.add_argument_group("end-of-run scores")
    scores.add_argument("--eval-n", type=int, default=RunConfig().eval_n,
                        help="samples scored with the MNIST-classifier metrics (default 10000; 0: off)")
    scores.add_argument("--inception-n", type=int,
                        help="samples scored with Inception IS/FID/KID (default: 10000 on GPU, off on CPU)")
    scores.add_argument("--inception-weights", default=None,
                        help="Inception weights file (default: $EBM_BENCH_INCEPTION_WEIGHTS, else downloaded)")


def _budget(args) -> Budget:
    if args.images is not None:
        return Budget("images", args.images)
    if args.seconds is not None:
        return Budget("seconds", args.seconds)
    return Budget("steps", args.steps if args.steps is not None else Budget().amount)


def _optim(args) -> OptimConfig | None:
    """None when no optimiser flag is given (the dataset's defaults apply), else those defaults overridden."""
    given = {"optimizer_g": args.optimizer_g, "optimizer_d": args.optimizer_d, "lr_g": args.lr_g or args.lr,
             "lr_d": args.lr_d or args.lr, "beta1": args.beta1, "beta2": args.beta2}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return None
    return dataclasses.replace(get_dataset(args.dataset).default_optim, **given)


def _methods(text: str | None) -> list[str]:
    return [m.strip() for m in (text or "").split(",") if m.strip()]


def _base_config(args) -> RunConfig:
    return RunConfig(
        dataset=args.dataset, budget=_budget(args), batch_size=args.batch_size, image_size=args.image_size,
        arch=args.arch, z_dim=args.z_dim,
        mlp=MLPConfig(args.n_layer_g, args.size_g, args.n_layer_d, args.size_d, args.dropout_d), optim=_optim(args),
        holdout=args.holdout, device=args.device, data_root=args.data_root, download=not args.no_download,
        out=args.out, log_every=args.log_every, checkpoint_every=args.checkpoint_every, eval_n=args.eval_n,
        inception_n=args.inception_n, inception_weights=args.inception_weights)


def _method_options(args) -> dict:
    options = dict(args.option)
    if args.margin is not None:
        options["margin"] = args.margin
    return options


def _cmd_run(args) -> int:
    for plugin in args.plugin:
        load_plugin(plugin)
    results = run(_methods(args.methods), args.seeds, base=_base_config(args), method_options=_method_options(args),
                  restart=args.restart, show_progress=not args.quiet)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2, default=str))
    return 0 if all(r.status == "finished" for r in results) else 1


def _cmd_list(args) -> int:
    for plugin in args.plugin:
        load_plugin(plugin)
    console = Console()
    console.print("[bold]methods[/bold]")
    for name, cls in available_methods().items():
        console.print(f"  {name:<12} {cls.description}", soft_wrap=True, highlight=False)
    console.print("[bold]datasets[/bold]")
    for name, info in DATASETS.items():
        console.print(f"  {name:<21} {info.description}", soft_wrap=True, highlight=False)
    console.print("[bold]sweep presets[/bold]")
    for name, preset in PRESETS.items():
        console.print(f"  {name:<20} {preset.description}", soft_wrap=True, highlight=False)
    return 0


def _add_sweep_parser(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="a grid of runs (or a paper preset), resumable, local or on Ray",
                              description="Expand a grid over config fields x methods x seeds and train every run "
                                          "not finished yet. Re-running resumes; diverged runs stay recorded.")
    p.add_argument("--preset", help=f"a named sweep: {', '.join(PRESETS)}")
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
    _add_config_arguments(p)
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args) -> int:
    from .sweep import sweep_main

    for plugin in args.plugin:
        load_plugin(plugin)
    return sweep_main(args, _base_config(args), _method_options(args), _methods(args.methods))


def _add_plot_parser(subparsers) -> None:
    p = subparsers.add_parser("plot", help="plots of run folders: trajectories, margin curve, histograms, samples")
    p.add_argument("runs", nargs="+", help="run folders, or folders of them")
    p.add_argument("--out", default="plots", help="output folder for PNG and SVG files (default: plots)")
    p.add_argument("--metrics", help="comma-separated record columns to plot, e.g. evaluation.i_prime")
    p.set_defaults(func=_cmd_plot)


def _cmd_plot(args) -> int:
    from .plots import plot_all

    for path in plot_all(args.runs, args.out, _methods(args.metrics)):
        print(path)
    return 0


FORMATS = ("rich", "markdown", "csv", "latex", "html")


def _add_leaderboard_parsers(subparsers) -> None:
    p = subparsers.add_parser("leaderboard", help="a ranked table of methods from run folders",
                              description="One row per method (and variant) per dataset and budget: mean, std "
                                          "and 95%% CI of each metric over seeds, seeds and diverged runs, size, "
                                          "speed, and the real-data reference row.")
    p.add_argument("runs", nargs="+", help="run folders, or folders of them")
    p.add_argument("--format", choices=FORMATS, default="rich")
    p.add_argument("--metrics", help="comma-separated metrics (default: every metric the records hold)")
    p.add_argument("--rank-by", help="metric to rank by, in its own direction (default: the first metric)")
    p.add_argument("--reference", default="auto",
                   help="real-data reference row: auto (MNIST train images scored like the runs), none")
    p.add_argument("--data-root", help="where MNIST is, for the reference row (default: as for `run`)")
    p.add_argument("--output", help="write to this file instead of stdout")
    p.set_defaults(func=_cmd_leaderboard)
    c = subparsers.add_parser("compare", help="two leaderboards side by side, with significance of differences",
                              description="Per method and metric: both means, B - A, and Welch's t-test over "
                                          "seeds. Refuses setups that differ in what changes the numbers.")
    c.add_argument("a", help="a leaderboard CSV, or a folder of runs")
    c.add_argument("b", help="a leaderboard CSV, or a folder of runs")
    c.add_argument("--force", action="store_true", help="compare even when the setups differ")
    c.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    c.add_argument("--format", choices=("rich", "markdown", "csv"), default="rich")
    c.set_defaults(func=_cmd_compare)


def _emit(text: str, output: str | None) -> None:
    if output:
        from pathlib import Path

        from .store import atomic_write_bytes

        atomic_write_bytes(Path(output), text.encode())
    else:
        sys.stdout.write(text)


def _print_rich(header: list[str], rows: list[list[str]], title: str, note: str = "") -> None:
    from rich.table import Table

    table = Table(title=title, caption=note or None)
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*[escape(cell) for cell in row])
    Console(width=max(160, Console().width)).print(table)


def _cmd_leaderboard(args) -> int:
    from .leaderboard import display_rows, render
    from .reporting import leaderboard_from_runs

    table = leaderboard_from_runs(args.runs, _methods(args.metrics), args.rank_by, args.reference, args.data_root)
    if args.format == "rich" and not args.output:
        _print_rich(*display_rows(table), title="ebm-bench leaderboard",
                    note="mean ± std [95% CI] over finished seeds")
    else:
        _emit(render(table, "markdown" if args.format == "rich" else args.format), args.output)
    return 0


def _cmd_compare(args) -> int:
    from .leaderboard import compare_tables, render
    from .reporting import load_table

    comparison, differences = compare_tables(load_table(args.a), load_table(args.b), args.force, args.alpha)
    for line in differences:
        Console(stderr=True).print(f"setup: {escape(line)}", highlight=False, soft_wrap=True)
    if args.format == "rich":
        header = list(comparison.columns)
        _print_rich(header, [[str(v) for v in row] for row in comparison.itertuples(index=False)],
                    title=f"B - A  (A = {args.a}, B = {args.b}; Welch's t-test, alpha {args.alpha})")
    elif args.format == "csv":
        _emit(render(comparison, "csv"), None)
    else:
        lines = ["| " + " | ".join(comparison.columns) + " |", "|" + "---|" * len(comparison.columns)]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in comparison.itertuples(index=False)]
        _emit("\n".join(lines) + "\n", None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebm-bench", description="Benchmark energy-based GANs under matched "
                                     "budgets: GAN, EBGAN, EBGAN-PT, BEGAN, MAGAN.")
    parser.add_argument("--version", action="version", version=f"ebm-bench {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(subparsers)
    _add_sweep_parser(subparsers)
    _add_plot_parser(subparsers)
    _add_leaderboard_parsers(subparsers)
    add_score_parser(subparsers)
    add_classifier_parser(subparsers)
    listing = subparsers.add_parser("list", help="show the registered methods and datasets")
    listing.add_argument("--plugin", action="append", default=[], metavar="FILE.py")
    listing.set_defaults(func=_cmd_list)
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
