"""Energy-trajectory statistics, accumulated on the training device and read back once per logging interval."""

from __future__ import annotations

import csv
import io
import math
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError
from .files import atomic_write_bytes

QUANTILES = {"q10": 0.1, "q50": 0.5, "q90": 0.9}
_ENERGY_COLUMNS = [f"energy_{which}_{stat}" for which in ("real", "fake")
                   for stat in ("mean", "std", *QUANTILES)]
STANDARD_COLUMNS = (["step", "images", "wall_s"] + _ENERGY_COLUMNS
                    + ["margin", "k_t", "m_global", "pt", "hinge_active", "loss_d", "loss_g", "recon_rmse_real"])


class _Sum:
    """A float64 running sum on the device and how many values went into it."""

    def __init__(self, value: torch.Tensor, count: int):
        self.total, self.count = value.detach().double().clone(), count

    def add(self, value: torch.Tensor, count: int) -> None:
        self.total += value.detach().double()
        self.count += count


def _accumulate(sums: dict[str, _Sum], name: str, value: torch.Tensor, count: int) -> None:
    if name in sums:
        sums[name].add(value, count)
    else:
        sums[name] = _Sum(value, count)


class IntervalStats:
    """Sums over one logging interval. `add_*` only queues device work; `row()` is the one host sync."""

    def __init__(self) -> None:
        self.energy_sums: dict[str, _Sum] = {}  # "real" / "fake": sum of energies
        self.energy_sq_sums: dict[str, _Sum] = {}
        self.last_energy: dict[str, torch.Tensor] = {}  # the interval's last batch, for quantiles
        self.scalar_sums: dict[str, _Sum] = {}  # per-step scalars: losses, PT, hinge share, M_global
        self.squared_errors: dict[str, _Sum] = {}  # column name -> sum of squared errors, for an RMSE

    def add_energy(self, which: str, energy: torch.Tensor) -> None:
        energy = energy.detach().double()
        _accumulate(self.energy_sums, which, energy.sum(), len(energy))
        _accumulate(self.energy_sq_sums, which, energy.square().sum(), len(energy))
        self.last_energy[which] = energy

    def add_scalar(self, name: str, value: torch.Tensor) -> None:
        _accumulate(self.scalar_sums, name, value, 1)

    def add_squared_error(self, name: str, prediction: torch.Tensor, target: torch.Tensor) -> None:
        _accumulate(self.squared_errors, name, (prediction.detach() - target).double().square().sum(),
                    target.numel())

    _SUMS = ("energy_sums", "energy_sq_sums", "scalar_sums", "squared_errors")

    def state_dict(self) -> dict[str, Any]:
        """The interval so far (device tensors, no host sync), for a checkpoint taken between two rows."""
        state: dict[str, Any] = {name: {k: (s.total, s.count) for k, s in getattr(self, name).items()}
                                 for name in self._SUMS}
        return state | {"last_energy": dict(self.last_energy)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._SUMS:
            setattr(self, name, {k: _Sum(total, count) for k, (total, count) in state[name].items()})
        self.last_energy = dict(state["last_energy"])

    def row(self, state: dict[str, Any]) -> dict[str, float]:
        """Means and stds over the interval, quantiles of its last batch, and the method's state; then reset."""
        sums = {**{("energy", k): v for k, v in self.energy_sums.items()},
                **{("energy_sq", k): v for k, v in self.energy_sq_sums.items()},
                **{("scalar", k): v for k, v in self.scalar_sums.items()},
                **{("sse", k): v for k, v in self.squared_errors.items()}}
        probs = torch.tensor(list(QUANTILES.values()), dtype=torch.float64)
        quantiles = {k: torch.quantile(e, probs.to(e.device)) for k, e in self.last_energy.items()}
        tensor_state = {k: v.detach().double() for k, v in state.items() if isinstance(v, torch.Tensor)}
        host = _to_host({**{key: s.total for key, s in sums.items()}, **{("q", k): q for k, q in quantiles.items()},
                         **{("state", k): v for k, v in tensor_state.items()}})

        row: dict[str, float] = {k: float(v) for k, v in state.items() if k not in tensor_state}
        row.update({k: host["state", k] for k in tensor_state})
        for which, total in self.energy_sums.items():
            mean = host["energy", which] / total.count
            variance = max(host["energy_sq", which] / total.count - mean * mean, 0.0)
            row[f"energy_{which}_mean"], row[f"energy_{which}_std"] = mean, math.sqrt(variance)
            row.update({f"energy_{which}_{name}": q for name, q in zip(QUANTILES, host["q", which])})
        row.update({name: host["scalar", name] / s.count for name, s in self.scalar_sums.items()})
        row.update({name: math.sqrt(host["sse", name] / s.count) for name, s in self.squared_errors.items()})
        self.__init__()
        return row


def _to_host(tensors: dict[Any, torch.Tensor]) -> dict[Any, Any]:
    """Copy many device tensors to the host in one transfer."""
    if not tensors:
        return {}
    flat = torch.cat([t.reshape(-1) for t in tensors.values()]).cpu().tolist()
    out, offset = {}, 0
    for key, tensor in tensors.items():
        size = tensor.numel()
        out[key] = flat[offset] if tensor.dim() == 0 else flat[offset:offset + size]
        offset += size
    return out


class TrajectoryWriter:
    """Appends one CSV row per logging interval; on resume, drops rows logged after the checkpoint.

    Columns are the standard ones, then whatever else the method logs, fixed by the first row. A file that is
    damaged beyond a torn last row (a crash in the middle of an append) is never dropped: it is moved aside, and
    the run resumes with the rows that could be read. The file is never written through a symbolic link.
    """

    def __init__(self, path: Path, standard_columns: list[str]):
        self.path = path
        self.standard_columns = standard_columns
        self.columns: list[str] | None = None

    def start(self, resume_after_step: int | None, last_row_step: int | None = None) -> None:
        """`resume_after_step` None: a fresh start (an old file goes). Else rows up to that step are kept;
        `last_row_step`, when the caller knows it, is the step of the last row logged up to there, which a whole
        file has."""
        self._refuse_link()
        if resume_after_step is None or not self.path.exists():
            self.path.unlink(missing_ok=True)
            return
        data = self.path.read_bytes()
        columns, rows, damage = _read_rows(data, resume_after_step)
        if damage is None and last_row_step is not None and (not rows or int(rows[-1]["step"]) != last_row_step):
            damage = f"its row of step {last_row_step} is missing"
        if damage is not None:
            self._move_aside(damage, resume_after_step)
        if columns is None:  # no header to keep: the first append writes one
            self.path.unlink(missing_ok=True)
            return
        self.columns = columns
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path, text.getvalue().encode())

    def _refuse_link(self) -> None:
        if self.path.is_symlink():
            raise ConfigError(f"{self.path} is a symbolic link; ebm-bench does not write through links in a run "
                              "folder: delete it (or run again with --restart)")

    def _move_aside(self, damage: str, resume_after_step: int) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for n in range(1, 1000):
            if not aside.exists():
                break
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        os.replace(self.path, aside)
        print(f"warning: {self.path} is damaged ({damage}); moved it to {aside}, and the run goes on with its rows "
              f"up to step {resume_after_step} that could be read", file=sys.stderr, flush=True)

    def append(self, row: dict[str, Any]) -> None:
        header = ""
        if self.columns is None:
            self.columns = self.standard_columns + sorted(set(row) - set(self.standard_columns))
            header = ",".join(self.columns) + "\n"
        line = ",".join(_format_cell(row.get(column)) for column in self.columns)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError:
            self._refuse_link()  # the likely reason; anything else is the OS's own error
            raise
        with os.fdopen(fd, "a") as handle:
            handle.write(header + line + "\n")


def _read_rows(data: bytes, resume_after_step: int) -> tuple[list[str] | None, list[dict[str, str]], str | None]:
    """(header, the rows up to `resume_after_step`, what is damaged or None) of a trajectory file's bytes.

    Only the last line may be torn, and only by an append after the checkpoint: an append comes before the
    checkpoint of its step, so a cut row at or before the checkpoint's step is a cut file, not a crash.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None, [], "not text"
    if not text:
        return None, [], "empty"
    *lines, tail = text.split("\n")
    if not lines:  # not even a whole header: a first append torn by a crash, or garbage
        torn_header = re.fullmatch(r"[A-Za-z0-9_.,]*", tail) is not None and "step".startswith(tail[:4])
        return None, [], None if torn_header else "no header"
    columns = next(csv.reader([lines[0]]), [])
    if not columns or columns[0] != "step" or "" in columns or len(set(columns)) < len(columns):
        return None, [], "its first line is not a header starting with step"
    rows, damage, previous = [], None, -1
    for number, line in enumerate(lines[1:], start=2):
        cells = next(csv.reader([line]), [])
        if len(cells) != len(columns) or not cells[0].isdigit() or int(cells[0]) <= previous:
            damage = damage or f"line {number} is not a row"
            continue
        previous = int(cells[0])
        if previous <= resume_after_step:
            rows.append(dict(zip(columns, cells)))
    if tail and "," in tail:  # the torn row's step is whole: before the checkpoint, rows were cut off
        step = tail.split(",", 1)[0]
        if not step.isdigit() or int(step) <= resume_after_step:
            damage = damage or f"its last line is cut off at step {step}"
    return columns, rows, damage


def _format_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class PackedIntervalStats:
    """IntervalStats for K runs trained as one pack: every sum carries a leading run axis.

    `split()` hands each run an ordinary IntervalStats (for its row or its checkpoint); `stack()` builds the
    packed sums back from the runs' own (a resumed pack).
    """

    def __init__(self) -> None:
        IntervalStats.__init__(self)  # type: ignore[arg-type]  (the same fields, each with a run axis)

    def add_energy(self, which: str, energy: torch.Tensor) -> None:  # energy: (K, N)
        energy = energy.detach().double()
        _accumulate(self.energy_sums, which, energy.sum(1), energy.shape[1])
        _accumulate(self.energy_sq_sums, which, energy.square().sum(1), energy.shape[1])
        self.last_energy[which] = energy

    def add_scalar(self, name: str, value: torch.Tensor) -> None:  # value: (K,)
        _accumulate(self.scalar_sums, name, value, 1)

    def add_sum(self, name: str, total: torch.Tensor, count: int) -> None:
        """A sum of squared errors per run (K,) over `count` values each, for an RMSE column."""
        _accumulate(self.squared_errors, name, total, count)

    def split(self, runs: int) -> list[IntervalStats]:
        parts = []
        for k in range(runs):
            part = IntervalStats()
            for name in IntervalStats._SUMS:
                setattr(part, name, {key: _Sum(s.total[k], s.count) for key, s in getattr(self, name).items()})
            part.last_energy = {key: e[k] for key, e in self.last_energy.items()}
            parts.append(part)
        return parts

    def reset(self) -> None:
        self.__init__()

    @classmethod
    def stack(cls, parts: list[IntervalStats]) -> PackedIntervalStats:
        packed = cls()
        for name in IntervalStats._SUMS:
            sums = [getattr(p, name) for p in parts]
            setattr(packed, name, {key: _Sum(torch.stack([s[key].total for s in sums]), sums[0][key].count)
                                   for key in sums[0]})
        packed.last_energy = {key: torch.stack([p.last_energy[key] for p in parts])
                              for key in parts[0].last_energy}
        return packed
