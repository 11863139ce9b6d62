"""Run configuration: plain dataclasses, resolved once (device, data root, method defaults) and stored with the run.

A run is identified by a hash of its resolved configuration, so the same settings always map to the same run
directory (an interrupted run resumes there; a finished one is not trained again).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import ConfigError
from .nets import MLPConfig

BUDGET_KINDS = ("steps", "images", "seconds")
OPTIMIZERS = ("adam", "sgd")


@dataclass
class Budget:
    """How long every method of a comparison trains: training steps (default), real images seen, or wall seconds.

    A step is one D update and, outside pre-training, one G update; MAGAN's pre-training steps count.
    """

    kind: str = "steps"
    amount: float = 2000

    def validate(self) -> None:
        if self.kind not in BUDGET_KINDS:
            raise ConfigError(f"unknown budget kind {self.kind!r}; use one of {', '.join(BUDGET_KINDS)}")
        if not self.amount > 0 or self.amount != self.amount:
            raise ConfigError(f"the budget must be a positive number of {self.kind}, got {self.amount!r}")
        if self.kind != "seconds" and self.amount != int(self.amount):
            raise ConfigError(f"a budget in {self.kind} must be a whole number, got {self.amount!r}")

    def expected_steps(self, batch_size: int) -> int | None:
        if self.kind == "steps":
            return int(self.amount)
        if self.kind == "images":
            return -(-int(self.amount) // batch_size)
        return None

    def exhausted(self, steps: int, images: int, wall_s: float) -> bool:
        used = {"steps": steps, "images": images, "seconds": wall_s}[self.kind]
        return used >= self.amount


@dataclass
class OptimConfig:
    """The paper's MNIST setting by default: Adam, lr 1e-3, for both G and D."""

    optimizer_g: str = "adam"
    optimizer_d: str = "adam"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999

    def validate(self) -> None:
        for which in (self.optimizer_g, self.optimizer_d):
            if which not in OPTIMIZERS:
                raise ConfigError(f"unknown optimizer {which!r}; use one of {', '.join(OPTIMIZERS)}")
        if not (self.lr_g > 0 and self.lr_d > 0):
            raise ConfigError(f"learning rates must be positive, got lr_g={self.lr_g}, lr_d={self.lr_d}")


@dataclass
class RunConfig:
    """Everything that defines one training run. Defaults: the paper's best EBGAN MLP on MNIST."""

    method: str = "ebgan"
    dataset: str = "mnist"
    seed: int = 0
    budget: Budget = field(default_factory=Budget)
    batch_size: int = 64
    image_size: int | None = None  # None: the dataset's default (MNIST 32, zero-padded)
    arch: str = "auto"  # "auto": the dataset's (MNIST: the paper's MLPs)
    z_dim: int = 100
    mlp: MLPConfig = field(default_factory=MLPConfig)  # sizes when arch is "mlp"
    optim: OptimConfig | None = None  # None: the dataset's (MNIST: Adam lr 1e-3)
    method_options: dict[str, Any] = field(default_factory=dict)
    holdout: int = 5000  # real training images set aside for energy evaluation
    device: str = "auto"
    data_root: str | None = None  # None: $EBM_BENCH_DATA, then the user cache directory
    download: bool = True
    out: str = "runs"
    log_every: int = 100
    checkpoint_every: int = 1000
    n_samples: int = 64  # images in the final sample grid
    eval_n: int = 10000  # generated samples scored at the end by the MNIST-classifier metrics (0: none)
    inception_n: int | None = None  # ... by Inception IS/FID/KID; None: 10000 on a GPU, off (0) on a CPU
    inception_weights: str | None = None  # None: $EBM_BENCH_INCEPTION_WEIGHTS, else torch-fidelity's download

    def validate(self) -> None:
        self.budget.validate()
        if self.optim is not None:
            self.optim.validate()
        self.mlp.validate()
        if self.eval_n < 0 or (self.inception_n or 0) < 0:
            raise ConfigError("eval_n and inception_n must be >= 0 (0 switches that evaluation off)")
        for name in ("batch_size", "log_every", "checkpoint_every", "n_samples", "z_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2 (BatchNorm needs more than one sample)")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        data["budget"] = Budget(**data.get("budget", {}))
        data["mlp"] = MLPConfig(**data.get("mlp", {}))
        data["optim"] = OptimConfig(**data["optim"]) if data.get("optim") else None
        return cls(**data)


def resolve_device(name: str | torch.device) -> torch.device:
    """"auto" -> cuda when available, else cpu; "cuda" without a GPU is a ConfigError, not a crash later."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return device


# Where a run's files go and how often it reports do not change its results, so they are not part of its identity.
_NOT_IDENTITY = ("out", "data_root", "download", "log_every", "checkpoint_every", "inception_weights")


def config_hash(resolved: dict[str, Any]) -> str:
    identity = {k: v for k, v in resolved.items() if k not in _NOT_IDENTITY}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
