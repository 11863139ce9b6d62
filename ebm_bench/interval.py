"""The energy trajectory's sums over one logging interval, for K runs trained together (K = 1: a run alone).

Every sum carries a leading run axis and stays on the training device; `rows()` reads them back, for every run at
once, in one transfer. A run's share (`state_dict(k)`) is what its checkpoint holds between two rows, in the same
form whether it trained alone or in a pack, so a run resumes either way.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .trajectory import QUANTILES

_SUMS = ("energy_sums", "energy_sq_sums", "scalar_sums", "squared_errors")


class _Sum:
    """A float64 running sum per run on the device, and how many values went into each."""

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
    """Sums over one logging interval of `runs` runs. `add_*` only queues device work; `rows()` is the one sync.

    Values come with a leading run axis of `runs` (a run alone may leave it out: `add_energy` takes its (N,)
    energies, `add_scalar` its 0-dim scalar)."""

    def __init__(self, runs: int = 1) -> None:
        self.runs = runs
        self.energy_sums: dict[str, _Sum] = {}  # "real" / "fake": sum of energies
        self.energy_sq_sums: dict[str, _Sum] = {}
        self.last_energy: dict[str, torch.Tensor] = {}  # the interval's last batch (K, N), for quantiles
        self.scalar_sums: dict[str, _Sum] = {}  # per-step scalars: losses, PT, hinge share, M_global
        self.squared_errors: dict[str, _Sum] = {}  # column name -> sum of squared errors, for an RMSE

    def add_energy(self, which: str, energy: torch.Tensor) -> None:
        energy = energy.detach().double().view(self.runs, -1)
        _accumulate(self.energy_sums, which, energy.sum(1), energy.shape[1])
        _accumulate(self.energy_sq_sums, which, energy.square().sum(1), energy.shape[1])
        self.last_energy[which] = energy

    def add_scalar(self, name: str, value: torch.Tensor) -> None:
        _accumulate(self.scalar_sums, name, value.view(self.runs), 1)

    def add_squared_error(self, name: str, total: torch.Tensor, count: int) -> None:
        """A sum of squared errors per run over `count` values each, for an RMSE column."""
        _accumulate(self.squared_errors, name, total.view(self.runs), count)

    def reset(self) -> None:
        self.__init__(self.runs)

    # -- one run's share, as its checkpoint holds it -------------------------------------------------------------
    def state_dict(self, run: int = 0) -> dict[str, Any]:
        """Run `run`'s interval so far (device tensors, no host sync), for a checkpoint taken between two rows."""
        state: dict[str, Any] = {name: {k: (s.total[run].clone(), s.count) for k, s in getattr(self, name).items()}
                                 for name in _SUMS}  # clones: a view would save every run's sums
        return state | {"last_energy": {k: e[run].clone() for k, e in self.last_energy.items()}}

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        """Every run's interval from its checkpoint (they were taken at one step, so they hold the same sums)."""
        for name in _SUMS:
            parts = [state[name] for state in states]
            setattr(self, name, {key: _Sum(torch.stack([torch.as_tensor(p[key][0]) for p in parts]), parts[0][key][1])
                                 for key in parts[0]})
        self.last_energy = {key: torch.stack([state["last_energy"][key] for state in states])
                            for key in states[0]["last_energy"]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_state_dicts([state])

    # -- rows ----------------------------------------------------------------------------------------------------
    def rows(self, states: dict[int, dict[str, Any]]) -> dict[int, dict[str, float]]:
        """For each run k in `states` (its method's state values: margin, k_t): means and stds over the interval,
        quantiles of its last batch, and that state; then the sums start again for every run."""
        probs = torch.tensor(list(QUANTILES.values()), dtype=torch.float64)
        sums = {**{("energy", k): v for k, v in self.energy_sums.items()},
                **{("energy_sq", k): v for k, v in self.energy_sq_sums.items()},
                **{("scalar", k): v for k, v in self.scalar_sums.items()},
                **{("sse", k): v for k, v in self.squared_errors.items()}}
        tensors: dict[Any, torch.Tensor] = {key: s.total for key, s in sums.items()}
        for run, state in states.items():
            tensors |= {("q", run, k): torch.quantile(e[run], probs.to(e.device)) for k, e in self.last_energy.items()}
            tensors |= {("state", run, k): v.detach().double() for k, v in state.items()
                        if isinstance(v, torch.Tensor)}
        host = _to_host(tensors)
        rows = {}
        for run, state in states.items():
            row: dict[str, float] = {k: float(v) for k, v in state.items() if not isinstance(v, torch.Tensor)}
            row.update({k: host["state", run, k] for k, v in state.items() if isinstance(v, torch.Tensor)})
            for which, total in self.energy_sums.items():
                mean = host["energy", which][run] / total.count
                variance = max(host["energy_sq", which][run] / total.count - mean * mean, 0.0)
                row[f"energy_{which}_mean"], row[f"energy_{which}_std"] = mean, math.sqrt(variance)
                row.update({f"energy_{which}_{name}": q for name, q in zip(QUANTILES, host["q", run, which])})
            row.update({name: host["scalar", name][run] / s.count for name, s in self.scalar_sums.items()})
            row.update({name: math.sqrt(host["sse", name][run] / s.count) for name, s in self.squared_errors.items()})
            rows[run] = row
        self.reset()
        return rows

    def row(self, state: dict[str, Any]) -> dict[str, float]:
        """`rows()` of a run alone."""
        return self.rows({0: state})[0]


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
