"""Run configuration: plain dataclasses, resolved once (device, data root, method defaults) and stored with the run.

A run is identified by a hash of the canonical form of its resolved configuration, so the same settings always
map to the same run directory (an interrupted run resumes there; a finished one is not trained again), however
they were spelled (`--margin 10`, `-o margin=10` or a preset's `margin = 10.0`). This module knows no networks,
datasets or methods: it holds the dataclasses, their checks, and hashing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import sys
import typing
from pathlib import Path

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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
class MLPConfig:
    """The EBGAN paper's MNIST MLPs (its Table 1 grid): layer counts and widths of G and D, dropout in D."""

    n_layer_g: int = 5
    size_g: int = 800
    n_layer_d: int = 2
    size_d: int = 1024
    dropout_d: bool = False

    def validate(self) -> None:
        if self.n_layer_g < 2 or self.n_layer_d < 2:
            raise ConfigError(f"n_layer_g and n_layer_d must be >= 2 (got {self.n_layer_g}, {self.n_layer_d})")
        if min(self.size_g, self.size_d) < 1:
            raise ConfigError("size_g and size_d must be positive")


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
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError(f"--{name} {value:g} is outside [0, 1): Adam's {name} is a decay rate; "
                                  f"use e.g. --beta1 0.5 or 0.9, --beta2 0.999")


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
    metrics: list[str] | None = None  # scored at the end; None: every registered metric the run can supply

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


# Where a run's files go and how often it reports do not change its results, so they are not part of its identity.
_NOT_IDENTITY = ("out", "data_root", "download", "log_every", "checkpoint_every", "inception_weights")
# Fields added after the first records were written: left out of the identity at their default, so that committed
# records keep their run ids.
_ADDED_LATER: dict[str, Any] = {"metrics": None}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """`value` as the declared type `hint` (int, float, bool, str, X | None); other hints leave it as is."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        rest = [a for a in args if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else hint
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if hint is int:
            if number != int(number):
                raise ConfigError(f"{where} must be a whole number, got {value!r}")
            return int(number)
        return number
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


def parse_value(text: str) -> Any:
    """A command-line value: int, then float, then true/false/none, else the string itself. Declared types are
    applied later (`coerce_fields`), so "10" for a float option still becomes 10.0."""
    text = text.strip()
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def coerce_fields(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """`values` (field name -> value) with each value converted to the type `cls` declares for that field."""
    hints = typing.get_type_hints(cls)
    return {name: _coerce(value, hints[name], f"{where} option {name}") if name in hints else value
            for name, value in values.items()}


def canonical(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved config dict with every field in its declared type (method options are typed by their method
    before they get here): `10` and `10.0` for a float field become the same value."""
    data = dict(resolved)
    for name, cls in (("budget", Budget), ("mlp", MLPConfig), ("optim", OptimConfig)):
        if isinstance(data.get(name), dict):
            data[name] = coerce_fields(cls, data[name], name)
    typed = {k: v for k, v in data.items() if k not in ("budget", "mlp", "optim", "method_options")}
    data.update(coerce_fields(RunConfig, typed, "run"))
    if data.get("budget", {}).get("kind") in ("steps", "images"):
        data["budget"]["amount"] = int(data["budget"]["amount"])  # a count, whichever way it was written
    return data


def config_hash(resolved: dict[str, Any]) -> str:
    """sha256 of the canonical config without the fields that do not change results."""
    identity = {k: v for k, v in canonical(resolved).items() if k not in _NOT_IDENTITY
                and not (k in _ADDED_LATER and v == _ADDED_LATER[k])}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


# -- config files -----------------------------------------------------------------------------------------------
PRESETS_DIR = Path(__file__).resolve().parent / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A TOML config file (a preset or a user's own) as a dict; errors name the file and the line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}; pass --config FILE.toml or a preset name "
                          f"({', '.join(preset_names())})")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML: {err}; fix the file") from None


def load_preset(name_or_path: str | Path) -> dict[str, Any]:
    """A shipped preset by name (`margin-sensitivity`), or a TOML file by path."""
    if str(name_or_path) in preset_names():
        return read_config_file(PRESETS_DIR / f"{name_or_path}.toml")
    if str(name_or_path).endswith(".toml") or Path(name_or_path).exists():
        return read_config_file(name_or_path)
    raise ConfigError(f"unknown preset {str(name_or_path)!r}; known presets: {', '.join(preset_names())} "
                      "(or pass a .toml file)")


def load_preset_optim(name: str) -> OptimConfig:
    """The optimiser a preset names in its [optim] table (a dataset's default optimiser lives in its preset)."""
    table = load_preset(name).get("optim", {})
    return OptimConfig(**coerce_fields(OptimConfig, table, f"preset {name} [optim]"))
