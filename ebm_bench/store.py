"""The run store: one directory per run, every file written atomically (temporary file, then rename).

<out>/<run-id>/
    config.json       the resolved configuration (method options included)
    manifest.json     versions, git commit, data hash, seed, device, sample counts
    trajectory.csv    the energy trajectory, one row per logging interval
    samples.png       the final sample grid
    checkpoint.pt     G, D, optimisers, RNG states, method state (at the end and every K steps)
    result.json       status (running / finished / diverged), budget used, wall time, steps/s, parameter counts
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

SCHEMA_VERSION = 1
CONFIG, MANIFEST, TRAJECTORY, SAMPLES, CHECKPOINT, RESULT = (
    "config.json", "manifest.json", "trajectory.csv", "samples.png", "checkpoint.pt", "result.json")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def save_torch(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


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


class TrajectoryWriter:
    """Appends one CSV row per logging interval; on resume, drops rows logged after the checkpoint.

    Columns are the standard ones, then whatever else the method logs, fixed by the first row.
    """

    def __init__(self, path: Path, standard_columns: list[str]):
        self.path = path
        self.standard_columns = standard_columns
        self.columns: list[str] | None = None

    def start(self, resume_after_step: int | None) -> None:
        if resume_after_step is None or not self.path.exists():
            self.path.unlink(missing_ok=True)
            return
        with self.path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            self.columns = list(reader.fieldnames or [])
            rows = [row for row in reader if _complete(row) and int(row["step"]) <= resume_after_step]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path, text.getvalue().encode())

    def append(self, row: dict[str, Any]) -> None:
        header = ""
        if self.columns is None:
            self.columns = self.standard_columns + sorted(set(row) - set(self.standard_columns))
            header = ",".join(self.columns) + "\n"
        line = ",".join(_format_cell(row.get(column)) for column in self.columns)
        with self.path.open("a") as handle:
            handle.write(header + line + "\n")


def _complete(row: dict) -> bool:
    """False for a row torn by a crash in the middle of an append."""
    return None not in row and None not in row.values() and row["step"].isdigit()


def _format_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)
