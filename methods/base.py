"""The one class a method writes (its registry is `ebm_bench.methods`).

A method says which energy model D is ("autoencoder" or "classifier"), how a D output becomes a per-sample
energy, and its two losses. The harness owns everything else: data, networks, optimisers, budgets, logging.

Contract, checked on a run's first step (a method that breaks it fails with a message naming it):
- `energy(images, out)` returns one finite energy per sample: shape (N,). Low on data, high elsewhere.
- `loss_d(real, fake)` and `loss_g(fake)` return finite scalar tensors. `fake` is None in `loss_d` on steps where
  `trains_generator(step)` is False (pre-training D alone); G is not stepped then.
- State (a margin, k_t) lives on the method as tensors on the run's device, is updated in `end_step` without
  reading values back to the host, and is named in `state_names` so checkpoints save and restore it.
- `log(name, tensor)` records a per-step scalar for the energy trajectory (averaged over each logging interval);
  `state_values()` reports state at logging time (margin, k_t).
- `replayable = True` promises that a step's tensor work depends on neither the step number nor Python-side
  state, beyond `trains_generator(step)`: on a GPU the packed step is then captured once as a CUDA graph and
  replayed (ebm_bench.pack). Off by default, since a Python branch in `end_step` would silently replay stale.
Options are dataclass fields (decorate the subclass with `@dataclass`); they are set from the config, converted
to their declared types, and checked in `validate` (a negative margin is an error, not a silent run).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ebm_bench.errors import ConfigError, MethodContractError
from ebm_bench.nets import DOutput


@dataclass
class Energies:
    """A batch as the energy model saw it."""

    images: torch.Tensor  # the batch D was given (generated images keep their graph in the G step)
    out: DOutput  # D's raw output: reconstruction and code, or logit
    energy: torch.Tensor  # (N,) per-sample energy
    labels: torch.Tensor | None = None  # (N,) classes of a semi-supervised real batch (-1: unlabelled); else None


@dataclass
class SetupContext:
    """What a method may need to resolve its defaults and create its state."""

    device: torch.device
    dataset: str
    image_shape: tuple[int, int, int]
    batch_size: int
    batches_per_epoch: int
    expected_steps: int | None  # the budget in steps when it can be known in advance


class Method:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    energy_model: ClassVar[str] = "autoencoder"
    state_names: ClassVar[tuple[str, ...]] = ()
    replayable: ClassVar[bool] = False
    # The method's own optimiser defaults over the dataset's (e.g. {"lr_d": 5e-4}), used when a run names no optimiser
    optim_defaults: ClassVar[dict[str, float]] = {}
    # True: the method trains on labelled images (a semi-supervised run, --labels N); a run without labels is refused
    needs_labels: ClassVar[bool] = False

    def validate(self) -> None:
        """Raise ConfigError for option values the method cannot train with (called once options are set)."""

    def check_budget(self, expected_steps: int | None) -> None:
        """Raise ConfigError for option values the run's budget cannot train with (`expected_steps`: the budget in
        steps, None for one in seconds); called with the options as given, before any data is loaded."""

    def setup(self, context: SetupContext) -> None:
        """Resolve option defaults that depend on the data or budget and create state tensors."""

    def energy(self, images: torch.Tensor, out: DOutput) -> torch.Tensor:
        raise NotImplementedError(f"method {self.name!r} must define energy(images, out)")

    def loss_d(self, real: Energies, fake: Energies | None) -> torch.Tensor:
        raise NotImplementedError(f"method {self.name!r} must define loss_d(real, fake)")

    def loss_g(self, fake: Energies) -> torch.Tensor:
        raise NotImplementedError(f"method {self.name!r} must define loss_g(fake)")

    def trains_generator(self, step: int) -> bool:
        return True

    def end_step(self, step: int, real: Energies, fake_d: Energies | None, fake_g: Energies | None) -> None:
        """Update state after step `step` (0-based). Tensors are detached; never read them on the host here."""

    def state_values(self) -> dict[str, Any]:
        return {}

    def log(self, name: str, value: torch.Tensor) -> None:
        self.__dict__.setdefault("_logged", {})[name] = value.detach()

    def pop_logged(self) -> dict[str, torch.Tensor]:
        return self.__dict__.pop("_logged", {})

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.state_names}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.state_names:
            setattr(self, name, state[name])


def check_energy(method: Method, energy: torch.Tensor, batch: int, which: str) -> None:
    if not isinstance(energy, torch.Tensor) or energy.shape != (batch,):
        shape = tuple(energy.shape) if isinstance(energy, torch.Tensor) else type(energy).__name__
        raise MethodContractError(f"method {method.name!r}: energy() must return one value per sample, shape "
                                  f"({batch},), but returned {shape} for the {which} batch")
    if not torch.isfinite(energy).all():
        raise MethodContractError(f"method {method.name!r}: energy() returned non-finite values for the "
                                  f"{which} batch on the first step")


def check_loss(method: Method, loss: torch.Tensor, which: str) -> None:
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise MethodContractError(f"method {method.name!r}: {which}() must return a scalar tensor, got {shape}")
    if not torch.isfinite(loss):
        raise MethodContractError(f"method {method.name!r}: {which}() is not finite ({loss.item()}) on the "
                                  "first step")


def require(condition: bool, method: str, message: str) -> None:
    """ConfigError `method: message` unless `condition`: for one-line checks in `Method.validate`."""
    if not condition:
        raise ConfigError(f"{method}: {message}")
