"""A run's configuration resolved once: every default that needs neither data nor a machine, and every check
that can fail before data loads.

`resolve(config)` is the one home of a run's defaults: the dataset's image size and network family; the optimiser
(the dataset's, then the method's own, as EBGAN-LN's lr 5e-4 for D, then what the user set); the method's options
(the dataset's values for options a method leaves to it, as EBGAN's margin, which is in the dataset's energy
units); and the loop's options in their canonical spelling. Planning (`ebm-bench run` and `sweep`, `--dry-run`,
`config show`), pack and cost keys and `train.prepare` all read its result; `prepare` adds only what needs the
machine (device, data root, Inception N) and the data (a method's set-up, as MAGAN's period of one epoch).
Resolving a resolved config changes nothing, so the run id, a hash of the resolved config, is the same whichever
path a config took.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from .config import Budget, OptimConfig, RunConfig
from .datasets import DatasetSpec, get_dataset
from .errors import ConfigError
from .methods import Method, get_method, make_method
from .metrics import parse_metric_names
from .metrics.prdc import DEFAULT_K as PRDC_K, PRDC_METRICS
from .nets import NETS
from .schedule import LoopOptions, split_options


@dataclass(frozen=True)
class Resolved:
    """A resolved config with what resolving it built: the dataset's spec, the method (not yet set up for the data)
    and the loop's options."""

    config: RunConfig
    spec: DatasetSpec
    method: Method
    loop_options: LoopOptions


def resolve(config: RunConfig) -> Resolved:
    """`config` with its data-free defaults filled in and checked; a mistake is one line naming it."""
    config.validate()
    if config.budget.kind != "seconds":  # a count, however it was written (validate: a whole number)
        config = dataclasses.replace(config, budget=Budget(config.budget.kind, int(config.budget.amount)))
    if config.metrics is not None:
        parse_metric_names(config.metrics)  # a typo fails now, not after training
    spec = get_dataset(config.dataset)
    options, loop_options = split_options(config.method, config.method_options)
    method = make_method(config.method, options, config.dataset)  # the dataset's margin, ...
    method.check_budget(config.budget.expected_steps(config.batch_size))
    if method.needs_labels and config.labels is None:
        raise ConfigError(f"{config.method} trains on labelled images: give --labels N (e.g. --dataset pi-mnist "
                          "--labels 1000)")
    image_size = config.image_size or spec.image_sizes[0]
    if image_size not in spec.image_sizes:
        raise ConfigError(f"{config.dataset} supports image sizes {spec.image_sizes}, not {image_size}")
    arch = spec.default_arch if config.arch == "auto" else config.arch
    NETS.get(arch)  # an unknown architecture fails now, naming the known ones
    if config.eval_n and (spec.classifier or config.metrics is not None):
        minimum = min_eval_n(config.metrics)
        if config.eval_n < minimum:
            raise ConfigError(f"--eval-n {config.eval_n} is below its minimum {minimum}: " + (
                f"precision/recall/density/coverage compare each sample with its k={PRDC_K} nearest neighbours"
                if minimum > 2 else "the sample metrics need at least 2 samples")
                + f"; use --eval-n {minimum} or more (0: no sample metrics)")
    resolved = dataclasses.replace(config, image_size=image_size, arch=arch,
                                   optim=config.optim or default_optim(spec, method),
                                   method_options=method.options() | loop_options.options())
    return Resolved(resolved, spec, method, loop_options)


def default_optim(spec: DatasetSpec, method: Method) -> OptimConfig:
    """The optimiser a run starts from when none is set: the dataset's, with the method's own defaults over it."""
    return dataclasses.replace(spec.optim(), **method.optim_defaults)


def optim_base(config: RunConfig) -> OptimConfig:
    """The optimiser a setting such as --beta1 changes: the run's own if it has one, else its defaults (so that
    --lr on CelebA keeps its beta1 0.5, and --beta1 on EBGAN-LN keeps its learning rates)."""
    if config.optim is not None:
        return config.optim
    return dataclasses.replace(get_dataset(config.dataset).optim(), **get_method(config.method).optim_defaults)


def min_eval_n(metrics: Sequence[str] | None) -> int:
    """The fewest end-of-run samples (`eval_n`) the chosen metrics (None: every one) can score."""
    knn = metrics is None or bool(set(PRDC_METRICS) & set(metrics))
    return PRDC_K + 1 if knn else 2
