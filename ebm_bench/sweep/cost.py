"""What a sweep's packs cost on the device at hand, so that `sweep --time-limit` starts only packs that will finish.

Each pack shape is timed once per device, by training the pack itself for a few steps in a scratch folder inside
--out (`calibrate`), and the timings are kept beside the sweep in `<out>/.cost-<device>.json`, where the next
invocation (and every sweep sharing that --out) reuses them. A pack's predicted time is

    start_s                        preparing its runs, their first steps (warm-up, CUDA graph capture)
  + steps left / steps_per_s       its steady training rate; a resumed run counts only the steps it has left
  + scores x score_s               its --eval-every evaluations
  + checkpoints x checkpoint_s     its checkpoints
  + runs x end_s                   each run's end-of-run evaluation at its eval_n (and inception_n)

with one `start_s` per group of runs resuming from the same step (they train as one pack). The shape of a pack is
what sets the time of a step: method, architecture, batch size, pack size, matmul precision, device and torch
threads, not seeds, learning rates, margins or the budget; the end-of-run evaluation is timed per evaluation
setting (eval_n, inception_n, metrics, samples), once, since it does not depend on the architecture's shape enough
to time it for each of a grid's hundreds of shapes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ebm_bench.config import Budget, RunConfig
from ebm_bench.device import resolve_device
from ebm_bench.errors import ConfigError
from ebm_bench.files import read_json, write_json
from ebm_bench.methods import get_method
from ebm_bench.resolve import resolve
from ebm_bench.runs import train_pack
from ebm_bench.train import RunResult

from .grid import checked

# A pack starts only when it is predicted to end this long before the limit, as a share of the time the sweep was
# given. Each pack starts at the real time the one before it ended, so only the last pack's error reaches the limit:
# packs of the paper's best MLP on a shared 2-core CPU took 1.01-1.09x their prediction, tiny ones 0.7-1.2x; a pack
# that still overruns is let finish (stopping it would lose what it trained since its last checkpoint).
SAFETY_SHARE = 0.10
# Timing shapes stops once it has taken this share of the time given: shapes are timed once per device and kept,
# so a sweep of many shapes times the rest in its next invocations and trains in the remaining two thirds.
CALIBRATION_SHARE = 1 / 3
CALIBRATION_ROWS = 6  # trajectory rows of a calibration: warm-up, steady steps (with a score), the final checkpoint
CALIBRATION_EVERY = 10  # steps between them
FORMAT = "ebm-bench sweep costs"

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_time_limit(text: str, now: float | None = None) -> float:
    """The deadline (seconds since the epoch) that `--time-limit` means: a duration from now (`9m`, `540s`, `1.5h`,
    `540`), or `@T`, a moment in Unix seconds: the deadline shared by several sweeps in one script."""
    now = time.time() if now is None else now
    raw = str(text).strip().lower()
    if raw.startswith("@"):
        try:
            at = float(raw[1:])
        except ValueError:
            at = math.nan
        if math.isfinite(at):
            return at
    else:
        match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(s|m|min|h)?", raw)
        seconds = float(match[1]) * _UNITS[match[2] or ""] if match else 0.0
        if seconds > 0 and math.isfinite(seconds):
            return now + seconds
    raise ConfigError(f"--time-limit {text!r} is not a time limit; give a duration in seconds, or with s, m or h "
                      "(e.g. 9m, 90s, 1.5h), or @T, a deadline in Unix seconds (e.g. @$(date -d '+9 min' +%s))")


def describe_seconds(seconds: float) -> str:
    """'4.5 s', '40 s', '14 min', '2.3 h'."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f} s"
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def device_label(config: RunConfig) -> str:
    """The device a config trains on, as a file name part: cpu, or cuda-<the GPU's name> (an H100's costs are
    not an H200's)."""
    return _device_label(config.device)


@functools.lru_cache(maxsize=None)
def _device_label(name: str) -> str:
    device = resolve_device(name)
    if device.type != "cuda":
        return device.type
    import torch

    return "cuda-" + re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")


def _key(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def shape_of(pack: list[RunConfig], threads: int) -> tuple[str, str]:
    """(key, description) of what sets a pack's time per step. Float method options (margins, gammas), learning
    rates, betas, dropout on or off, seeds and the budget may differ within a pack and do not change the shape."""
    config = resolve(pack[0]).config
    data = config.to_dict()
    for name in ("seed", "out", "data_root", "download", "budget", "log_every", "checkpoint_every", "inception_weights",
                 "eval_n", "inception_n", "metrics", "n_samples", "eval_every", "eval_every_n"):
        data.pop(name)
    data["scored_n"] = config.eval_every_n if config.eval_every else 0  # the cost of one --eval-every evaluation
    floats = _float_options(config.method)
    data["method_options"] = {k: v for k, v in config.method_options.items() if k not in floats}
    data["mlp"]["dropout_d"] = None
    optim = data["optim"]
    data["optim"] = {"optimizer_g": optim["optimizer_g"], "optimizer_d": optim["optimizer_d"]}
    data |= {"pack_size": len(pack), "threads": threads, "device": device_label(config)}
    mlp = config.mlp
    arch = (f"G {mlp.n_layer_g}x{mlp.size_g} D {mlp.n_layer_d}x{mlp.size_d}" if config.arch == "mlp"
            else config.arch)
    return _key(data), (f"{config.method} {arch} batch {config.batch_size}, pack of {len(pack)}, "
                        f"{threads} thread(s), {config.matmul}")


def _float_options(method: str) -> set[str]:
    """A method's float options (margin, gamma, ...): hyperparameters that runs of one pack may differ in."""
    cls = get_method(method)
    if not dataclasses.is_dataclass(cls):
        return set()
    return {f.name for f in dataclasses.fields(cls) if str(f.type).replace(" ", "").startswith("float")}


def evaluation_of(config: RunConfig, threads: int) -> tuple[str, str]:
    """(key, description) of a run's end-of-run evaluation."""
    config = resolve(config).config
    data = {name: getattr(config, name) for name in ("dataset", "image_size", "eval_n", "inception_n", "metrics",
                                                     "n_samples", "holdout", "batch_size")}
    data |= {"threads": threads, "device": device_label(config)}
    inception = "default" if config.inception_n is None else config.inception_n
    return _key(data), f"eval_n {config.eval_n}, inception_n {inception}, metrics {config.metrics or 'all'}"


@dataclass(frozen=True)
class ShapeCost:
    steps_per_s: float
    start_s: float
    score_s: float = 0.0
    checkpoint_s: float = 0.0


@dataclass
class Left:
    """A run of a pack that has not ended: the step its checkpoint holds and the training seconds behind it."""

    config: RunConfig
    steps_done: int = 0
    wall_done: float = 0.0


@dataclass
class PackWork:
    """A pack and what is left of it."""

    pack: list[RunConfig]
    ended: list[tuple[RunConfig, RunResult]] = field(default_factory=list)  # its runs that finished or diverged
    left: list[Left] = field(default_factory=list)
    predicted_s: float | None = None  # None: its shape is not timed on this device yet
    note: str = ""  # what its prediction rests on, when not a calibration (a failed one)


class CostBook:
    """The cost files of a sweep (`<out>/.cost-<device>.json`, one per --out and device), each read once and
    rewritten atomically after each change."""

    def __init__(self):
        self.files: dict[Path, dict[str, Any]] = {}
        self.warnings: list[str] = []

    @staticmethod
    def path(config: RunConfig) -> Path:
        return Path(config.out) / f".cost-{device_label(config)}.json"

    def data(self, config: RunConfig) -> dict[str, Any]:
        path = self.path(config)
        if path not in self.files:
            self.files[path] = self._read(path, device_label(config))
        return self.files[path]

    def _read(self, path: Path, label: str) -> dict[str, Any]:
        empty = {"format": FORMAT, "device": label, "shapes": {}, "evaluations": {}, "slowdown": {}}
        if not path.exists():
            return empty
        try:
            data = read_json(path)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not a cost file of ebm-bench sweep")
            for name in ("shapes", "evaluations", "slowdown"):
                if not isinstance(data.get(name), dict):
                    raise ValueError(f"no {name} table")
        except (OSError, ValueError, ConfigError) as err:  # a cache: timed again, never a stopped sweep
            self.warnings.append(f"{path} is unreadable ({err}); its shapes are timed again and it is rewritten")
            return empty
        return data

    def _save(self, config: RunConfig) -> None:
        write_json(self.path(config), self.data(config))

    def shape(self, config: RunConfig, key: str) -> ShapeCost | None:
        entry = self.data(config)["shapes"].get(key)
        try:
            cost = ShapeCost(*(float(entry[name]) for name in ("steps_per_s", "start_s", "score_s", "checkpoint_s")))
        except (TypeError, KeyError, ValueError):
            return None
        numbers = dataclasses.astuple(cost)
        return cost if cost.steps_per_s > 0 and all(math.isfinite(v) and v >= 0 for v in numbers) else None

    def end_s(self, config: RunConfig, key: str) -> float | None:
        entry = self.data(config)["evaluations"].get(key)
        value = entry.get("per_run_s") if isinstance(entry, dict) else None
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0 else None

    def slowdown(self, config: RunConfig, workers: int) -> float:
        """How much longer a pack takes in one of `workers` processes sharing the device than alone, as the last
        invocation measured it; before any, as if they took turns (`workers`), the safe side. 1 for one worker."""
        if workers == 1:
            return 1.0
        value = self.data(config)["slowdown"].get(str(workers))
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) and value >= 1 else \
            float(workers)

    def put_shape(self, config: RunConfig, key: str, describe: str, cost: ShapeCost, steps: int) -> None:
        self.data(config)["shapes"][key] = {"describe": describe, "calibration_steps": steps, "calibrated": _now(),
                                            **dataclasses.asdict(cost)}
        self._save(config)

    def put_end(self, config: RunConfig, key: str, describe: str, per_run_s: float) -> None:
        self.data(config)["evaluations"][key] = {"describe": describe, "per_run_s": per_run_s, "calibrated": _now()}
        self._save(config)

    def put_slowdown(self, config: RunConfig, workers: int, value: float) -> None:
        self.data(config)["slowdown"][str(workers)] = value
        self._save(config)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- prediction --------------------------------------------------------------------------------------------------
def _events(done: int, total: int, every: int) -> int:
    """Steps in (done, total] at which something every `every` steps happens; the last step always has one."""
    if not every or total <= done:
        return 0
    return total // every - done // every + (1 if total % every else 0)


def predict(work: PackWork, cost: ShapeCost, end_s: float) -> float:
    """Seconds to train what is left of `work`'s pack and evaluate its runs (`cost`: its shape's timings;
    `end_s`: one run's end-of-run evaluation)."""
    groups: dict[int, list[Left]] = {}
    for left in work.left:  # runs resuming from different steps train as separate packs (runs.train_pack)
        groups.setdefault(left.steps_done, []).append(left)
    total_s = 0.0
    for done, members in groups.items():
        config = members[0].config
        total = config.budget.expected_steps(config.batch_size)
        if total is None:  # a budget in seconds of training: what its longest run has left
            seconds = max(max(config.budget.amount - m.wall_done, 0.0) for m in members)
            total = done + math.ceil(seconds * cost.steps_per_s)
        else:
            seconds = max(total - done, 0) / cost.steps_per_s
        total_s += (cost.start_s + seconds + _events(done, total, config.eval_every) * cost.score_s
                    + _events(done, total, config.checkpoint_every) * cost.checkpoint_s)
    return total_s + len(work.left) * end_s


# -- calibration -------------------------------------------------------------------------------------------------
def calibration_steps(config: RunConfig) -> int:
    """The steps of a calibration: CALIBRATION_ROWS x CALIBRATION_EVERY, doubled while the method refuses so short
    a budget (MAGAN's pre-training must end before it)."""
    steps = CALIBRATION_ROWS * CALIBRATION_EVERY
    for _ in range(12):
        try:
            checked(dataclasses.replace(config, budget=Budget("steps", steps)))
            return steps
        except ConfigError:
            steps *= 2
    return steps


@dataclass
class Calibration:
    shape: ShapeCost
    end_s: float | None  # one run's end-of-run evaluation, when the calibration evaluated as the sweep will
    steps: int
    took_s: float


def _mark(marks: dict[int, list[tuple[int, float]]], index: int, step: int, clock: Callable[[], float]) -> None:
    marks.setdefault(index, []).append((step, clock()))


def calibrate(pack: list[RunConfig], scratch: Path, end_eval: bool,
              clock: Callable[[], float] = time.perf_counter) -> Calibration:
    """Time `pack`: train its runs for a few steps in `scratch` (removed after), a trajectory row every
    CALIBRATION_EVERY steps, an --eval-every score halfway when the pack scores over training, and, with
    `end_eval`, the end-of-run evaluation the sweep asks for (else none, for a pack whose evaluation is timed)."""
    steps = calibration_steps(pack[0])
    every = max(1, steps // CALIBRATION_ROWS)
    score_every = every * (CALIBRATION_ROWS // 2) if pack[0].eval_every else 0
    light = {} if end_eval else {"eval_n": 0, "inception_n": 0}
    configs = [dataclasses.replace(c, out=str(scratch), budget=Budget("steps", steps), log_every=every,
                                   checkpoint_every=steps, eval_every=score_every, **light) for c in pack]
    marks: dict[int, list[tuple[int, float]]] = {}

    def progress(i: int):
        return (lambda row: _mark(marks, i, int(row["step"]), clock),
                lambda start: _mark(marks, i, int(start.step), clock))

    began = clock()
    try:
        results = train_pack(configs, progress=progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ended = clock()
    points = max(marks.values(), key=len) if marks else [(0, began)]  # a diverged run's rows stop early
    shape, last_at = _fit(points, score_every, began)
    finished = sum(isinstance(r, RunResult) and r.status == "finished" for r in results)
    end_s = (ended - last_at) / finished if end_eval and finished else None
    return Calibration(shape, end_s, steps, ended - began)


def _fit(points: list[tuple[int, float]], score_every: int, began: float) -> tuple[ShapeCost, float]:
    """ShapeCost from (step, time) marks: the run's start, then its rows. The first interval holds the warm-up and
    the last the final checkpoint; steady intervals without a score give the rate."""
    intervals = [(b[0] - a[0], b[1] - a[1], bool(score_every) and b[0] // score_every > a[0] // score_every)
                 for a, b in zip(points, points[1:])]
    steady = intervals[1:-1]
    usable = [i for i in steady if not i[2]] or steady or intervals[1:] or intervals
    steps, seconds = sum(i[0] for i in usable), sum(i[1] for i in usable)
    rate = steps / seconds if steps > 0 and seconds > 0 else 1.0
    scores = [max(0.0, dt - ds / rate) for ds, dt, scored in steady if scored]
    score_s = sum(scores) / len(scores) if scores else 0.0
    start_s = points[0][1] - began
    if intervals:
        start_s += max(0.0, intervals[0][1] - intervals[0][0] / rate)
    checkpoint_s = 0.0
    if len(intervals) > 1:
        ds, dt, scored = intervals[-1]
        checkpoint_s = max(0.0, dt - ds / rate - (score_s if scored else 0.0))
    return ShapeCost(rate, start_s, score_s, checkpoint_s), points[-1][1]


def scratch_folder(out: str | Path) -> Path:
    """This process's calibration folder inside --out; folders of processes that are gone are removed first (their
    runs would otherwise look like records to a leaderboard or `records export`)."""
    out = Path(out)
    for old in out.glob(".calibration-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)) and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
    return out / f".calibration-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def time_packs(works: list[PackWork], book: CostBook, threads: int, budget_s: float,
               say: Callable[[str], None] = lambda line: None, clock: Callable[[], float] = time.perf_counter) -> int:
    """Predict each pack with work left (`predicted_s`), timing in order the shapes this device has no costs for
    while `budget_s` seconds of timing last; a pack left untimed keeps None. Returns the shapes timed."""
    spent, timed = 0.0, 0
    for work in works:
        if not work.left:
            work.predicted_s = 0.0
            continue
        first = work.pack[0]
        shape_key, shape_text = shape_of(work.pack, threads)
        end_key, end_text = evaluation_of(first, threads)
        shape, end_s = book.shape(first, shape_key), book.end_s(first, end_key)
        if shape is None or end_s is None:
            if spent >= budget_s:
                continue
            say(f"timing {shape_text} on {device_label(first)}"
                + ("" if end_s is not None else f", and its evaluation ({end_text})"))
            began = clock()
            try:
                calibration = calibrate(work.pack, scratch_folder(first.out), end_eval=end_s is None)
            except Exception as err:  # noqa: BLE001 (one pack's failure must not stop the sweep's other packs)
                spent += clock() - began
                # untimed, it does not start: a sweep without --time-limit trains it, and records how it fails
                work.note = f"its timing failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                say(f"warning: {work.note}; not started (a sweep without --time-limit records how it fails)")
                continue
            spent += calibration.took_s
            timed += 1
            if shape is None:
                book.put_shape(first, shape_key, shape_text, calibration.shape, calibration.steps)
                shape = calibration.shape
            if end_s is None and calibration.end_s is not None:
                book.put_end(first, end_key, end_text, calibration.end_s)
                end_s = calibration.end_s
        if end_s is None:  # every run of its timing diverged, so none was evaluated
            work.note = "its end-of-run evaluation not timed (every run of its timing diverged)"
        work.predicted_s = predict(work, shape, end_s or 0.0)
    return timed
