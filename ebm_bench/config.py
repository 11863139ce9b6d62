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
import math
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
SEED_MAX = 2**64 - 1  # torch.manual_seed takes 0..2**64-1; a negative seed wraps onto one of those (another run id)


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
        if not (self.amount > 0 and math.isfinite(self.amount)):  # inf: a run that never ends; nan: never spent
            raise ConfigError(f"the budget must be a positive number of {self.kind}, finite, got {self.amount!r}; "
                              f"e.g. --{self.kind} {dict(steps=2000, images=128000, seconds=600)[self.kind]}")
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
        if not (0 < self.lr_g < math.inf and 0 < self.lr_d < math.inf):
            raise ConfigError(f"learning rates must be positive and finite, got lr_g={self.lr_g}, lr_d={self.lr_d}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError(f"--{name} {value:g} is outside [0, 1): Adam's {name} is a decay rate; "
                                  f"use e.g. --beta1 0.5 or 0.9, --beta2 0.999")


# float32: full-precision matmuls and convolutions on a GPU too (PyTorch's cuDNN default is TF32 for convolutions);
# tf32: TensorFloat-32 for both, about 10 significant bits, a different result from CPU float32.
MATMUL_PRECISIONS = ("float32", "tf32")


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
    labels: int | None = None  # semi-supervised: N labelled training images (balanced, by the seed); None: none
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
    eval_every: int = 0  # steps between scores over training (evaluation.csv); 0: only at the end
    eval_every_n: int = 2000  # samples scored at each of those (cheap classifier metrics)
    matmul: str = "float32"  # GPU matmul/conv precision: float32 (records comparable with CPU) or tf32 (faster)
    cuda_graphs: bool = True  # on a GPU, replay a packed step as a CUDA graph (methods that allow it)

    def validate(self) -> None:
        self.budget.validate()
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= SEED_MAX:
            raise ConfigError(f"seed {self.seed!r} is out of range: a seed is a whole number from 0 to {SEED_MAX} "
                              "(2**64 - 1), e.g. --seeds 0,1,2")
        if self.optim is not None:
            self.optim.validate()
        self.mlp.validate()
        if self.eval_n < 0 or (self.inception_n or 0) < 0:
            raise ConfigError("eval_n and inception_n must be >= 0 (0 switches that evaluation off)")
        if self.eval_every < 0 or self.eval_every_n < 10:
            raise ConfigError(f"eval_every must be >= 0 (0: off) and eval_every_n >= 10, got {self.eval_every} and "
                              f"{self.eval_every_n}")
        if self.eval_every and self.holdout >= self.batch_size and self.eval_every_n < self.batch_size:
            # D's energies over training are taken in whole training-size batches (a smaller one would have other
            # BatchNorm statistics): fewer samples than a batch leave none to score
            raise ConfigError(f"--eval-every-n {self.eval_every_n} is below its minimum, the batch size "
                              f"{self.batch_size}: D's energies are scored in whole batches; use --eval-every-n "
                              f"{self.batch_size} or more")
        for name in ("batch_size", "log_every", "checkpoint_every", "n_samples", "z_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2 (BatchNorm needs more than one sample)")
        if self.labels is not None and (isinstance(self.labels, bool) or not isinstance(self.labels, int)
                                        or self.labels < 1):
            raise ConfigError(f"--labels {self.labels!r} is not a number of labelled images; give a positive whole "
                              "number, e.g. --labels 1000 (leave it out for an unsupervised run)")
        if self.matmul not in MATMUL_PRECISIONS:
            raise ConfigError(f"unknown matmul precision {self.matmul!r}; use {' or '.join(MATMUL_PRECISIONS)}")
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
# CUDA graphs are how a pack's steps are launched, like packing itself (recorded in the manifest's execution).
_NOT_IDENTITY = ("out", "data_root", "download", "log_every", "checkpoint_every", "inception_weights", "cuda_graphs")
# Fields added after the first records were written: left out of the identity at their default, so that committed
# records keep their run ids.
_ADDED_LATER: dict[str, Any] = {"metrics": None, "matmul": "float32", "eval_every": 0, "eval_every_n": 2000,
                                "labels": None}


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
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value  # as it is: through a float, a seed above 2**53 would lose its last digits
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if not math.isfinite(number):  # no setting means anything at inf or nan: refused here, not mid-training
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
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


# -- writing TOML -----------------------------------------------------------------------------------------------
# tomllib only reads; the few value kinds a config holds are written here rather than adding a dependency.
_BARE_KEY = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _toml_string(text: str) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    return '"' + "".join(escapes.get(c, c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}")
                         for c in text) + '"'


def _toml_key(key: str) -> str:
    return key if key and set(key) <= _BARE_KEY else _toml_string(key)


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):  # before int: bool is an int in Python
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # also TOML's spelling of inf, -inf and nan
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, where) for v in value if v is not None) + "]"
    raise ConfigError(f"cannot write {where} = {value!r} as TOML: only strings, numbers, booleans and lists")


def toml_dumps(data: dict[str, Any], prefix: str = "") -> str:
    """`data` as TOML: its scalars and lists first, then each nested dict as a [table]; None values are left out
    (TOML has no null: an absent key means the default)."""
    lines = [f"{_toml_key(k)} = {_toml_value(v, prefix + k)}" for k, v in data.items()
             if v is not None and not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            name = f"{prefix}{_toml_key(key)}"
            body = toml_dumps(table, f"{name}.")
            lines += ["", f"[{name}]", *([body] if body else [])]
    return "\n".join(lines).lstrip("\n")


# -- config files as settings -----------------------------------------------------------------------------------
@dataclass
class ConfigFile:
    """A config file (`--config FILE.toml` or a preset) read into what the command line also gives: methods,
    seeds, settings by name (as `ebm_bench.sweep.apply_setting` takes them, method options included) and grid axes.
    Setting names are checked against the chosen methods later, when those are known."""

    where: str  # the file (or preset name), for messages
    description: str = ""
    methods: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # top level, [budget], [mlp], [optim], [set]
    options: dict[str, Any] = field(default_factory=dict)  # [method_options]
    grid: dict[str, list] = field(default_factory=dict)


_META_KEYS = ("description", "method", "methods", "seed", "seeds")
_TABLES = ("budget", "mlp", "optim", "method_options", "set", "grid")


def _one_of(data: dict[str, Any], names: tuple[str, ...], where: str) -> list[str]:
    given = [n for n in names if n in data]
    if len(given) > 1:
        raise ConfigError(f"{where} sets both {given[0]} and {given[1]}; keep one")
    return given


def _name_list(value: Any, key: str, where: str) -> list[str]:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{key} in {where} must be a list of names, e.g. methods = [\"ebgan\", \"began\"]")
    return [n.strip() for n in names if n.strip()]


def _seed_list(value: Any, key: str, where: str) -> list[int]:
    seeds = [value] if key == "seed" else value
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise ConfigError(f"{key} in {where} must be {'an integer' if key == 'seed' else 'a list of integers'}, "
                          f"e.g. seeds = [0, 1, 2]; got {value!r}")
    return seeds


def _table(data: dict[str, Any], name: str, where: str, known: set[str] | None = None) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{name} in {where} must be a table ([{name}]), got {table!r}")
    unknown = sorted(set(table) - known) if known is not None else []
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in [{name}] of {where}; known: {', '.join(sorted(known))}")
    return table


def _budget_settings(data: dict[str, Any], where: str) -> dict[str, Any]:
    """steps / images / seconds at the top level, or [budget] kind and amount, as one setting like steps = N."""
    given = _one_of(data, (*BUDGET_KINDS, "budget"), where)
    if given == ["budget"]:
        table = _table(data, "budget", where, {"kind", "amount"})
        kind = table.get("kind", Budget.kind)
        if kind not in BUDGET_KINDS:
            raise ConfigError(f"[budget] kind in {where} is {kind!r}; use one of {', '.join(BUDGET_KINDS)}")
        if "amount" not in table:
            raise ConfigError(f"[budget] in {where} has no amount; add e.g. amount = 2000")
        return {kind: table["amount"]}
    return {given[0]: data[given[0]]} if given else {}


def _grid(data: dict[str, Any], where: str) -> dict[str, list]:
    grid = _table(data, "grid", where)
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid axis {name} in {where} must be a non-empty list, e.g. {name} = [1, 2]")
    return dict(grid)


def config_file(data: dict[str, Any], where: str) -> ConfigFile:
    """A config file's dict (`read_config_file`, `load_preset`) as a ConfigFile; structural mistakes (a table
    that is not one, a key unknown to [budget], [mlp] or [optim], two budgets) are errors naming the file."""
    for key, value in data.items():
        if isinstance(value, dict) and key not in _TABLES:
            raise ConfigError(f"unknown table [{key}] in {where}; known tables: {', '.join(_TABLES)}")
    mlp_names = {f.name for f in dataclasses.fields(MLPConfig)}
    optim_names = {f.name for f in dataclasses.fields(OptimConfig)} | {"lr"}
    methods = _one_of(data, ("method", "methods"), where)
    seeds = _one_of(data, ("seed", "seeds"), where)
    top = {k: v for k, v in data.items() if k not in (*_META_KEYS, *_TABLES, *BUDGET_KINDS)}
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"description in {where} must be a string")
    return ConfigFile(
        where=where, description=description,
        methods=_name_list(data[methods[0]], methods[0], where) if methods else [],
        seeds=_seed_list(data[seeds[0]], seeds[0], where) if seeds else [],
        settings={**top, **_budget_settings(data, where), **_table(data, "mlp", where, mlp_names),
                  **_table(data, "optim", where, optim_names), **_table(data, "set", where)},
        options=dict(_table(data, "method_options", where)), grid=_grid(data, where))


def read_config(name_or_path: str | Path) -> ConfigFile:
    """A shipped preset by name, or a TOML file by path, as a ConfigFile."""
    return config_file(load_preset(name_or_path), str(name_or_path))
