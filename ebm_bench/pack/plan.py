"""Which runs train together: the pack key, --pack, and packs planned from a list of runs."""

from __future__ import annotations

import json

from ..config import RunConfig
from ..device import resolve_device
from ..errors import ConfigError
from ..resolve import optim_base
from ..schedule import float_options, split_options

_EVALUATION_ONLY = ("seed", "out", "metrics", "eval_n", "inception_n", "n_samples", "inception_weights",
                    "data_root", "download")


def pack_key(config: RunConfig) -> str:
    """Runs with equal keys can train as one pack: the config without what may differ per run (seed, float method
    options and their schedules, learning rates and betas, dropout on or off, evaluation settings). Which options
    are scheduled, and the phases, are in the key."""
    data = config.to_dict()
    for name in _EVALUATION_ONLY:
        data.pop(name)
    options, loop = split_options(config.method, config.method_options)
    varying = float_options(config.method)
    data["method_options"] = {k: v for k, v in options.items() if k not in varying}
    if loop.schedules or loop.generator_off_after is not None:
        data["loop"] = {"scheduled": sorted(loop.schedules), "generator_off_after": loop.generator_off_after}
    data["mlp"]["dropout_d"] = None
    optim = config.optim or optim_base(config)  # planned configs are resolved; None: the run's defaults
    data["optim"] = {"optimizer_g": optim.optimizer_g, "optimizer_d": optim.optimizer_d}
    return json.dumps(data, sort_keys=True, default=str)


# Runs per pack under --pack auto. On a 2-core CPU packing paid only for small nets (benchmarks/bench_pack.py:
# 1.42x at K=8 for G 2x400 / D 2x128, 0.67x for the paper's best MLP), so auto trains alone there.
AUTO_PACK = {"cpu": 1, "cuda": 64}


def parse_pack(text: str | int) -> int | str:
    """--pack: a number of runs per pack, or auto."""
    if text == "auto":
        return "auto"
    try:
        size = int(text)
    except (TypeError, ValueError):
        size = 0
    if size < 1:
        raise ConfigError(f"--pack takes a number of runs per pack (1 trains each run alone) or auto, not {text!r}")
    return size


def pack_size(pack: int | str, configs: list[RunConfig]) -> int:
    """The runs per pack that `pack` means for these configs (auto: by the device they train on)."""
    if pack != "auto":
        return int(parse_pack(pack))
    devices = {resolve_device(c.device).type for c in configs} or {"cpu"}
    return min(AUTO_PACK.get(d, AUTO_PACK["cpu"]) for d in devices)


def plan_packs(configs: list[RunConfig], size: int) -> list[list[RunConfig]]:
    """Group configs by `pack_key` into packs of at most `size`, in the order they first appear."""
    if size < 1:
        raise ConfigError(f"--pack must be a positive number of runs per pack (or auto), got {size}")
    groups: dict[str, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(pack_key(config), []).append(config)
    return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]


def describe_packs(packs: list[list[RunConfig]]) -> str:
    """"12 runs in 2 pack(s): 1 x 8, 1 x 4"."""
    sizes: dict[int, int] = {}
    for pack in packs:
        sizes[len(pack)] = sizes.get(len(pack), 0) + 1
    return (f"{sum(len(p) for p in packs)} runs in {len(packs)} pack(s): "
            + ", ".join(f"{count} x {size}" for size, count in sorted(sizes.items(), reverse=True)))
