"""The training loop of every run, alone or packed: budget, clock, rows, checkpoints, evaluations, resume, divergence.

A `Loop` drives a `Step` over the states of its runs (`RunState`): one run and `train.SoloStep`, or the K runs of
a pack and `pack.PackedStep`. The step does the tensor work of one training step for every run; the loop does the
rest, the same way for both:
- the budget (steps, images or seconds) and the clock (wall_s counts training, not evaluation);
- a trajectory row every `log_every` steps, a checkpoint every `checkpoint_every` steps, an evaluation (the
  `on_eval` hook, --eval-every) every `eval_every` steps, and all three at the step that spends the budget. An
  evaluation comes before its step's checkpoint (a run killed in between evaluates that step again on resume); a
  checkpoint between two rows carries the interval's sums so far, so a resumed run writes the rows an
  uninterrupted one writes;
- resume: every run from its checkpoint, all from one step;
- divergence: a run whose row is not finite is recorded as diverged at that step (it keeps its last checkpoint)
  and frozen; the others go on.
Schedules and phases (ebm_bench.schedule) are part of the contract: a step trains G only where the method
(`trains_generator`, MAGAN's pre-training) and the run's phase (`generator_off_after`) both say so, and a scheduled
method option holds its value for the step (and `lr_decay_from` the learning rates); the step counts G updates and
D-only steps.
Nothing in a step reads a value back to the host; rows, checkpoints and evaluations do, once per interval.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .config import Budget, RunConfig
from .datasets import DatasetSpec, TrainingData
from .device import set_matmul_precision
from .errors import ConfigError, MethodContractError
from .files import save_torch, write_json
from .interval import IntervalStats
from .methods import Energies, Method
from .nets import Dropout, count_parameters
from .record import (CHECKPOINT, RESULT, SCHEMA_VERSION, TRAJECTORY, checkpoint_mismatch_error, corrupt_file_error,
                     load_checkpoint)
from .schedule import GENERATOR_OFF_AFTER, LR_DECAY_FROM, LoopOptions, ScheduledValues, scheduled_values
from .trajectory import STANDARD_COLUMNS, TrajectoryWriter


@dataclass
class RunResult:
    """What a run produced; stored as result.json in its directory."""

    run_id: str
    run_dir: str
    method: str
    dataset: str
    seed: int
    status: str  # "running", "finished" or "diverged"
    budget: dict[str, Any]
    steps: int = 0
    generator_steps: int = 0
    pretrain_steps: int = 0  # D-only steps (MAGAN's pre-training, a phase with G off), included in `steps`
    images: int = 0
    wall_s: float = 0.0
    steps_per_s: float = 0.0
    params_g: int = 0
    params_d: int = 0
    final: dict[str, float] = field(default_factory=dict)  # the last trajectory row
    evaluation: dict[str, float] = field(default_factory=dict)  # sample scores, held-out energy, AUROC
    evaluation_provenance: dict[str, Any] = field(default_factory=dict)  # N, weights hashes, library version
    quality: dict[str, dict[str, float]] = field(default_factory=dict)  # per metric over training (eval_every)
    diverged_at_step: int | None = None
    schema_version: int = SCHEMA_VERSION


@dataclass
class RunStart:
    """Where a run's training starts: step 0, or the step of the checkpoint it resumes from."""

    run_id: str
    step: int
    budget: Budget
    total_steps: int | None  # the budget in steps; None for a budget in seconds

    @property
    def total(self) -> str:
        return str(self.total_steps) if self.total_steps is not None else f"{self.budget.amount:g} {self.budget.kind}"

    def resume_message(self) -> str:
        return f"resuming {self.run_id} from step {self.step} of {self.total}"


@dataclass
class PreparedRun:
    """A run resolved and built, before training."""

    config: RunConfig
    resolved: dict[str, Any]
    run_id: str
    run_dir: Path
    device: torch.device
    spec: DatasetSpec
    data: TrainingData
    method: Method
    generator: nn.Module
    discriminator: nn.Module
    loop_options: LoopOptions = field(default_factory=LoopOptions)  # schedules and phases (ebm_bench.schedule)


def dropout_seed(seed: int) -> int:
    """The seed of a run's dropout masks: its own stream, so that masks do not depend on what else draws."""
    return (seed * 2654435761 + 97) % 2**63


def _optimizer(name: str, params, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas)
    return torch.optim.SGD(params, lr=lr)


class RunState:
    """One run as a loop trains it: its networks, optimisers and random streams, its result and trajectory.

    A solo step trains its networks with its optimisers; a packed step trains stacked copies and writes them back
    here (`Step.sync`) before a checkpoint or an evaluation reads them."""

    def __init__(self, run: PreparedRun, on_log: Callable[[dict[str, float]], None] | None = None,
                 on_start: Callable[[RunStart], None] | None = None):
        self.run, self.config, self.method = run, run.config, run.method
        self.G, self.D = run.generator, run.discriminator
        cfg = self.config
        set_matmul_precision(cfg.matmul)
        betas = (cfg.optim.beta1, cfg.optim.beta2)
        self.opt_g = _optimizer(cfg.optim.optimizer_g, self.G.parameters(), cfg.optim.lr_g, betas)
        self.opt_d = _optimizer(cfg.optim.optimizer_d, self.D.parameters(), cfg.optim.lr_d, betas)
        self.z_generator = torch.Generator(run.device).manual_seed(cfg.seed)
        self.dropout_generator = torch.Generator(run.device).manual_seed(dropout_seed(cfg.seed))
        for layer in self.D.modules():
            if isinstance(layer, Dropout):
                layer.generator = self.dropout_generator
        torch.manual_seed(cfg.seed)  # anything a plugin draws from the global generator
        self.batches = run.data.batches
        self.on_log, self.on_start = on_log, on_start
        self.writer = TrajectoryWriter(run.run_dir / TRAJECTORY, STANDARD_COLUMNS)
        self.result = RunResult(
            run_id=run.run_id, run_dir=str(run.run_dir), method=cfg.method, dataset=cfg.dataset, seed=cfg.seed,
            status="running", budget=asdict(cfg.budget), params_g=count_parameters(self.G),
            params_d=count_parameters(self.D))

    @property
    def live(self) -> bool:
        return self.result.status == "running"

    def noise(self) -> torch.Tensor:
        return torch.randn(self.config.batch_size, self.config.z_dim, device=self.run.device,
                           generator=self.z_generator)

    def trains_generator(self, step: int) -> bool:
        return self.method.trains_generator(step) and self.run.loop_options.trains_generator(step)

    # -- the record ----------------------------------------------------------------------------------------------
    def start(self, step: int) -> None:
        """The trajectory of a run starting at `step`: rows up to a resumed checkpoint kept, the last one (the
        checkpoint's own last row) checked to be there; then the run's `on_start`."""
        last_row = self.result.final.get("step") if step else None
        self.writer.start(resume_after_step=step if step else None,
                          last_row_step=int(last_row) if last_row is not None else None)
        if self.on_start:
            budget = self.config.budget
            self.on_start(RunStart(self.run.run_id, step, budget, budget.expected_steps(self.config.batch_size)))

    def clock(self, steps: int, images: int, wall_s: float) -> None:
        self.result.steps, self.result.images, self.result.wall_s = steps, images, wall_s

    def log_row(self, interval: dict[str, float]) -> dict[str, float]:
        """The trajectory row of the interval just ended (its sums' `interval` row); marks the run diverged when a
        loss or energy in it is not finite."""
        r = self.result
        row = {"step": r.steps, "images": r.images, "wall_s": round(r.wall_s, 3)} | interval
        self.writer.append(row)
        r.final = row
        r.steps_per_s = r.steps / r.wall_s if r.wall_s > 0 else 0.0
        watched = [v for k, v in row.items() if k.startswith(("loss_", "energy_"))]
        if any(v != v or v in (float("inf"), float("-inf")) for v in watched):
            r.status, r.diverged_at_step = "diverged", r.steps
        write_json(self.run.run_dir / RESULT, asdict(r))
        return row

    def finish(self) -> RunResult:
        """Training is over (budget spent or diverged); evaluation is the caller's next step."""
        write_json(self.run.run_dir / RESULT, asdict(self.result))
        return self.result

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def checkpoint(self, interval: dict[str, Any]) -> None:
        """`interval`: the sums since the last row (empty at a row), as `IntervalStats.state_dict` gives them."""
        save_torch(self.run.run_dir / CHECKPOINT, {
            "result": asdict(self.result),
            "generator": self.G.state_dict(), "discriminator": self.D.state_dict(),
            "optimizer_g": self.opt_g.state_dict(), "optimizer_d": self.opt_d.state_dict(),
            "method": self.method.state_dict(), "data": self.batches.state_dict(), "interval": interval,
            "rng": {"torch": torch.get_rng_state(), "z": self.z_generator.get_state(),
                    "dropout": self.dropout_generator.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if self.run.device.type == "cuda" else None},
        })

    def resume(self) -> tuple[int, dict[str, Any] | None]:
        """Load the checkpoint of an interrupted run, if any: (the step to continue from, the interval's sums it
        holds, None for a checkpoint written before intervals were saved, which was taken at a row)."""
        path = self.run.run_dir / CHECKPOINT
        if not path.exists():
            return 0, None
        state = load_checkpoint(path, self.run.device)
        try:
            result = RunResult(**state["result"])
        except (KeyError, TypeError) as err:  # not a checkpoint of a run
            raise corrupt_file_error(path, err) from None
        try:
            self._load(state)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
            raise checkpoint_mismatch_error(path, err) from None  # another method's, architecture's or size's
        self.result = result
        return result.steps, state.get("interval")

    def _load(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.method.load_state_dict(state["method"])
        self.batches.load_state_dict(state["data"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        self.z_generator.set_state(state["rng"]["z"].cpu())
        if "dropout" in state["rng"]:  # checkpoints of runs without dropout masks of their own
            self.dropout_generator.set_state(state["rng"]["dropout"].cpu())
        if state["rng"]["cuda"] is not None and self.run.device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])


@dataclass
class StepOutputs:
    """What one step gives the trajectory, per run: every tensor has a leading run axis (K, or 1 for a run alone)
    and stays on the device."""

    loss_d: torch.Tensor
    energy_real: torch.Tensor  # (K, N)
    energy_fake: torch.Tensor | None = None  # D's generated batch; None on a D-only step
    loss_g: torch.Tensor | None = None  # None on a D-only step
    sse_real: torch.Tensor | None = None  # squared error of D's reconstruction of the real batch, summed
    sse_values: int = 0  # ... over this many values per run
    logged: dict[str, torch.Tensor] = field(default_factory=dict)  # what the method logged (`Method.log`)


class Step:
    """One training step of every live run of a loop. Subclasses do its tensor work (`compute`) and keep the
    runs' own networks, optimisers and method state up to date for the loop's readers (`sync`).

    Shared by both: whether the step trains G, which contract checks it runs (on D's and the losses' outputs on
    the first step, on G's on the first step that trains G), the counters, and the trajectory's sums."""

    def __init__(self, states: list[RunState], stats: IntervalStats):
        self.states, self.stats = states, stats
        self.schedules: ScheduledValues | None = scheduled_values([s.run.loop_options for s in states],
                                                                  states[0].run.device)
        self.generator_trained = any(s.result.generator_steps for s in states)
        self.updates_g = True  # G's weights train in this step (not frozen: generator_frozen_after)
        self.end = states[0].config.budget.expected_steps(states[0].config.batch_size)  # for lr_decay_from

    def __call__(self, step: int, check_contract: bool) -> None:
        """Step `step` (0-based) of every live run. `check_contract`: check the method's outputs (a host sync)."""
        trains_g = self.states[0].trains_generator(step)  # a pack's runs share the method's and phase's settings
        self.updates_g = trains_g and self.states[0].run.loop_options.updates_generator(step)
        check_g = trains_g and not self.generator_trained
        if self.states[0].run.loop_options.lr_decay_from is not None:
            self.set_lr_factor(self.states[0].run.loop_options.lr_factor(step, self.end))
        out = self.compute(step, trains_g, check_contract, check_g)
        self.generator_trained = self.generator_trained or trains_g
        stats = self.stats
        if out.loss_g is not None:
            stats.add_scalar("loss_g", out.loss_g)
        stats.add_scalar("loss_d", out.loss_d)
        stats.add_energy("real", out.energy_real)
        if out.energy_fake is not None:
            stats.add_energy("fake", out.energy_fake)
        if out.sse_real is not None:
            stats.add_squared_error("recon_rmse_real", out.sse_real, out.sse_values)
        for name, value in out.logged.items():
            stats.add_scalar(name, value)
        for state in self.states:
            if state.live:
                if self.updates_g:
                    state.result.generator_steps += 1
                else:
                    state.result.pretrain_steps += 1

    def compute(self, step: int, trains_g: bool, check_d: bool, check_g: bool) -> StepOutputs:
        raise NotImplementedError

    def set_lr_factor(self, factor: float) -> None:
        """Every run's learning rates at `factor` times its configured ones (lr_decay_from), for the coming step."""
        for state in self.states:
            optim = state.config.optim
            for optimizer, lr in ((state.opt_d, optim.lr_d), (state.opt_g, optim.lr_g)):
                for group in optimizer.param_groups:
                    group["lr"] = lr * factor

    def sync(self, modules: bool) -> None:
        """Bring each run's method state (and with `modules`, its networks and optimisers) up to date."""

    def freeze(self, k: int) -> None:
        """Run k diverged: its parameters stay as they are from now on."""


def check_trains_d_alone(state: RunState) -> None:
    """A run whose phase switches G off trains D on real batches alone (`loss_d(real, None)`): a method that cannot
    fails now, in one line, not at the phase's first step. D sees a batch of zeros in eval mode, so neither its
    BatchNorm statistics nor any random stream move."""
    run, method = state.run, copy.deepcopy(state.method)
    images = torch.zeros(run.config.batch_size, *run.data.image_shape, device=run.device)
    was_training = state.D.training
    state.D.eval()
    try:
        with torch.no_grad():
            out = state.D(images)
            loss = method.loss_d(Energies(images, out, method.energy(images, out)), None)
    except Exception as err:  # whatever the method raises: the method's contract, named in one line
        raise MethodContractError(
            f"method {method.name!r} cannot train D without a generated batch (loss_d(real, None) raised "
            f"{type(err).__name__}: {err}), which {GENERATOR_OFF_AFTER} needs once G is off; drop "
            f"{GENERATOR_OFF_AFTER} or give the method a D-only loss") from None
    finally:
        state.D.train(was_training)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise MethodContractError(f"method {method.name!r}: loss_d(real, None) must return a scalar tensor for the "
                                  f"D-only steps of {GENERATOR_OFF_AFTER}")


class Loop:
    """Trains its runs to their budget with `step` (built from the runs as resumed: a pack stacks their weights)."""

    def __init__(self, states: list[RunState], step: Callable[[list[RunState], IntervalStats], Step],
                 on_eval: Callable[[int, float, list[int]], None] | None = None):
        self.states, self.on_eval = states, on_eval  # on_eval(step, wall_s, live run indices): all in one pass
        self.config = states[0].config  # budget and cadences, shared by a pack
        self.stats = IntervalStats(len(states))
        self.start_step = self.resume()
        self.alive = [state.live for state in states]
        off, end = states[0].run.loop_options.generator_off_after, self.config.budget.expected_steps(
            self.config.batch_size)
        if off is not None and (end is None or off < end):  # the budget reaches the phase
            check_trains_d_alone(states[0])
        if states[0].run.loop_options.lr_decay_from is not None and end is None:
            raise ConfigError(f"{LR_DECAY_FROM} decays the learning rates to 0 at the end of the budget, which a "
                              "budget in seconds does not know; give --steps or --images")
        self.step = step(states, self.stats)

    def resume(self) -> int:
        """Every run from its checkpoint (if any); returns the step they continue from."""
        resumed = [state.resume() for state in self.states]
        steps = {step for step, _ in resumed}
        if len(steps) != 1:
            raise ConfigError("the runs of a pack resume from different steps; train them as separate packs")
        if all(interval is not None for _, interval in resumed):
            self.stats.load_state_dicts([interval for _, interval in resumed])
        return steps.pop()

    def live(self) -> list[int]:
        return [k for k, alive in enumerate(self.alive) if alive]

    def train(self) -> list[RunResult]:
        cfg, first = self.config, self.states[0]
        for state in self.states:
            state.start(self.start_step)
        steps, images, wall_before = self.start_step, first.result.images, first.result.wall_s
        started = time.perf_counter()
        done = cfg.budget.exhausted(steps, images, wall_before) or not self.live()
        while not done:
            self.step(steps, check_contract=steps == 0)
            steps += 1
            images += cfg.batch_size
            done = cfg.budget.exhausted(steps, images, wall_before + time.perf_counter() - started)
            logs, checkpoints = steps % cfg.log_every == 0 or done, steps % cfg.checkpoint_every == 0 or done
            evals = self.on_eval is not None and (steps % cfg.eval_every == 0 or done)
            if not (logs or checkpoints or evals):
                continue
            wall_s = wall_before + self._elapsed(started)
            for k in self.live():
                self.states[k].clock(steps, images, wall_s)
            rows = self._log() if logs else []
            if evals or checkpoints:
                self.step.sync(modules=True)
            live = self.live()
            if evals and live:  # before the checkpoint: a run killed in between evaluates this step again
                self.on_eval(steps, wall_s, live)
                started, wall_before = time.perf_counter(), wall_s  # wall_s counts training only
            if checkpoints:
                for k in live:
                    self.states[k].checkpoint(self.stats.state_dict(k))
            for state, row in rows:
                if state.on_log:
                    state.on_log(row)
            done = done or not live
        self.step.sync(modules=True)
        return [state.finish() for state in self.states]

    def _log(self) -> list[tuple[RunState, dict[str, float]]]:
        """Every live run's row (its sums read back in one transfer); a run whose row diverged is frozen."""
        self.step.sync(modules=False)
        live = self.live()
        intervals = self.stats.rows({k: self.states[k].method.state_values() for k in live})
        rows = []
        for k in live:
            state = self.states[k]
            rows.append((state, state.log_row(intervals[k])))
            if not state.live:
                self.alive[k] = False
                self.step.freeze(k)
        return rows

    def _elapsed(self, started: float) -> float:
        if self.states[0].run.device.type == "cuda":  # so wall_s covers the work, not just its launch; logging and
            torch.cuda.synchronize(self.states[0].run.device)  # checkpoints read the device back anyway
        return time.perf_counter() - started
