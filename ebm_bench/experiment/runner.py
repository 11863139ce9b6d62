"""`ebm-bench experiment run`: the declared runs trained through the sweep machinery (resumable: finished runs are
skipped, interrupted ones resume), the pilot first when a rule picks the budget from it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from ebm_bench.errors import ConfigError
from ebm_bench.files import atomic_write_bytes, read_json, write_json
from ebm_bench.record import CHECKPOINT, LOCK, RESULT
from ebm_bench.runs import existing_result
from ebm_bench.sweep import Plan

from .analysis import declared_budget
from .provenance import declaration
from .spec import Experiment, pilot_plans, plan_groups

LEFT_OUT = (CHECKPOINT, LOCK)  # a records folder keeps what a run recorded, not what resumes it


def copy_records(run_dirs: list[str], into: Path) -> int:
    """The ended runs' folders (every file but the checkpoint and the lock) into `into`, result.json last so that
    no reader takes half a run for one; runs already there are left as they are. Returns how many were copied."""
    copied = 0
    for run_dir in map(Path, run_dirs):
        target = into / run_dir.name
        if existing_result(run_dir) is None or (target / RESULT).is_file():
            continue
        files = [p for p in run_dir.rglob("*") if p.is_file() and p.name not in LEFT_OUT
                 and not p.name.endswith(".tmp")]
        for path in sorted(files, key=lambda p: p.name == RESULT):
            atomic_write_bytes(target / path.relative_to(run_dir), path.read_bytes())
        copied += 1
    return copied


# sweep(args, plan, name, source) -> exit code: how a planned group of runs is trained and reported (the CLI's
# `ebm-bench sweep`, ebm_bench.cli.sweep.sweep_main, handed in by `ebm-bench experiment run`)
Sweep = Callable[[Any, Plan, str, str], int]


def run_experiment(experiment: Experiment, args, machine: dict[str, Any], out: Path | None, sweep: Sweep) -> int:
    """Train the pilot (when a rule picks the budget), then every declared run, each group through `sweep`. `out`:
    where the runs train (None: the spec's records folder, and the pilot's); records trained elsewhere are copied
    into those folders."""
    source = str(experiment.path)
    code = 0
    if not args.dry_run:
        _note_declaration(experiment, out or experiment.records)
    if experiment.rule is not None:
        rule = experiment.rule
        # a pilot-only spec's runs are its runs: in `out` itself, as any experiment's (benchmarks/gpu.sh exports them)
        pilot_out = (out if experiment.pilot_only else out / "pilot") if out else rule.records
        for group, plan in pilot_plans(experiment, {**machine, "out": str(pilot_out)}):
            name = group.name if experiment.pilot_only else f"{experiment.name}-{group.name}"
            code = max(code, _sweep(sweep, args, plan, name, source, pilot_out, rule.records))
        try:
            picked = declared_budget(experiment, machine)
        except ConfigError:
            if not args.dry_run and getattr(args, "time_limit", None) is None:
                raise
            if not args.dry_run:  # the time limit ended before the pilot did: nothing else can start
                print("the pilot has not ended inside --time-limit; run the same command again to continue")
                return code
            print(f"budget: picked by rule {rule.rule} once the pilot has run"
                  + ("" if experiment.pilot_only else "; the main runs are listed with the pilot's budget"))
            budget = None
        else:
            print(f"budget: {picked.text}")
            budget = picked.budget
    else:
        budget = experiment.budget
    main_out = out or experiment.records
    for group, plan in plan_groups(experiment, {**machine, "out": str(main_out)}, budget):
        code = max(code, _sweep(sweep, args, plan, group.name, source, main_out, experiment.records))
    return code


def _note_declaration(experiment: Experiment, out: Path) -> None:
    """Say, and note in `out`/experiment-NAME.json, the commit that declared the spec before these runs train: a
    spec not committed (or changed since) cannot show that it came first, and its analysis will say so."""
    declared = declaration(experiment.path, [])
    if declared.commit is None or not declared.before:
        Console(stderr=True).print(f"warning: {experiment.path}: {declared.reason}; commit the spec before training "
                                   "for its analysis to read 'declared before the runs'", highlight=False,
                                   soft_wrap=True, markup=False)
    else:
        print(f"{experiment.path} declared in commit {declared.commit[:12]} ({declared.committed_at})")
    write_json(out / f"experiment-{experiment.name}.json",
               {"spec": str(experiment.path), "declared_commit": declared.commit,
                "committed_at": declared.committed_at, "clean": declared.before,
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def _sweep(sweep: Sweep, args, plan: Plan, name: str, source: str, out: Path, records: Path) -> int:
    """One group's runs through `sweep`, in `out`; their records copied into `records` when that is elsewhere
    (the runs of this sweep only, as its summary names them: `out` may hold others)."""
    code = sweep(args, plan, name, source)
    if not args.dry_run and out.resolve() != records.resolve():
        summary = read_json(out / f"sweep-{name}.json")
        copy_records([run["run_dir"] for run in summary["runs"] if run.get("run_dir")], records)
    return code
