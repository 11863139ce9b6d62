"""A run folder's life: written by one process at a time, resumed where it stopped, recorded; and read back.

<out>/<run-id>/
    config.json       the resolved configuration (method options included); its canonical hash names the folder
    manifest.json     versions, git commit, data hash, seed, device, sample counts
    trajectory.csv    the energy trajectory, one row per logging interval
    samples.png       the final sample grid
    checkpoint.pt     G, D, optimisers, RNG states, method state (at the end and every K steps)
    result.json       status (running / finished / diverged), budget used, wall time, steps/s, parameter counts,
                      evaluation and its provenance
    .lock             flock'ed by the process writing the run (its pid inside); the OS releases it when that
                      process dies, so a killed run never leaves a stale lock
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .config import RunConfig
from .errors import ConfigError, EbmBenchError
from .evaluate import QualityLog, check_ready, evaluate_runs, quality_summary
from .files import (
    CHECKPOINT,
    CONFIG,
    LOCK,
    MANIFEST,
    RESULT,
    SCHEMA_VERSION,
    TRAJECTORY,
    corrupt_file_error,
    load_checkpoint,
    read_json_object,
    read_result,
    write_json,
)
from .loop import Loop, PreparedRun, RunResult, RunStart, RunState
from .pack import PackedStep, uses_cuda_graphs
from .train import SoloStep, prepare


class RunLocked(EbmBenchError):
    """Another live process is writing this run: the caller skips it (it is that process's run)."""

    def __init__(self, run_id: str, run_dir: Path, pid: str):  # pid "": the holder has not written it yet
        super().__init__(f"run {run_id} is being written by " + (f"process {pid}" if pid else "another process"))
        self.run_id, self.run_dir, self.pid = run_id, run_dir, pid


@contextmanager
def run_lock(run_dir: Path, run_id: str) -> Iterator[None]:
    """Hold an exclusive flock on `<run>/.lock` while this process writes the run, or raise RunLocked.

    The lock file is never deleted: deleting it while another process waits to open it would let two
    processes lock two different files. flock, not a pid file, so that a killed process holds nothing.
    Neither the run folder nor its lock may be a symbolic link: writing through one writes outside --out.
    """
    check_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as err:
        if lock.is_symlink():
            raise ConfigError(f"{lock} is a symbolic link; a run folder's lock never is, and ebm-bench does not "
                              "write through links: delete it and run again") from None
        if lock.is_dir():
            raise ConfigError(f"{lock} is a folder, not a run's lock file: delete it and run again") from None
        raise ConfigError(f"cannot open {lock}: {err.strerror}; check the run folder's permissions") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            raise RunLocked(run_id, run_dir, holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def check_run_dir(run_dir: Path) -> None:
    """A run folder ebm-bench may write and clear: a folder of its own (or none yet), never a link to one."""
    if run_dir.is_symlink():
        raise ConfigError(f"{run_dir} is a symbolic link; ebm-bench writes and clears run folders only inside --out, "
                          "never through links: delete the link (or choose another --out) and run again")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file where this run's folder goes: delete it (or choose another --out) "
                          "and run again")


def check_out_dir(out: str | Path) -> None:
    """Fail before any data loads or training when runs cannot be written under --out: a real write probe."""
    if not str(out).strip():  # Path("") is ".": an empty --out would quietly mean the current folder
        raise ConfigError("--out is empty; pass the folder for the run folders (e.g. --out runs)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a directory")
    file_above = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if file_above is not None:
        raise ConfigError(f"--out {out} is inside {file_above}, which is a file; pass a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    except PermissionError:
        raise ConfigError(f"cannot write to --out {out}: permission denied; choose a writable directory") from None
    except OSError as err:
        raise ConfigError(f"cannot write to --out {out}: {err.strerror}; choose a writable directory") from None


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


def _clear(run_dir: Path) -> None:
    """Everything of a run but its lock, which this process holds; links are removed, never followed."""
    check_run_dir(run_dir)
    for path in run_dir.iterdir():
        if path.name == LOCK:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


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
            _clear(run.run_dir)
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


def _checkpoint_step(run_dir: Path) -> int:
    """The step a run would resume from (0: none); an unreadable checkpoint fails later, with its own message."""
    if not (run_dir / CHECKPOINT).exists():
        return 0
    try:
        return int(load_checkpoint(run_dir / CHECKPOINT, "cpu")["result"]["steps"])
    except (EbmBenchError, KeyError, TypeError, ValueError):  # the trainer's resume says what is wrong with it
        return 0


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
                _clear(run.run_dir)
            elif (stored := existing_result(run.run_dir)) is not None:
                results[i] = stored
                continue
            pending.append(i)
        by_step: dict[int, list[int]] = {}
        for i in pending:
            by_step.setdefault(_checkpoint_step(runs[i].run_dir), []).append(i)
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


# -- reading records back ----------------------------------------------------------------------------------------
def find_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders (holding result.json) among `paths` and anywhere below them, sorted."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise ConfigError(f"no such run folder: {path}")
        if (path / RESULT).is_file():
            found.add(path)
        found.update(p.parent for p in path.rglob(RESULT))
    return sorted(found)


def _flatten(prefix: str, data: dict) -> dict:
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(f"{name}.", value))
        else:
            flat[name] = value
    return flat


def load_record(run_dir: Path) -> dict:
    """One run as a flat row; a record that is not one raises UnreadableRecord (a ValueError, like a truncated
    file's), one line naming the file."""
    result = read_result(run_dir / RESULT)
    config = read_json_object(run_dir / CONFIG)
    row = _flatten("config.", config) | _flatten("", {k: v for k, v in result.items() if k != "final"})
    row |= _flatten("final.", result.get("final", {}))
    if (run_dir / MANIFEST).is_file():
        row |= _flatten("manifest.", read_json_object(run_dir / MANIFEST))
    row["run_dir"] = str(run_dir)
    return row


def load_records(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run: `config.*` (resolved config), result fields, `evaluation.*`, `final.*` (last log row)."""
    return pd.DataFrame([load_record(d) for d in find_run_dirs(paths)])


def load_trajectory(run_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / TRAJECTORY)
