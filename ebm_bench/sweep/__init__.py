"""Sweeps: a grid of runs (grid), where they train (executors), what a log file shows of them (progress), and the
command that ties them (sweep_main)."""

from __future__ import annotations

from pathlib import Path

from ebm_bench.config import preset_names
from ebm_bench.files import write_json
from ebm_bench.pack import describe_packs, pack_size, plan_packs
from ebm_bench.plots import plot_all

from .executors import Outcome, execute_local, execute_ray, run_pack_safely, run_safely
from .grid import (Plan, Preset, apply_setting, apply_settings, build_sweep, check_names, checked, expand, get_preset,
                   matched_configs, min_eval_n, parse_grid, plan_runs, resolve_defaults, setting_of)
from .progress import RunLines, parse_threads, thread_count, use_threads

__all__ = ["Outcome", "Plan", "Preset", "RunLines", "apply_setting", "apply_settings", "build_sweep", "check_names",
           "checked", "execute_local", "execute_ray", "expand", "get_preset", "matched_configs", "min_eval_n",
           "parse_grid", "parse_threads", "plan_runs", "preset_names", "resolve_defaults", "run_pack_safely",
           "run_safely", "setting_of", "sweep_main", "thread_count", "use_threads"]


def sweep_main(args, plan: Plan, name: str, source: str | None = None) -> int:
    """Print (`--dry-run`) or execute a planned sweep; `source` is its config file or preset, for the summary."""
    from rich.console import Console

    console = Console(stderr=True)
    configs, grid, methods, seeds = plan.configs, plan.grid, plan.methods, plan.seeds
    packs = plan_packs(configs, pack_size(getattr(args, "pack", 1), configs)) if configs else []
    if args.dry_run:  # every config is already typed and checked (plan_runs), so this validates the whole sweep
        import shutil
        import textwrap

        width = max(60, shutil.get_terminal_size().columns)
        i = 0
        for number, members in enumerate(packs, 1):
            for config in members:
                i += 1
                head = f"{i:>5}  pack {number:<4} {config.method:<10} seed {config.seed:<3} "
                point = "  ".join(f"{k}={setting_of(config, k)}" for k in grid)
                print("\n".join(textwrap.wrap(point, width - 1, initial_indent=head, subsequent_indent=" " * len(head),
                                               break_on_hyphens=False)) if point else head.rstrip())
        print(textwrap.fill(f"{len(configs)} runs ({plan.points} grid points x {len(methods)} method(s) x "
                            f"{len(seeds)} seed(s)); " + describe_packs(packs), width - 1))
        return 0

    count = [0]

    def report(outcome: Outcome) -> None:
        count[0] += 1
        point = " ".join(f"{k}={setting_of(outcome.config, k)}" for k in grid)
        console.print(f"[{count[0]}/{len(configs)}] {outcome.config.method} seed {outcome.config.seed} {point}: "
                      f"{outcome.status}" + (f" ({outcome.error.splitlines()[0]})" if outcome.error else ""),
                      highlight=False, soft_wrap=True)

    threads = getattr(args, "threads", "auto")
    if args.executor == "ray":  # auto: each task's CPUs (--cpus-per-run)
        outcomes = execute_ray(packs, args.address, args.cpus_per_run, args.gpus_per_run, on_done=report,
                               storage=getattr(args, "storage", None),
                               threads=None if threads == "auto" else thread_count(threads))
    else:
        outcomes = execute_local(packs, args.workers, on_done=report, threads=thread_count(threads, args.workers))
    summary = {"name": name, "preset": source, "methods": methods, "seeds": list(seeds), "grid": grid,
               "counts": {s: sum(o.status == s for o in outcomes) for s in ("finished", "diverged", "failed")},
               "runs": [{"run_id": o.run_id, "run_dir": o.run_dir, "method": o.config.method, "seed": o.config.seed,
                         "status": o.status, "error": o.error, "node": o.node, "trained_in": o.trained_in,
                         **{k: setting_of(o.config, k) for k in grid}}
                        for o in outcomes]}
    out = configs[0].out if configs else "runs"
    write_json(Path(out) / f"sweep-{name}.json", summary)
    console.print(f"sweep {name}: {summary['counts']}; summary in {out}/sweep-{name}.json", highlight=False)
    run_dirs = [o.run_dir for o in outcomes if o.run_dir]
    if run_dirs and not args.no_plots:
        for path in plot_all(run_dirs, Path(out) / f"plots-{name}"):
            console.print(f"plot: {path}", highlight=False)
    return 1 if summary["counts"]["failed"] else 0
