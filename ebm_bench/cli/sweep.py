"""`ebm-bench sweep`: a grid of runs (from a config file, a preset or flags), resumable, local or on Ray."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ebm_bench.config import RunConfig
from ebm_bench.errors import ConfigError
from ebm_bench.files import write_json
from ebm_bench.pack import AUTO_PACK, describe_packs, pack_size, parse_pack, plan_packs
from ebm_bench.plots import plot_all
from ebm_bench.record import check_out_dir
from ebm_bench.sweep import (CALIBRATION_SHARE, SAFETY_SHARE, CostBook, Local, Outcome, PackWork, Plan, Progress, Ray,
                             describe_seconds, execute, execute_window, pack_works, parse_threads, parse_time_limit,
                             setting_of, thread_count, time_packs, use_threads)
from ebm_bench.sweep.executors import check_resources
from ebm_bench.train import prepare

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


def sweep_main(args, plan: Plan, name: str, source: str | None = None) -> int:
    """Print (`--dry-run`) or execute a planned sweep; `source` is its config file or preset, for the summary.
    With `args.time_limit` (a deadline, `parse_time_limit`), only the packs predicted to end before it train."""
    from rich.console import Console

    console = Console(stderr=True)
    configs = plan.configs
    packs = plan_packs(configs, pack_size(getattr(args, "pack", 1), configs)) if configs else []
    deadline = getattr(args, "time_limit", None)
    if args.dry_run:  # every config is already typed and checked (plan_runs), so this validates the whole sweep
        _print_runs(plan, packs)
        return 0 if deadline is None or not configs else _in_window(args, plan, packs, name, source, console)
    if deadline is not None:
        return _in_window(args, plan, packs, name, source, console)
    threads = getattr(args, "threads", "auto")
    if args.executor == "ray":  # auto: each task's CPUs (--cpus-per-run)
        executor: Local | Ray = Ray(args.address, args.cpus_per_run, args.gpus_per_run, getattr(args, "storage", None),
                                    None if threads == "auto" else thread_count(threads))
    else:
        executor = Local(args.workers, thread_count(threads, args.workers))
    outcomes = execute(packs, executor, _Reporter(console, plan))
    summary = _summary(plan, name, source, outcomes)
    return _finish(args, plan, name, summary, outcomes, console)


def _print_runs(plan: Plan, packs: list[list[RunConfig]]) -> None:
    import shutil
    import textwrap

    width = max(60, shutil.get_terminal_size().columns)
    i = 0
    for number, members in enumerate(packs, 1):
        for config in members:
            i += 1
            head = f"{i:>5}  pack {number:<4} {config.method:<10} seed {config.seed:<3} "
            point = "  ".join(f"{k}={setting_of(config, k)}" for k in plan.grid)
            print("\n".join(textwrap.wrap(point, width - 1, initial_indent=head, subsequent_indent=" " * len(head),
                                           break_on_hyphens=False)) if point else head.rstrip())
    print(textwrap.fill(f"{len(plan.configs)} runs ({plan.points} grid points x {len(plan.methods)} method(s) x "
                        f"{len(plan.seeds)} seed(s)); " + describe_packs(packs), width - 1))


class _Reporter(Progress):
    """A sweep's line per run as its pack ends, `[k/N] method seed S point: status`, beside each run's own lines."""

    def __init__(self, console, plan: Plan):
        super().__init__(console)
        self.plan, self.count = plan, 0

    def done(self, outcome: Outcome) -> None:
        self.count += 1
        point = " ".join(f"{k}={setting_of(outcome.config, k)}" for k in self.plan.grid)
        self.console.print(f"[{self.count}/{len(self.plan.configs)}] {outcome.config.method} seed "
                           f"{outcome.config.seed} {point}: {outcome.status}"
                           + (f" ({outcome.error.splitlines()[0]})" if outcome.error else ""),
                           highlight=False, soft_wrap=True)


def _summary(plan: Plan, name: str, source: str | None, outcomes: list[Outcome]) -> dict[str, Any]:
    return {"name": name, "preset": source, "methods": plan.methods, "seeds": list(plan.seeds), "grid": plan.grid,
            "counts": {s: sum(o.status == s for o in outcomes) for s in ("finished", "diverged", "failed")},
            "runs": [{"run_id": o.run_id, "run_dir": o.run_dir, "method": o.config.method, "seed": o.config.seed,
                      "status": o.status, "error": o.error, "node": o.node, "trained_in": o.trained_in,
                      **{k: setting_of(o.config, k) for k in plan.grid}}
                     for o in outcomes]}


def _finish(args, plan: Plan, name: str, summary: dict[str, Any], outcomes: list[Outcome], console) -> int:
    out = plan.configs[0].out if plan.configs else "runs"
    write_json(Path(out) / f"sweep-{name}.json", summary)
    console.print(f"sweep {name}: {summary['counts']}; summary in {out}/sweep-{name}.json", highlight=False)
    run_dirs = [o.run_dir for o in outcomes if o.run_dir]
    if run_dirs and not args.no_plots:
        for path in plot_all(run_dirs, Path(out) / f"plots-{name}"):
            console.print(f"plot: {path}", highlight=False)
    return 1 if summary["counts"]["failed"] else 0


def _in_window(args, plan: Plan, packs: list[list[RunConfig]], name: str, source: str | None, console) -> int:
    """--time-limit: time the shapes not timed on this device yet, then train (or, with --dry-run, show) the packs
    predicted to end inside the limit, and say what is left."""
    started, deadline = time.time(), args.time_limit
    limit_s = max(0.0, deadline - started)
    margin_s = SAFETY_SHARE * limit_s
    workers = args.workers
    threads = thread_count(getattr(args, "threads", "auto"), workers)
    for out in sorted({c.out for c in plan.configs}):
        check_out_dir(out)
    use_threads(threads)  # shapes are timed in this process, with the threads each worker trains with
    works = pack_works(packs)
    if any(w.left for w in works):  # a process loads a dataset once: neither a timing nor a pack pays it here
        try:
            prepare(next(w for w in works if w.left).left[0].config)
        except Exception:  # noqa: BLE001 (its runs fail the same way, and are recorded as failed)
            pass
    book = CostBook()
    timed = time_packs(works, book, threads, CALIBRATION_SHARE * limit_s,
                       say=lambda line: console.print(line, highlight=False, soft_wrap=True))
    for warning in book.warnings:
        console.print(f"warning: {warning}", highlight=False, soft_wrap=True)
    slowdown = book.slowdown(plan.configs[0], workers)
    if args.dry_run:
        # from the start: the shapes timed just now are kept, so the same command without --dry-run will not time them
        print(_window_plan(works, started, deadline, margin_s, limit_s, workers, slowdown))
        return 0
    window = execute_window(works, deadline, margin_s, workers, slowdown, on_done=_Reporter(console, plan).done,
                            threads=threads)
    if workers > 1 and window.ran:
        book.put_slowdown(plan.configs[0], workers, window.slowdown)
    rest = [w.predicted_s for w in window.left if w.predicted_s is not None]
    rest_s = sum(rest) * window.slowdown / workers
    summary = _summary(plan, name, source, window.outcomes)
    left_runs = sum(len(w.left) for w in window.left)
    summary["counts"]["left"] = left_runs
    summary["time_limit"] = {
        "limit_s": round(limit_s, 1), "margin_s": round(margin_s, 1), "workers": workers, "shapes_timed": timed,
        "took_s": round(time.time() - started, 1), "slowdown": round(window.slowdown, 3),
        "packs": [{"runs": len(w.left), "predicted_s": round(p, 2), "took_s": round(t, 2)}
                  for w, p, t in window.ran],
        "left_packs": len(window.left), "left_runs": left_runs, "untimed_packs": len(window.left) - len(rest),
        "rest_s": round(rest_s, 1)}
    status = _finish(args, plan, name, summary, window.outcomes, console)
    print(_window_line(window, len(plan.configs), rest_s, len(window.left) - len(rest)))
    return status


def _window_line(window, total: int, rest_s: float, untimed: int) -> str:
    """'412 of 1,024 runs done; the rest need about 14 min here; run the same command again to continue'."""
    done = sum(o.status in ("finished", "diverged") for o in window.outcomes)
    failed = sum(o.status == "failed" for o in window.outcomes)
    line = f"{done:,} of {total:,} runs done"
    if failed:
        line += f"; {failed:,} failed (see the sweep's summary)"
    if window.left:
        untimed_text = f"{untimed:,} pack(s) of shapes not timed here yet"
        need = (f"about {describe_seconds(rest_s)} here" + (f", plus {untimed_text}" if untimed else "")
                if untimed < len(window.left) else f"more time ({untimed_text})")
        line += f"; the rest need {need}; run the same command again to continue"
    return line


def _window_plan(works: list[PackWork], now: float, deadline: float, margin_s: float, limit_s: float, workers: int,
                 slowdown: float) -> str:
    """The packs --time-limit would start (a simulation of `execute_window` with the predicted times)."""
    slots = [now] * workers
    queue = [w for w in works if w.left]
    starts: dict[int, float] = {}
    while True:
        slot = min(range(workers), key=lambda k: slots[k])
        fit = next((w for w in queue if w.predicted_s is not None
                    and slots[slot] + w.predicted_s * slowdown <= deadline - margin_s), None)
        if fit is None:
            break
        queue.remove(fit)
        starts[id(fit)] = slots[slot] - now
        slots[slot] += fit.predicted_s * slowdown
    lines = []
    for number, work in enumerate(works, 1):
        if not work.left:
            continue
        what = f"pack {number}: {len(work.left)} run(s) to train"
        if work.predicted_s is None:
            lines.append(f"{what}, " + (work.note or "not timed on this device yet") + ": not started")
            continue
        predicted = f"{what}, predicted {describe_seconds(work.predicted_s * slowdown)}"
        note = f" ({work.note})" if work.note else ""
        lines.append(f"{predicted}: starts at +{describe_seconds(starts[id(work)])}{note}" if id(work) in starts
                     else f"{predicted}: does not fit{note}")
    fitting = [w for w in works if id(w) in starts]
    left = list(queue)
    if not fitting and not left:
        return "--time-limit: every run of this sweep has ended; nothing to train"
    rest_s = sum(w.predicted_s for w in left if w.predicted_s is not None) * slowdown / workers
    ends = max(slots) - now if fitting else 0.0
    lines.append(f"--time-limit: {len(fitting)} of {len(fitting) + len(left)} pack(s) with runs to train fit "
                 f"({sum(len(w.left) for w in fitting)} runs), predicted to end {describe_seconds(ends)} after the "
                 f"start, inside {describe_seconds(max(0.0, deadline - now - margin_s))} ({describe_seconds(limit_s)} "
                 f"less a {SAFETY_SHARE:.0%} margin)" + (f"; the rest need about {describe_seconds(rest_s)} here"
                                                         if left else ""))
    return "\n".join(lines)
