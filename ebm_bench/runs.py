"""A run folder's life: written by one process at a time, resumed where it stopped, recorded; and read back.

<out>/<run-id>/
    config.json       the resolved configuration (method options included); its canonical hash names the folder
    manifest.json     versions, git commit, data hash, seed, device, sample counts
    trajectory.csv    the energy trajectory, one row per logging interval
    samples.png       the final sample grid
    checkpoint.pt     G, D, optimisers, RNG states, method state (at the end and every K steps)
    result.json       status (running / finished / diverged), budget used, wall time, steps/s, parameter counts,
                      evaluation and its provenance
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import torch

from .config import RunConfig
from .errors import ConfigError
from .evaluate import evaluate
from .files import CONFIG, MANIFEST, RESULT, SCHEMA_VERSION, TRAJECTORY, read_json, write_json
from .train import PreparedRun, RunResult, Trainer, prepare


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


def write_run_header(run: PreparedRun) -> None:
    """config.json and manifest.json, written before training starts."""
    write_json(run.run_dir / CONFIG, run.resolved)
    if (run.run_dir / MANIFEST).exists():  # a resumed run keeps the manifest of its start
        return
    write_json(run.run_dir / MANIFEST, build_manifest(
        seed=run.config.seed, device=run.device, data_sha256=run.data.sha256, n_train=run.data.n_train,
        n_holdout=len(run.data.holdout), dataset=run.config.dataset) | {"run_id": run.run_id})


def existing_result(run_dir: Path) -> RunResult | None:
    """The stored result of a run that already ended (finished or diverged), else None."""
    path = run_dir / RESULT
    if not path.exists():
        return None
    result = RunResult(**read_json(path))
    return result if result.status in ("finished", "diverged") else None


def train_one(config: RunConfig, restart: bool = False, on_log=None) -> RunResult:
    """Train one run to its budget and evaluate it. A finished run is returned as stored; an interrupted one
    resumes from its last checkpoint."""
    run = prepare(config)
    if restart and run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    stored = existing_result(run.run_dir)
    if stored is not None:
        return stored
    write_run_header(run)
    result = Trainer(run, on_log=on_log).train()
    if result.status != "diverged":
        result.evaluation, result.evaluation_provenance = evaluate(run)
        result.status = "finished"
        write_json(run.run_dir / RESULT, dataclasses.asdict(result))
    return result


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
    result = read_json(run_dir / RESULT)
    version = result.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ConfigError(f"{run_dir}/{RESULT} has schema version {version}; this ebm-bench reads version "
                          f"{SCHEMA_VERSION}. Use the ebm-bench version that wrote it, or re-run the run.")
    config = read_json(run_dir / CONFIG)
    row = _flatten("config.", config) | _flatten("", {k: v for k, v in result.items() if k != "final"})
    row |= _flatten("final.", result.get("final", {}))
    if (run_dir / MANIFEST).is_file():
        row |= _flatten("manifest.", read_json(run_dir / MANIFEST))
    row["run_dir"] = str(run_dir)
    return row


def load_records(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run: `config.*` (resolved config), result fields, `evaluation.*`, `final.*` (last log row)."""
    return pd.DataFrame([load_record(d) for d in find_run_dirs(paths)])


def load_trajectory(run_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / TRAJECTORY)
