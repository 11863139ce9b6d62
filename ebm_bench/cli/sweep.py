"""`ebm-bench sweep`: a grid of runs (from a config file, a preset or flags), resumable, local or on Ray."""

from __future__ import annotations

from pathlib import Path

from ebm_bench.errors import ConfigError
from ebm_bench.pack import AUTO_PACK, parse_pack
from ebm_bench.sweep import parse_threads, parse_time_limit, sweep_main
from ebm_bench.sweep.executors import check_resources

from .common import add_config_arguments, add_grid_arguments, add_threads_argument, command_parser, plan_of

RAY_FLAGS = {"address": None, "cpus_per_run": 1.0, "gpus_per_run": 0.0}  # and their defaults under --executor ray


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "sweep", help="a grid of runs (or a paper preset), resumable, local or on Ray",
                       description="Expand a grid over config fields x methods x seeds and train every run not "
                                   "finished yet. Re-running resumes; diverged runs stay recorded.")
    p.add_argument("--methods", help="comma-separated methods (default: the config file's)")
    add_grid_arguments(p)
    p.add_argument("--sample", type=int, help="a seeded random subset of K grid points")
    p.add_argument("--sample-seed", type=int, default=0,
                   help="the seed of --sample's subset (default 0): sub-grids sampled with different seeds draw "
                        "different points")
    p.add_argument("--dry-run", action="store_true",
                   help="check every run's config, print the runs and exit; with --time-limit, also which packs "
                        "would start and their predicted times (timing the shapes not timed on this device yet)")
    p.add_argument("--time-limit", metavar="DURATION|@T",
                   help="train only the packs predicted to end inside this time (9m, 540s, 1.5h; or @T, a deadline "
                        "in Unix seconds shared by several sweeps), on costs timed on this device and kept in "
                        "<out>/.cost-<device>.json; a pack that would not finish is not started. Ends with what is "
                        "done and what the rest need; the same command again continues")
    p.add_argument("--name", help="sweep name for its summary and plots (default: the config file's or 'sweep')")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=1,
                   help="local worker processes (default 1: in this process); on one GPU start MPS first "
                        "(nvidia-cuda-mps-control -d), or the processes take turns on it")
    p.add_argument("--address", help="Ray cluster address, host:port (default: start a local Ray)")
    p.add_argument("--cpus-per-run", type=float, help="Ray CPUs per run (default 1)")
    p.add_argument("--gpus-per-run", type=float, help="Ray GPUs per run (default 0; fractions share a GPU)")
    p.add_argument("--storage", metavar="DIR",
                   help="with --executor ray: where the workers train, on a filesystem every node mounts at this "
                        "path; checkpoints there survive a lost node and a retried run resumes from them (default: "
                        "a temporary folder on each worker, removed after its run). Records always come back to "
                        "--out; checkpoints stay in DIR")
    p.add_argument("--pack", default="auto", metavar="K|auto",  # parsed in `command`: one line, not usage
                   help="train up to K same-shape runs (differing in seed, float method options, learning rates, "
                        f"dropout) as one stacked model (default auto: {AUTO_PACK['cpu']} on a CPU, "
                        f"{AUTO_PACK['cuda']} on a GPU; 1: each alone); --dry-run shows the packs")
    add_threads_argument(p)
    p.add_argument("--no-plots", action="store_true", help="skip the plots at the end")
    add_config_arguments(p, ("--config", "--preset"))  # --preset: the flag's older name, kept working
    p.set_defaults(func=command)


def command(args) -> int:
    if args.storage and args.executor != "ray":
        raise ConfigError(f"--storage {args.storage} is where Ray workers train; add --executor ray, or drop "
                          "--storage (local runs train in --out)")
    if args.executor != "ray" and (given := [name for name in RAY_FLAGS if getattr(args, name) is not None]):
        flags = " and ".join(f"--{name.replace('_', '-')}" for name in given)
        raise ConfigError(f"{flags} {'is' if len(given) == 1 else 'are'} for Ray; add --executor ray, or drop "
                          f"{'it' if len(given) == 1 else 'them'} (local runs use --workers)")
    for name, default in RAY_FLAGS.items():
        setattr(args, name, default if getattr(args, name) is None else getattr(args, name))
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1 (1: train in this process), got {args.workers}")
    check_resources(args.cpus_per_run, args.gpus_per_run)
    if args.time_limit is not None:  # the limit counts from here: planning and timing shapes are part of it
        if args.executor == "ray":
            raise ConfigError("--time-limit works with the local executor (this machine's device, timed here); "
                              "drop --executor ray, or drop --time-limit")
        args.time_limit = parse_time_limit(args.time_limit)
    args.pack, args.threads = parse_pack(args.pack), parse_threads(args.threads)
    plan = plan_of(args)
    name = args.name or (Path(args.config).stem if args.config else "sweep")
    return sweep_main(args, plan, name, args.config)
