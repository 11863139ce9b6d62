"""Files written so that a crash never leaves half of one: a temporary file in the same folder, then a rename.

New files get the umask's mode (as `open` would), not mkstemp's 0600, so a group can read shared results.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError

SCHEMA_VERSION = 1  # of result.json; a record of another version is refused with a message saying so
# The files of a run folder
CONFIG, MANIFEST, TRAJECTORY, SAMPLES, CHECKPOINT, RESULT = (
    "config.json", "manifest.json", "trajectory.csv", "samples.png", "checkpoint.pt", "result.json")
EVALUATION = "evaluation.csv"  # quality over training (--eval-every): one row per evaluation step
LOCK = ".lock"  # held (flock) by the process writing the run; holds its pid


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
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


class UnreadableRecord(ConfigError, ValueError):
    """A run record that cannot be read as one. A ValueError too, like the JSON error of a truncated file: readers
    that skip unreadable records with a warning (leaderboards, reports) skip these the same way."""


# The fields every result.json has (train.RunResult's without a default) and those holding numbers per name
RESULT_REQUIRED = ("run_id", "run_dir", "method", "dataset", "seed", "status", "budget")
_RESULT_SCORES = ("evaluation", "final", "quality")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _non_numeric(scores: dict, prefix: str) -> tuple[str, Any] | None:
    """The first value under `scores` (nested dicts included) that is neither a number nor null."""
    for key, value in scores.items():
        if isinstance(value, dict):
            found = _non_numeric(value, f"{prefix}{key}.")
            if found:
                return found
        elif value is not None and not _is_number(value):
            return f"{prefix}{key}", value
    return None


def read_json_object(path: Path) -> dict[str, Any]:
    """A run's JSON file (result, config, manifest), which holds an object; else UnreadableRecord naming it."""
    try:
        data = read_json(path)
    except (OSError, ValueError) as err:  # absent, truncated, not UTF-8 (a ValueError too)
        raise UnreadableRecord(str(corrupt_file_error(path, err))) from None
    if not isinstance(data, dict):
        raise UnreadableRecord(f"{path} is not a run's {path.name} (a JSON {type(data).__name__}, not an object); "
                               f"{_restart_advice(path)}")
    return data


def read_result(path: Path) -> dict[str, Any]:
    """A run's result.json, checked to be one this ebm-bench wrote; anything else raises UnreadableRecord, one line
    naming the file."""
    result = read_json_object(path)
    version = result.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UnreadableRecord(f"{path} has schema version {version}; this ebm-bench reads version "
                               f"{SCHEMA_VERSION}. Use the ebm-bench version that wrote it, or re-run the run.")
    missing = [name for name in RESULT_REQUIRED if name not in result]
    if missing:
        raise UnreadableRecord(f"{path} lacks {', '.join(missing)}, which every run's result has; "
                               f"{_restart_advice(path)}")
    budget = result["budget"]
    if not (isinstance(budget, dict) and isinstance(budget.get("kind"), str) and _is_number(budget.get("amount"))):
        raise UnreadableRecord(f"{path} has budget {json.dumps(budget)[:60]}, not a kind and an amount; "
                               f"{_restart_advice(path)}")
    for name in _RESULT_SCORES:
        scores = result.get(name, {})
        found = _non_numeric(scores, f"{name}.") if isinstance(scores, dict) else (name, scores)
        if found:
            raise UnreadableRecord(f"{path} has a non-numeric {found[0]} ({json.dumps(found[1])[:40]}); "
                                   f"{_restart_advice(path)}")
    return result


def save_torch(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _reason(err: BaseException) -> str:
    """The first sentence of an error, short enough for one line."""
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    return text.split(". ")[0][:120] or type(err).__name__


def _restart_advice(path: Path) -> str:
    return (f"run again with --restart to start this run over (--restart starts every run of the command over; "
            f"delete {path.parent} to restart only this one)")


def corrupt_file_error(path: Path, err: BaseException) -> ConfigError:
    """One line for a run file that cannot be read back: which file, why, and how to start that run over."""
    return ConfigError(f"{path} is corrupt ({_reason(err)}); {_restart_advice(path)}")


def checkpoint_mismatch_error(path: Path, err: BaseException) -> ConfigError:
    """One line for a readable checkpoint whose tensors do not fit the networks it is loaded into."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = (lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else _reason(err))[:120]
    return ConfigError(f"{path} does not fit this run ({detail}): it is a checkpoint of another method, architecture "
                       f"or network size; {_restart_advice(path)}")


_UNSAFE = "Weights only load failed"  # how torch.load(weights_only=True) starts refusing what it will not build
_GARBLED = ("Unsupported operand", "String is too long")  # its refusals of bytes that are not a pickle it reads


def load_checkpoint(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """A checkpoint read with torch.load(weights_only=True), the one way every command reads one.

    A checkpoint holds only tensors, numbers, strings, None and dicts / lists / tuples of them (the RNG states are
    tensors); unpickling anything else could run code of whoever wrote the file, so such a file is refused
    unread, as is one that is not a checkpoint at all.
    """
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files: the error says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
        what = re.split(r" was not an allowed| Please|\. ", found.group(1))[0][:120] if found else ""
        if _UNSAFE not in str(err) or what.startswith(_GARBLED):  # garbage, or not written by torch.save
            raise corrupt_file_error(path, ValueError("not a PyTorch checkpoint")) from None
        raise ConfigError(f"{path} holds objects a checkpoint never holds ({what or 'not plain data'}); it was not "
                          "loaded. Delete it or run with --restart") from None
    except (RuntimeError, OSError) as err:  # truncated (torch names the zip's damage), a folder, unreadable
        raise corrupt_file_error(path, err) from None
    except Exception:  # noqa: BLE001 (empty or garbage: torch's KeyError or EOFError says nothing a user can use)
        raise corrupt_file_error(path, ValueError("not a PyTorch checkpoint")) from None
    if not isinstance(state, dict):
        raise corrupt_file_error(path, TypeError(f"a {type(state).__name__}, not a checkpoint's dict"))
    return state
