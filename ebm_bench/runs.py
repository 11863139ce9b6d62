"""A run's life: prepared, trained by one process at a time (solo or in a pack), resumed where it stopped,
evaluated and recorded. The run folder's layout and its readers are ebm_bench.record's.
"""

from __future__ import annotations

import dataclasses
import platform
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig
from .evaluate import QualityLog, check_ready, evaluate_runs, quality_summary
from .files import write_json
from .loop import Loop, PreparedRun, RunResult, RunStart, RunState
from .pack import PackedStep, uses_cuda_graphs
from .record import (CONFIG, MANIFEST, RESULT, SCHEMA_VERSION, RunLocked, check_out_dir, checkpoint_step, clear_run,
                     corrupt_file_error, read_result, run_lock)
from .train import SoloStep, prepare


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the ebm-bench source tree, when it is a git checkout (with '+dirty' if it has changes)."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def build_manifest(*, seed: int, device: torch.device, data_sha256: str, n_train: int, n_holdout: int,
                   dataset: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {name: _package_version(name) for name in
                     ("ebm-bench", "torch", "torchvision", "torch-fidelity", "numpy", "pandas")}
                    | {"python": sys.version.split()[0]},
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "torch_threads": torch.get_num_threads(),
        "seed": seed,
        "dataset": dataset,
        "data_sha256": data_sha256,
        "samples": {"train": n_train, "holdout": n_holdout},
    }


def write_run_header(run: PreparedRun, execution: dict[str, Any] | None = None) -> None:
    """config.json and manifest.json, written before training starts. `execution` says how the run trained
    (alone, or packed with which runs): not part of its config, since it does not change what the run is."""
    write_json(run.run_dir / CONFIG, run.resolved)
    if (run.run_dir / MANIFEST).exists():  # a resumed run keeps the manifest of its start
        return
    write_json(run.run_dir / MANIFEST, build_manifest(
        seed=run.config.seed, device=run.device, data_sha256=run.data.sha256, n_train=run.data.n_train,
        n_holdout=len(run.data.holdout), dataset=run.config.dataset)
        | {"run_id": run.run_id, "execution": execution or {"pack_size": 1}})


def existing_result(run_dir: Path) -> RunResult | None:
    """The stored result of a run that already ended (finished or diverged), else None."""
    path = run_dir / RESULT
    if not path.exists():
        return None
    stored = read_result(path)
    try:
        result = RunResult(**stored)
    except TypeError as err:  # fields a result does not have
        raise corrupt_file_error(path, err) from None
    result.run_dir = str(run_dir)  # where the record is now: records travel (`records import`), folders move
    return result if result.status in ("finished", "diverged") else None


def train_one(config: RunConfig, restart: bool = False, on_log: Callable[[dict], None] | None = None,
              on_start: Callable[[RunStart], None] | None = None) -> RunResult:
    """Train one run to its budget and evaluate it. A finished run is returned as stored; an interrupted one
    resumes from its last checkpoint. Raises RunLocked when another live process is writing the run."""
    check_out_dir(config.out)
    run = prepare(config)
    if not restart and (stored := existing_result(run.run_dir)) is not None:
        return stored  # an ended run is only read: no lock needed
    check_ready(run)
    with run_lock(run.run_dir, run.run_id):
        if restart:
            clear_run(run.run_dir)
        elif (stored := existing_result(run.run_dir)) is not None:
            return stored  # another process ended it while this one prepared
        write_run_header(run)
        return _evaluated(run, Loop([RunState(run, on_log, on_start)], SoloStep, _quality_log([run])).train()[0])


def _quality_log(runs: list[PreparedRun]) -> QualityLog | None:
    return QualityLog(runs) if runs[0].config.eval_every else None


def _evaluated(run: PreparedRun, result: RunResult) -> RunResult:
    return _evaluated_all([run], [result])[0]


def _evaluated_all(runs: list[PreparedRun], results: list[RunResult]) -> list[RunResult]:
    """Evaluate the runs that did not diverge, together (one classifier pass for a pack), and record them."""
    alive = [k for k, result in enumerate(results) if result.status != "diverged"]
    for k, (evaluation, provenance) in zip(alive, evaluate_runs([runs[k] for k in alive])):
        results[k].evaluation, results[k].evaluation_provenance = evaluation, provenance
        results[k].quality = quality_summary(runs[k].run_dir)
        results[k].status = "finished"
        write_json(runs[k].run_dir / RESULT, dataclasses.asdict(results[k]))
    return results


# progress(i) -> (on_log, on_start) for configs[i]
Progress = Callable[[int], "tuple[Callable[[dict], None] | None, Callable[[RunStart], None] | None]"]


def train_pack(configs: list[RunConfig], restart: bool = False, progress: Progress | None = None
               ) -> list[RunResult | RunLocked]:
    """Train runs that share a pack key as one pack (ebm_bench.pack), each recorded exactly as `train_one` records
    it; one entry per config, in order: its result, or RunLocked when another process is writing it.

    Finished runs are returned as stored and the rest train; runs resuming from different checkpoint steps train
    as separate packs. A pack of one trains solo.
    """
    for out in sorted({c.out for c in configs}):
        check_out_dir(out)
    runs = [prepare(config) for config in configs]
    results: list[RunResult | RunLocked | None] = [None] * len(runs)
    with ExitStack() as locks:
        pending = []
        for i, run in enumerate(runs):
            if not restart and (stored := existing_result(run.run_dir)) is not None:
                results[i] = stored
                continue
            try:
                locks.enter_context(run_lock(run.run_dir, run.run_id))
            except RunLocked as err:
                results[i] = err
                continue
            if restart:
                clear_run(run.run_dir)
            elif (stored := existing_result(run.run_dir)) is not None:
                results[i] = stored
                continue
            pending.append(i)
        by_step: dict[int, list[int]] = {}
        for i in pending:
            by_step.setdefault(checkpoint_step(runs[i].run_dir), []).append(i)
        for i in pending:
            check_ready(runs[i])
        for group in by_step.values():
            members = [runs[i] for i in group]
            graphs = uses_cuda_graphs(members[0])
            for k, run in enumerate(members):
                write_run_header(run, {"pack_size": len(members), "pack_index": k,
                                       "pack_runs": [m.run_id for m in members], "cuda_graphs": graphs})
            callbacks = [progress(i) if progress else (None, None) for i in group]
            states = [RunState(run, on_log, on_start) for run, (on_log, on_start) in zip(members, callbacks)]
            step = SoloStep if len(members) == 1 and not graphs else PackedStep  # a lone run on a GPU: replayed
            trained = Loop(states, step, _quality_log(members)).train()
            for i, result in zip(group, _evaluated_all(members, trained)):
                results[i] = result
    return results  # type: ignore[return-value]










