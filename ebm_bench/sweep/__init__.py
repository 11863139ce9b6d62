"""Sweeps: a grid of runs (grid), where they train (executors), what a log file shows of them (progress), and the
command that ties them (sweep_main)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ebm_bench.config import RunConfig, preset_names
from ebm_bench.files import write_json
from ebm_bench.pack import describe_packs, pack_size, plan_packs
from ebm_bench.plots import plot_all
from ebm_bench.record import check_out_dir
from ebm_bench.train import prepare

from .cost import (CALIBRATION_SHARE, SAFETY_SHARE, CostBook, PackWork, describe_seconds, parse_time_limit,
                   time_packs)
from .executors import (Outcome, Window, execute_local, execute_ray, execute_window, pack_works, run_pack_safely,
                        run_safely)
from .grid import (Plan, apply_setting, apply_settings, check_names, checked, expand,
                   matched_configs, min_eval_n, parse_grid, plan_runs, resolve_defaults, setting_of)
from .progress import RunLines, parse_threads, thread_count, use_threads

__all__ = ["Outcome", "PackWork", "Plan", "RunLines", "Window", "apply_setting", "apply_settings",
           "check_names", "checked", "execute_local", "execute_ray", "execute_window", "expand",
           "matched_configs", "min_eval_n", "pack_works", "parse_grid", "parse_threads",
           "parse_time_limit", "plan_runs", "preset_names", "resolve_defaults", "run_pack_safely", "run_safely",
           "setting_of", "sweep_main", "thread_count", "use_threads"]


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
    report = _reporter(console, plan)
    if args.executor == "ray":  # auto: each task's CPUs (--cpus-per-run)
        outcomes = execute_ray(packs, args.address, args.cpus_per_run, args.gpus_per_run, on_done=report,
                               storage=getattr(args, "storage", None),
                               threads=None if threads == "auto" else thread_count(threads))
    else:
        outcomes = execute_local(packs, args.workers, on_done=report, threads=thread_count(threads, args.workers))
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


def _reporter(console, plan: Plan) -> Callable[[Outcome], None]:
    count = [0]

    def report(outcome: Outcome) -> None:
        count[0] += 1
        point = " ".join(f"{k}={setting_of(outcome.config, k)}" for k in plan.grid)
        console.print(f"[{count[0]}/{len(plan.configs)}] {outcome.config.method} seed {outcome.config.seed} {point}: "
                      f"{outcome.status}" + (f" ({outcome.error.splitlines()[0]})" if outcome.error else ""),
                      highlight=False, soft_wrap=True)
    return report


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
    window = execute_window(works, deadline, margin_s, workers, slowdown, on_done=_reporter(console, plan),
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
