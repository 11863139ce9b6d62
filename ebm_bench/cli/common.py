"""What the subcommands share: the run settings' arguments, their parsing into a RunConfig, and output helpers."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ebm_bench.config import Budget, MLPConfig, OptimConfig, RunConfig, parse_value
from ebm_bench.errors import ConfigError
from ebm_bench.registry import load_plugin
from ebm_bench.files import atomic_write_bytes


def int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 0,1,2; got {text!r}") from None


def option(text: str) -> tuple[str, object]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, e.g. gamma=0.7; got {text!r}")
    return name.strip(), parse_value(raw)


def add_config_arguments(p) -> None:
    """The settings every run of one invocation shares (run and sweep)."""
    p.add_argument("--dataset", default="mnist", help="dataset name (default: mnist)")
    p.add_argument("--data-root", help="where datasets live (default: $EBM_BENCH_DATA, then ~/.cache/ebm-bench/data)")
    p.add_argument("--no-download", action="store_true", help="never try to download missing data")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="budget in training steps (default: 2000)")
    budget.add_argument("--images", type=int, help="budget in real images seen")
    budget.add_argument("--seconds", type=float, help="budget in wall-clock seconds of training")
    p.add_argument("--seeds", type=int_list, default=[0], help="comma-separated seeds (default: 0)")
    p.add_argument("--out", default="runs", help="output directory for run folders (default: runs)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file registering extra methods (repeatable)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, help="image side (MNIST: 32 zero-padded, or 28)")
    p.add_argument("--margin", type=float, help="margin for methods that take one (default: dataset's, MNIST 10)")
    p.add_argument("-o", "--option", type=option, action="append", default=[], metavar="NAME=VALUE",
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


def budget_of(args) -> Budget:
    if args.images is not None:
        return Budget("images", args.images)
    if args.seconds is not None:
        return Budget("seconds", args.seconds)
    return Budget("steps", args.steps if args.steps is not None else Budget().amount)


def optim_of(args) -> OptimConfig | None:
    """None when no optimiser flag is given (the dataset's defaults apply), else those defaults overridden."""
    given = {"optimizer_g": args.optimizer_g, "optimizer_d": args.optimizer_d, "lr_g": args.lr_g or args.lr,
             "lr_d": args.lr_d or args.lr, "beta1": args.beta1, "beta2": args.beta2}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return None
    return dataclasses.replace(OptimConfig(), **given)


def method_list(text: str | None) -> list[str]:
    return [m.strip() for m in (text or "").split(",") if m.strip()]


def base_config(args) -> RunConfig:
    return RunConfig(
        dataset=args.dataset, budget=budget_of(args), batch_size=args.batch_size, image_size=args.image_size,
        arch=args.arch, z_dim=args.z_dim,
        mlp=MLPConfig(args.n_layer_g, args.size_g, args.n_layer_d, args.size_d, args.dropout_d), optim=optim_of(args),
        holdout=args.holdout, device=args.device, data_root=args.data_root, download=not args.no_download,
        out=args.out, log_every=args.log_every, checkpoint_every=args.checkpoint_every, eval_n=args.eval_n,
        inception_n=args.inception_n, inception_weights=args.inception_weights)


def method_options(args) -> dict:
    options = dict(args.option)
    if args.margin is not None:
        options["margin"] = args.margin
    return options


def emit(text: str, output: str | None) -> None:
    """`text` to the file `output` (atomically), or to stdout."""
    if not output:
        sys.stdout.write(text)
        return
    path = Path(output)
    if path.is_dir():
        raise ConfigError(f"--output {path} is a directory; name a file, e.g. --output {path / 'table.csv'}")
    try:
        atomic_write_bytes(path, text.encode())
    except OSError as err:
        raise ConfigError(f"cannot write --output {path}: {err.strerror}; choose a writable path") from None


def load_plugins(paths) -> None:
    for path in paths:
        load_plugin(path)


def print_rich(header: list[str], rows: list[list[str]], title: str, note: str = "") -> None:
    from rich.table import Table

    table = Table(title=title, caption=note or None)
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*[escape(cell) for cell in row])
    Console(width=max(160, Console().width)).print(table)


