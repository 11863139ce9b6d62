"""A run record, one owner: the run folder's layout, the result schema and its checked readers, the one
checkpoint reader, the lock that lets one process write a run, and the tolerant reader of many records.

<out>/<run-id>/
    config.json       the resolved configuration (method options included); its canonical hash names the folder
    manifest.json     versions, git commit, data hash, seed, device, sample counts
    trajectory.csv    the energy trajectory, one row per logging interval
    evaluation.csv    quality over training (--eval-every): one row per evaluation step
    samples.png       the final sample grid
    checkpoint.pt     G, D, optimisers, RNG states, method state (at the end and every K steps)
    result.json       status (running / finished / diverged), budget used, wall time, steps/s, parameter counts,
                      evaluation and its provenance
    .lock             flock'ed by the process writing the run (its pid inside); the OS releases it when that
                      process dies, so a killed run never leaves a stale lock
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import re
import shutil
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .config import coerce_fields, config_hash
from .errors import ConfigError, EbmBenchError
from .files import read_json
from .methods import get_method
from .metrics import METRICS, over_training_metrics
from .stats import quality_statistics

SCHEMA_VERSION = 1  # of result.json; a record of another version is refused with a message saying so


# The files of a run folder
CONFIG, MANIFEST, TRAJECTORY, SAMPLES, CHECKPOINT, RESULT = (
    "config.json", "manifest.json", "trajectory.csv", "samples.png", "checkpoint.pt", "result.json")


EVALUATION = "evaluation.csv"  # quality over training (--eval-every): one row per evaluation step


LOCK = ".lock"  # held (flock) by the process writing the run; holds its pid


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


def clear_run(run_dir: Path) -> None:
    """Everything of a run but its lock, which this process holds; links are removed, never followed."""
    check_run_dir(run_dir)
    for path in run_dir.iterdir():
        if path.name == LOCK:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def checkpoint_step(run_dir: Path) -> int:
    """The step a run would resume from (0: none); an unreadable checkpoint fails later, with its own message."""
    if not (run_dir / CHECKPOINT).exists():
        return 0
    try:
        return int(load_checkpoint(run_dir / CHECKPOINT, "cpu")["result"]["steps"])
    except (EbmBenchError, KeyError, TypeError, ValueError):  # the trainer's resume says what is wrong with it
        return 0


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


def quality_from_evaluation(run_dir: str | Path) -> dict[str, dict[str, float]]:
    """Per metric of a run's evaluation.csv, its scores over training (`stats.quality_statistics`); {} without one."""
    path = Path(run_dir) / EVALUATION
    if not path.is_file():
        return {}
    table = pd.read_csv(path)
    summary = {}
    for name in over_training_metrics():
        scores = quality_statistics(table["step"], table[name], METRICS[name].direction) if name in table else {}
        if scores:
            summary[name] = scores | {"best_step": int(scores["best_step"])}
    return summary


def _quality_not_recorded(run_dir: Path, row: dict) -> dict:
    """The scores over training a record predating some statistic lacks, computed from its evaluation.csv."""
    try:
        computed = _flatten("quality.", quality_from_evaluation(run_dir))
    except (ValueError, KeyError, EbmBenchError) as err:  # cut or garbled: the record's own scores still stand
        warnings.warn(f"{run_dir / EVALUATION}: unreadable ({type(err).__name__}: {err}); only the scores over "
                      f"training in its result.json are used", stacklevel=3)
        return {}
    return {name: value for name, value in computed.items() if name not in row}


def load_record(run_dir: Path) -> dict:
    """One run as a flat row; a record that is not one raises UnreadableRecord (a ValueError, like a truncated
    file's), one line naming the file. Statistics over training that its result.json predates are computed from
    its evaluation.csv."""
    result = read_result(run_dir / RESULT)
    config = read_json_object(run_dir / CONFIG)
    row = _flatten("config.", config) | _flatten("", {k: v for k, v in result.items() if k != "final"})
    row |= _flatten("final.", result.get("final", {}))
    row |= _quality_not_recorded(run_dir, row)
    if (run_dir / MANIFEST).is_file():
        row |= _flatten("manifest.", read_json_object(run_dir / MANIFEST))
    row["run_dir"] = str(run_dir)
    return row


def load_records(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run: `config.*` (resolved config), result fields, `evaluation.*`, `final.*` (last log row)."""
    return pd.DataFrame([load_record(d) for d in find_run_dirs(paths)])


def load_trajectory(run_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / TRAJECTORY)


def read_records(paths: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """(one row per readable run, one line per unreadable one). A run counted twice (the same canonical config
    in two folders, e.g. written before configs were hashed canonically) is kept once."""
    unreadable: list[str] = []
    seen: dict[str, dict] = {}
    for run_dir in find_run_dirs(paths):
        try:
            row = load_record(run_dir)
            row["config_hash"] = config_hash(_typed_options(read_json(run_dir / CONFIG)))
        except (OSError, ValueError, KeyError, TypeError) as err:  # truncated JSON is a ValueError
            unreadable.append(f"{_culprit(run_dir)}: unreadable ({type(err).__name__}: {err})")
            continue
        previous = seen.get(row["config_hash"])
        if previous is not None:  # keep a finished one
            kept, dropped = (row, previous) if row["status"] == "finished" != previous["status"] else (previous, row)
            unreadable.append(f"{dropped['run_dir']}: the same run as {kept['run_dir']} (counted once)")
            row = kept
        seen[row["config_hash"]] = row
    return pd.DataFrame(list(seen.values())), unreadable


def _typed_options(config: dict) -> dict:
    """The config with its method options in their declared types, as runs are hashed since configs are
    canonical: a record written with -o margin=10 (an int) is the same run as one with margin = 10.0."""
    try:
        cls = get_method(config["method"])
    except (ConfigError, KeyError):  # a plug-in method not loaded here: its options as stored
        return config
    stored = config.get("method_options", {})
    declared = {k: v for k, v in stored.items() if k in getattr(cls, "__dataclass_fields__", {})}
    return config | {"method_options": stored | coerce_fields(cls, declared, config["method"])}


def _culprit(run_dir: Path) -> Path:
    """The first of a run's JSON files that does not parse (else the folder itself)."""
    for name in (RESULT, CONFIG, MANIFEST):
        try:
            json.loads((run_dir / name).read_text())
        except (OSError, ValueError):
            return run_dir / name
    return run_dir
