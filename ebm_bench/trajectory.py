"""Energy-trajectory statistics, accumulated on the training device and read back once per logging interval."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import torch

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
