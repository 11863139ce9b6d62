"""`ebm-bench sweep`: a grid of runs (from a config file, a preset or flags), resumable, local or on Ray."""

from __future__ import annotations

from pathlib import Path

from ebm_bench.errors import ConfigError
from ebm_bench.pack import AUTO_PACK, parse_pack
from ebm_bench.sweep import sweep_main

from .common import add_config_arguments, add_grid_arguments, plan_of


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="a grid of runs (or a paper preset), resumable, local or on Ray",
                              description="Expand a grid over config fields x methods x seeds and train every run "
                                          "not finished yet. Re-running resumes; diverged runs stay recorded.")
    p.add_argument("--methods", help="comma-separated methods (default: the config file's)")
    add_grid_arguments(p)
    p.add_argument("--sample", type=int, help="a seeded random subset of K grid points")
    p.add_argument("--sample-seed", type=int, default=0,
                   help="the seed of --sample's subset (default 0): sub-grids sampled with different seeds draw "
                        "different points")
    p.add_argument("--dry-run", action="store_true", help="check every run's config, print the runs and exit")
    p.add_argument("--name", help="sweep name for its summary and plots (default: the config file's or 'sweep')")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in this process); on one GPU start "
                        "MPS first (nvidia-cuda-mps-control -d), or the processes take turns on it")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray CPUs per run")
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="Ray GPUs per run (fractions share a GPU)")
    p.add_argument("--storage", metavar="DIR",
                   help="with --executor ray: where the workers train, on a filesystem every node mounts at this "
                        "path; checkpoints there survive a lost node and a retried run resumes from them (default: "
                        "a temporary folder on each worker, removed after its run). Records always come back to "
                        "--out; checkpoints stay in DIR")
    p.add_argument("--pack", type=parse_pack, default="auto", metavar="K|auto",
                   help="train up to K same-shape runs (differing in seed, float method options, learning rates, "
                        f"dropout) as one stacked model (default auto: {AUTO_PACK['cpu']} on a CPU, "
                        f"{AUTO_PACK['cuda']} on a GPU; 1: each alone); --dry-run shows the packs")
    p.add_argument("--no-plots", action="store_true", help="skip the plots at the end")
    add_config_arguments(p, ("--config", "--preset"))  # --preset: the flag's older name, kept working
    p.set_defaults(func=command)


def command(args) -> int:
    if args.storage and args.executor != "ray":
        raise ConfigError(f"--storage {args.storage} is where Ray workers train; add --executor ray, or drop "
                          "--storage (local runs train in --out)")
    plan = plan_of(args)
    name = args.name or (Path(args.config).stem if args.config else "sweep")
    return sweep_main(args, plan, name, args.config)
