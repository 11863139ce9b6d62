"""Reading run records back: find run folders and flatten config + result into one table row per run."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from .errors import ConfigError
from .store import CONFIG, MANIFEST, RESULT, SCHEMA_VERSION, TRAJECTORY, read_json


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
