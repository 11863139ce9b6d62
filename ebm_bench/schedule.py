"""Schedules and phases: what a run's training loop does as a function of the step, given with its method options.

- `<option>_schedule = "linear:FROM:TO:END"` (or `"linear:FROM:TO:START:END"`) makes the method's float option
  `<option>` follow the step: FROM up to step START (0 when left out), TO from step END on, linear in between.
  EBGAN-LN's margin, 16 decaying to 0 over the first 60,000 steps, is `margin_schedule = "linear:16:0:60000"`:
  step 60,000 and every step after it train with a margin of exactly 0. The option itself holds FROM.
- `generator_off_after = N` is a phase: G trains in the first N steps only. From step N on, D trains alone (its
  loss is given no generated batch, as in MAGAN's pre-training), and G and G's optimiser are left as they are.

- `generator_frozen_after = N` is a phase too: G trains in the first N steps only, and from step N on D goes on
  training against that frozen G's samples (the contrastive term stays). This is the D the GAN critique reasons
  about: the optimal D for a fixed generator. G's weights and optimiser are left as they are (its BatchNorm running
  statistics, which only its evaluation-mode samples use, keep tracking the fixed G's batches).

- `lr_decay_from = N` decays both learning rates linearly to 0 over the steps from N to the end of the budget (the
  ladder papers' and the EBGAN paper's appendix D schedule): step s >= N trains with lr * (END - s) / (END - N),
  END the budget in steps, so step N keeps the full lr and the last step trains with lr / (END - N). It needs a
  budget in steps or images; a run that ends before N never decays.

All four are pure functions of the step: a checkpoint holds nothing for them, and a resumed run goes on where it
stopped. Both are method options of the run, so they are in its configuration and its id. Steps are 0-based: step
s is the (s+1)-th update, and a trajectory row after s steps shows the value step s will use.

In a pack, runs may schedule an option differently (each run's FROM, TO, START and END are columns of one table on
the device) but not switch G off at different steps. Values come from a step counter on the device, filled before
each step: a step never reads a value back to the host, and a CUDA graph replays the schedule.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import ConfigError
from .methods import get_method, option_names

SCHEDULE_SUFFIX = "_schedule"
GENERATOR_OFF_AFTER = "generator_off_after"
GENERATOR_FROZEN_AFTER = "generator_frozen_after"
LR_DECAY_FROM = "lr_decay_from"


def float_options(method: str) -> set[str]:
    """The float-typed options of `method` (margin, gamma, ...): those a schedule can drive and a pack can vary."""
    cls = get_method(method)
    if not dataclasses.is_dataclass(cls):
        return set()
    return {f.name for f in dataclasses.fields(cls) if str(f.type).replace(" ", "").startswith("float")}


@dataclass(frozen=True)
class Linear:
    """FROM until step START, TO from step END on, linear in between."""

    first: float
    last: float
    start: int
    end: int

    def spec(self) -> str:
        """The canonical spelling: `linear:16:0:60000` and `linear:16.0:0:0:60000` are one run."""
        return f"linear:{self.first!r}:{self.last!r}:" + (f"{self.start}:" if self.start else "") + str(self.end)


def parse_schedule(key: str, text: Any) -> Linear:
    example = f"e.g. -o {key}=linear:16:0:60000 (from 16 at step 0 to 0 at step 60000)"
    parts = str(text).split(":")
    if parts[0] != "linear" or len(parts) not in (4, 5):
        raise ConfigError(f"{key} {text!r} is not a schedule: write linear:FROM:TO:END or linear:FROM:TO:START:END "
                          f"(END and START in steps), {example}")
    try:
        first, last = float(parts[1]), float(parts[2])
        steps = [float(p) for p in parts[3:]]
    except ValueError:
        raise ConfigError(f"{key} {text!r}: FROM, TO and the steps must be numbers, {example}") from None
    start, end = ([0.0] + steps)[-2:]
    if not (math.isfinite(first) and math.isfinite(last)):
        raise ConfigError(f"{key} {text!r}: FROM and TO must be finite numbers, {example}")
    if not (start == int(start) and end == int(end) and 0 <= start < end):
        raise ConfigError(f"{key} {text!r}: START and END must be whole numbers of steps with 0 <= START < END, "
                          f"{example}")
    return Linear(first, last, int(start), int(end))


@dataclass(frozen=True)
class LoopOptions:
    """A run's schedules (option name -> schedule) and the step after which G trains no more (None: never)."""

    schedules: dict[str, Linear] = field(default_factory=dict)
    generator_off_after: int | None = None
    lr_decay_from: int | None = None  # the step from which both learning rates decay linearly to 0 at the end
    generator_frozen_after: int | None = None  # the step from which G stops training but still draws D's samples

    def trains_generator(self, step: int) -> bool:
        """Whether G draws samples for D in step `step` (and, unless frozen, trains)."""
        return self.generator_off_after is None or step < self.generator_off_after

    def updates_generator(self, step: int) -> bool:
        """Whether G's weights train in step `step`."""
        return self.trains_generator(step) and (self.generator_frozen_after is None
                                                or step < self.generator_frozen_after)

    def lr_factor(self, step: int, end: int) -> float:
        """What step `step` (0-based) of a run of `end` steps multiplies its learning rates by."""
        start = self.lr_decay_from
        if start is None or step < start or end <= start:
            return 1.0
        return max(end - step, 0) / (end - start)

    def options(self) -> dict[str, Any]:
        """As method options, canonically spelled: what the run's config records and hashes."""
        return ({f"{name}{SCHEDULE_SUFFIX}": schedule.spec() for name, schedule in sorted(self.schedules.items())}
                | ({GENERATOR_OFF_AFTER: self.generator_off_after} if self.generator_off_after is not None else {})
                | ({LR_DECAY_FROM: self.lr_decay_from} if self.lr_decay_from is not None else {})
                | ({GENERATOR_FROZEN_AFTER: self.generator_frozen_after}
                   if self.generator_frozen_after is not None else {}))


def loop_option_names(method: str) -> set[str]:
    """The loop's option names that apply to `method`: a schedule per float option, and the generator's phase."""
    own = option_names(method)
    phases = {GENERATOR_OFF_AFTER, GENERATOR_FROZEN_AFTER, LR_DECAY_FROM}
    return ({f"{name}{SCHEDULE_SUFFIX}" for name in float_options(method)} | phases) - own


def run_option_names(method: str) -> set[str]:
    """Every option a run of `method` takes: the method's own and the loop's."""
    return option_names(method) | loop_option_names(method)


def split_options(method: str, options: dict[str, Any]) -> tuple[dict[str, Any], LoopOptions]:
    """A run's method options as (the method's own, the loop's). A scheduled option is set to its schedule's FROM;
    given as well, it must say the same (a resolved config holds both)."""
    loop_names = loop_option_names(method)
    own = {key: value for key, value in options.items() if key not in loop_names}
    schedules = {key[:-len(SCHEDULE_SUFFIX)]: parse_schedule(key, value) for key, value in options.items()
                 if key in loop_names and key.endswith(SCHEDULE_SUFFIX)}
    for name, schedule in schedules.items():
        if name in own and _number(own[name]) != schedule.first:
            raise ConfigError(f"{name} {own[name]!r} and {name}{SCHEDULE_SUFFIX} {schedule.spec()} (which starts at "
                              f"{schedule.first:g}) disagree; give only the schedule")
        own[name] = schedule.first
    off, frozen = (_phase_step(options, name, loop_names) for name in (GENERATOR_OFF_AFTER, GENERATOR_FROZEN_AFTER))
    decay = options.get(LR_DECAY_FROM) if LR_DECAY_FROM in loop_names else None
    if decay is not None:
        steps = _number(decay)
        if steps is None or steps != int(steps) or steps < 0:
            raise ConfigError(f"{LR_DECAY_FROM} must be a whole number of steps >= 0 (the learning rates decay "
                              f"linearly to 0 from it to the end), got {decay!r}; e.g. -o {LR_DECAY_FROM}=80000")
        decay = int(steps)
    return own, LoopOptions(schedules, off, decay, frozen)


def _phase_step(options: dict[str, Any], name: str, loop_names: set[str]) -> int | None:
    """The step a phase option names: a whole number >= 1 (G trains in the steps before it), or None."""
    value = options.get(name) if name in loop_names else None
    if value is None:
        return None
    steps = _number(value)
    if steps is None or steps != int(steps) or steps < 1:
        raise ConfigError(f"{name} must be a whole number of steps >= 1 (G trains in the steps before it), got "
                          f"{value!r}; e.g. -o {name}=60000")
    return int(steps)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class ScheduledValues:
    """The scheduled options of K runs as (K,) float32 tensors on the device, from a step counter there.

    `set_step(s)` fills the counter (outside a CUDA graph: a kernel taking s as its argument, no sync);
    `values(offset)` computes every option at step s + offset with tensor ops only (inside a graph: replayed).
    Computed in float64, so that TO is reached exactly: FROM * 0 + TO * 1 at END and after."""

    def __init__(self, runs: list[LoopOptions], device: torch.device):
        names = sorted(runs[0].schedules)
        if any(sorted(options.schedules) != names for options in runs):
            raise ConfigError("the runs of a pack schedule different options; they cannot train as one pack")
        self.step = torch.zeros((), dtype=torch.float64, device=device)
        self.table = {name: torch.tensor([[s.first, s.last, s.start, s.end] for s in
                                          (options.schedules[name] for options in runs)],
                                         dtype=torch.float64, device=device) for name in names}

    def set_step(self, step: int) -> None:
        self.step.fill_(step)

    def values(self, offset: int = 0) -> dict[str, torch.Tensor]:
        out = {}
        for name, table in self.table.items():
            first, last, start, end = table.unbind(1)
            fraction = ((self.step + offset - start) / (end - start)).clamp(0, 1)
            out[name] = (first * (1 - fraction) + last * fraction).float()
        return out


def scheduled_values(runs: list[LoopOptions], device: torch.device) -> ScheduledValues | None:
    """The runs' scheduled values, or None when they schedule nothing (a step then does no schedule work)."""
    return ScheduledValues(runs, device) if runs[0].schedules else None
