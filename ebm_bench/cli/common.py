"""What the subcommands share: the run settings' arguments, their merging with a --config file into runs, and output
helpers."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from ebm_bench.config import (BUDGET_KINDS, MATMUL_PRECISIONS, MLPConfig, RunConfig, parse_value, preset_names,
                              read_config)
from ebm_bench.errors import ConfigError
from ebm_bench.files import atomic_write_bytes
from ebm_bench.registry import load_plugin
from ebm_bench.sweep import Plan, parse_grid, plan_runs
from ebm_bench.sweep.progress import MAX_AUTO_THREADS


def int_list(text: str) -> list[int]:
    """Seeds; an empty list (`--seeds ,`) is refused by `plan_of` in one line, not here: argparse would print its
    whole usage first."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2; got {text!r}") from None


def option(text: str) -> tuple[str, object]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, e.g. gamma=0.7; got {text!r}")
    return name.strip(), parse_value(raw)


class _Noted(argparse.Action):
    """argparse's `store` that also notes each flag as spelled (in `args.spelled`), so that a setting given twice in
    one command line is refused by `plan_of`: argparse keeps the last one silently."""

    def __call__(self, parser, namespace, values, option_string=None):
        value = self.const if self.nargs == 0 else values
        setattr(namespace, self.dest, value)
        text = ",".join(map(str, values)) if isinstance(values, list) else f"{values:g}" if isinstance(values, float) \
            else values
        spelled = getattr(namespace, "spelled", None) or []
        setattr(namespace, "spelled", [*spelled, (self.dest, option_string if self.nargs == 0 else
                                                   f"{option_string} {text}", value)])


class _NotedTrue(_Noted):  # store_true
    def __init__(self, option_strings, dest, default=False, required=False, help=None):
        super().__init__(option_strings, dest, nargs=0, const=True, default=default, required=required, help=help)


class _NotedFalse(_Noted):  # store_false
    def __init__(self, option_strings, dest, default=True, required=False, help=None):
        super().__init__(option_strings, dest, nargs=0, const=False, default=default, required=required, help=help)


def command_parser(subparsers, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand's parser whose value flags (and true/false flags) note how they were given (`_Noted`)."""
    p = subparsers.add_parser(name, **kwargs)
    for kind, action in ((None, _Noted), ("store", _Noted), ("store_true", _NotedTrue), ("store_false", _NotedFalse)):
        p.register("action", kind, action)
    return p


def add_threads_argument(p) -> None:
    p.add_argument("--threads", default="auto", metavar="N|auto",
                   help="torch threads of each training process; not part of a run's identity (default auto: the "
                        "CPUs this process may use, shared between its worker processes, 1 to "
                        f"{MAX_AUTO_THREADS}, at most $OMP_NUM_THREADS if set). On a machine busy with other work, "
                        "--threads 1: torch's one thread per core made training 17-23x slower there")


# Flags whose value is the setting of the same name (ebm_bench.sweep.apply_setting). Their argparse default is None,
# so that a flag not given leaves a --config file's value alone; the defaults come from RunConfig after merging.
FLAG_SETTINGS = ("dataset", "data_root", "out", "device", "batch_size", "image_size", "arch", "z_dim", "n_layer_g",
                 "size_g", "n_layer_d", "size_d", "dropout_d", "optimizer_g", "optimizer_d", "lr", "lr_g", "lr_d",
                 "beta1", "beta2", "log_every", "checkpoint_every", "holdout", "eval_n", "inception_n",
                 "inception_weights", "steps", "images", "seconds", "metrics", "matmul", "cuda_graphs",
                 "eval_every", "eval_every_n", "labels")


def add_config_arguments(p, config_flags: tuple[str, ...] = ("--config",)) -> None:
    """The settings every run of one invocation shares (run, sweep, config show)."""
    p.add_argument(*config_flags, dest="config", metavar="FILE.toml",
                   help=f"a config file or a shipped preset ({', '.join(preset_names())}); flags given here "
                        "override it")
    p.add_argument("--dataset", help="dataset name (default: mnist)")
    p.add_argument("--data-root", help="where datasets live (default: $EBM_BENCH_DATA, then ~/.cache/ebm-bench/data)")
    p.add_argument("--no-download", action="store_true", default=None, help="never try to download missing data")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="budget in training steps (default: 2000)")
    budget.add_argument("--images", type=int, help="budget in real images seen")
    budget.add_argument("--seconds", type=float, help="budget in wall-clock seconds of training")
    p.add_argument("--seeds", type=int_list, help="comma-separated seeds (default: 0)")
    p.add_argument("--out", help="output directory for run folders (default: runs)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--matmul", choices=MATMUL_PRECISIONS,
                   help="GPU matmul precision: float32 (default; comparable with CPU records) or tf32 (faster, "
                        "part of the run's identity)")
    p.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false", default=None,
                   help="on a GPU, launch every packed step eagerly instead of replaying it as a CUDA graph")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file registering extra methods (repeatable)")
    p.add_argument("--batch-size", type=int, help="(default: 64)")
    p.add_argument("--image-size", type=int, help="image side (MNIST: 32 zero-padded, or 28)")
    p.add_argument("--margin", type=float, help="margin for methods that take one (default: dataset's, MNIST 10)")
    p.add_argument("-o", "--option", type=option, action="append", default=[], metavar="NAME=VALUE",
                   help="a method option, e.g. -o gamma=0.7 -o pt_weight=0.1 (goes to methods that have it)")
    arch = p.add_argument_group("architecture (MNIST: the paper's MLPs, default its best EBGAN)")
    arch.add_argument("--arch", help="network family (default: the dataset's; MNIST: mlp)")
    defaults = MLPConfig()
    arch.add_argument("--n-layer-g", type=int, help=f"(default: {defaults.n_layer_g})")
    arch.add_argument("--size-g", type=int, help=f"(default: {defaults.size_g})")
    arch.add_argument("--n-layer-d", type=int, help=f"(default: {defaults.n_layer_d})")
    arch.add_argument("--size-d", type=int, help=f"(default: {defaults.size_d})")
    arch.add_argument("--dropout-d", action="store_true", default=None, help="dropout (p=0.5) in D")
    arch.add_argument("--z-dim", type=int, help=f"(default: {RunConfig().z_dim})")
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
    logs.add_argument("--log-every", type=int, help="steps between trajectory rows (default: 100)")
    logs.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default: 1000)")
    logs.add_argument("--holdout", type=int, help="training images held out for energy evaluation (default: 5000)")
    p.add_argument("--labels", type=int, metavar="N",
                   help="semi-supervised: N labelled training images, balanced over the classes and drawn by the "
                        "seed; each batch adds as many labelled images (datasets with labels: pi-mnist)")
    scores = p.add_argument_group("end-of-run scores")
    scores.add_argument("--eval-n", type=int, help="samples scored with the MNIST-classifier metrics "
                                                   f"(default {RunConfig().eval_n}; 0: off)")
    scores.add_argument("--inception-n", type=int,
                        help="samples scored with Inception IS/FID/KID (default: 10000 on GPU, off on CPU)")
    scores.add_argument("--inception-weights", default=None,
                        help="Inception weights file (default: $EBM_BENCH_INCEPTION_WEIGHTS, else downloaded)")
    scores.add_argument("--eval-every", type=int, metavar="STEPS",
                        help="also score every STEPS steps during training (I', classes covered, FID-MNIST, "
                             "precision, recall, D's energies) into evaluation.csv (default: 0, off)")
    scores.add_argument("--eval-every-n", type=int, metavar="N",
                        help="samples scored at each of those evaluations (default: 2000)")
    scores.add_argument("--metrics", type=lambda text: [m.strip() for m in text.split(",") if m.strip()],
                        help="comma-separated metrics to score (default: every registered metric the run can "
                             "supply inputs for; see `ebm-bench list`)")


def add_grid_arguments(p) -> None:
    """Sweep axes and fixed settings (sweep, config show)."""
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                   help="a grid axis over any config field or method option, e.g. margin=1,2,4 (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="fix a field for every run, after the config file and flags (e.g. --set size_g=800)")


def flag_settings(args) -> dict[str, object]:
    """The settings the command line gives, by name; a flag not given is absent (the config file's value or the
    default stands)."""
    given = {name: getattr(args, name) for name in FLAG_SETTINGS if getattr(args, name, None) is not None}
    if args.no_download:
        given["download"] = False
    return given


def method_list(text: str | None) -> list[str]:
    return [m.strip() for m in (text or "").split(",") if m.strip()]


def method_options(args) -> dict:
    options = dict(args.option)
    if args.margin is not None:
        options["margin"] = args.margin
    return options


def _spelled(args) -> list[tuple[str, str, list]]:
    """Every setting the command line gives, as (setting name, how it was spelled, its values)."""
    found = [("download" if dest == "no_download" else dest, text, value if isinstance(value, list) else [value])
             for dest, text, value in getattr(args, "spelled", None) or []]
    found += [(name, f"-o {name}={value}", [value]) for name, value in getattr(args, "option", [])]
    for flag in ("set", "grid"):
        for item in getattr(args, flag, []):
            name, _, values = item.partition("=")
            found.append((name.strip(), f"--{flag} {item}", [parse_value(v) for v in values.split(",")]))
    return found


def check_given_once(args) -> None:
    """One line for a setting given twice in one command line (which would win?), naming both, and for a number
    that is not finite (inf, nan: no setting trains with one), naming its flag."""
    first: dict[str, str] = {}
    for name, text, values in _spelled(args):
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ConfigError(f"{text}: {name} must be a finite number")
        key = "budget" if name in BUDGET_KINDS else name  # --steps 5 --set seconds=60: which budget?
        repeated_switch = text == first.get(key) and " " not in text  # --quiet --quiet: no value to choose from
        if key in first and not repeated_switch:
            what = "the budget is" if key == "budget" else f"{key} is"
            raise ConfigError(f"{what} given twice: {first[key]} and {text}; give it once")
        first.setdefault(key, text)


def plan_of(args, sweep: bool = True) -> Plan:
    """The runs the command line asks for: its --config file, overridden by its flags, then --set and --grid."""
    check_given_once(args)
    if args.seeds == []:  # `--seeds ,` would otherwise run nothing and exit 0
        raise ConfigError("--seeds names no seed; expected comma-separated integers like 0,1,2")
    load_plugins(args.plugin)  # before anything looks a method, dataset or architecture up
    file = read_config(args.config) if args.config else None
    if file and file.grid and not sweep:  # checked before expanding: a paper grid holds thousands of runs
        raise ConfigError(f"{args.config} has a [grid] ({', '.join(file.grid)}): it is a sweep; run it with "
                          f"`ebm-bench sweep --config {args.config}`")
    fixed = {name: values[0] for name, values in parse_grid(getattr(args, "set", []), "--set").items()}
    return plan_runs(file, method_list(args.methods), args.seeds or (), settings=flag_settings(args),
                     options=method_options(args), fixed=fixed, grid=parse_grid(getattr(args, "grid", [])),
                     sample=getattr(args, "sample", None), sample_seed=getattr(args, "sample_seed", 0))


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


def read_csv_table(path: Path, kind: str, write_one: str, text_columns: list[str] | tuple[str, ...],
                   numeric_columns: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """A `--table` CSV of `kind` (e.g. "probe"), or a ConfigError in one line saying why the file is not one and
    `write_one`, how to make one."""
    if not path.is_file():
        raise ConfigError(f"--table {path} does not exist; {write_one}")
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ConfigError(f"--table {path} is empty, not a {kind} table; {write_one}") from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise ConfigError(f"--table {path} is not a {kind} table: it does not read as CSV ({reason}); "
                          f"{write_one}") from None
    missing = [c for c in [*text_columns, *numeric_columns] if c not in table]
    if missing:
        raise ConfigError(f"--table {path} is not a {kind} table: it lacks the column(s) {', '.join(missing)}; "
                          f"{write_one}")
    text = [c for c in numeric_columns if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise ConfigError(f"--table {path} is not a {kind} table: its column(s) {', '.join(text)} hold text where "
                          f"numbers belong; {write_one}")
    if table.empty:
        raise ConfigError(f"--table {path} holds no row; {write_one}")
    return table
