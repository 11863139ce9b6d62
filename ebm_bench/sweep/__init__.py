"""Sweeps: a grid of runs (grid), where they train (executors), and the command that ties them (sweep_main)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ebm_bench.config import RunConfig, preset_names
from ebm_bench.plots import plot_all
from ebm_bench.files import write_json

from .executors import Outcome, execute_local, execute_ray, run_safely
from .grid import Preset, apply_setting, matched_configs, apply_settings, build_sweep, expand, get_preset, parse_grid, setting_of

__all__ = ["Outcome", "Preset", "apply_setting", "apply_settings", "build_sweep", "execute_local", "execute_ray",
           "expand", "get_preset", "matched_configs", "parse_grid", "preset_names", "run_safely", "setting_of", "sweep_main"]


def sweep_main(args, base: RunConfig, method_options: dict[str, Any], methods: Sequence[str]) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    configs, grid, methods = build_sweep(args.preset, methods, args.grid, args.set, args.seeds, base,
                                         method_options, args.sample)
    name = args.name or args.preset or "sweep"
    if args.dry_run:
        for i, config in enumerate(configs, 1):
            point = {k: setting_of(config, k) for k in grid}
            print(f"{i:>5}  {config.method:<10} seed {config.seed}  "
                  + "  ".join(f"{k}={v}" for k, v in point.items()))
        print(f"{len(configs)} runs ({len(configs) // max(1, len(methods) * len(args.seeds))} grid points x "
              f"{len(methods)} method(s) x {len(args.seeds)} seed(s))")
        return 0

    count = [0]

    def report(outcome: Outcome) -> None:
        count[0] += 1
        point = " ".join(f"{k}={setting_of(outcome.config, k)}" for k in grid)
        console.print(f"[{count[0]}/{len(configs)}] {outcome.config.method} seed {outcome.config.seed} {point}: "
                      f"{outcome.status}" + (f" ({outcome.error.splitlines()[0]})" if outcome.error else ""),
                      highlight=False, soft_wrap=True)

    if args.executor == "ray":
        outcomes = execute_ray(configs, args.address, args.cpus_per_run, args.gpus_per_run, on_done=report)
    else:
        outcomes = execute_local(configs, args.workers, on_done=report)
    summary = {"name": name, "preset": args.preset, "methods": methods, "seeds": list(args.seeds), "grid": grid,
               "counts": {s: sum(o.status == s for o in outcomes) for s in ("finished", "diverged", "failed")},
               "runs": [{"run_id": o.run_id, "run_dir": o.run_dir, "method": o.config.method, "seed": o.config.seed,
                         "status": o.status, "error": o.error, **{k: setting_of(o.config, k) for k in grid}}
                        for o in outcomes]}
    write_json(Path(base.out) / f"sweep-{name}.json", summary)
    console.print(f"sweep {name}: {summary['counts']}; summary in {base.out}/sweep-{name}.json", highlight=False)
    run_dirs = [o.run_dir for o in outcomes if o.run_dir]
    if run_dirs and not args.no_plots:
        for path in plot_all(run_dirs, Path(base.out) / f"plots-{name}"):
            console.print(f"plot: {path}", highlight=False)
    return 1 if summary["counts"]["failed"] else 0
