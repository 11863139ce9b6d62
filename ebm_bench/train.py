"""The training loop every method shares: one D step, one G step, the method's state update, logging.

One step, for every method alike:
  D: x ~ data, z_D ~ N(0, I); L_D = method.loss_d(E(x), E(G(z_D)))  (G(z_D) carries no gradient to G)
  G: z_G ~ N(0, I), fresh; L_G = method.loss_g(E(G(z_G)))             (D's weights are frozen, not its graph)
  method.end_step(...)                                                (margin / k_t updates, on the device)
A method can ask for D-only steps (MAGAN's pre-training); they count toward the budget.
Nothing in the step reads a value back to the host; that happens once per logging interval.
Checkpoints come every `checkpoint_every` steps, logging rows or not: a checkpoint between two rows carries the
interval's running sums, so a run resumed from it writes the same next row as one never interrupted.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .config import Budget, RunConfig, config_hash
from .datasets import DatasetSpec, TrainingData, default_data_root, get_dataset
from .device import resolve_device, set_matmul_precision
from .errors import ConfigError
from .files import (
    CHECKPOINT,
    RESULT,
    SCHEMA_VERSION,
    TRAJECTORY,
    checkpoint_mismatch_error,
    corrupt_file_error,
    load_checkpoint,
    save_torch,
    write_json,
)
from .methods import (
    Energies,
    Method,
    SetupContext,
    check_energy,
    check_loss,
    make_method,
)
from .metrics import parse_metric_names
from .nets import Dropout, build_networks, count_parameters
from .trajectory import STANDARD_COLUMNS, IntervalStats, TrajectoryWriter

EVAL_BATCH = 500
N_INCEPTION_GPU = 10000  # Inception metrics are on by default on a GPU (about 6 images/s on a 2-core CPU)


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
    pretrain_steps: int = 0  # D-only steps (MAGAN), included in `steps`
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


def prepare(config: RunConfig) -> PreparedRun:
    """Validate, load data, build method and networks, and resolve the config (its hash names the run)."""
    config.validate()
    if config.metrics is not None:
        parse_metric_names(config.metrics)  # a typo fails now, not after training
    info = get_dataset(config.dataset)
    method = make_method(config.method, config.method_options)  # fails fast on an unknown method or option
    image_size = config.image_size or info.image_sizes[0]
    if image_size not in info.image_sizes:
        raise ConfigError(f"{config.dataset} supports image sizes {info.image_sizes}, not {image_size}")
    device = resolve_device(config.device)
    data_root = Path(config.data_root).expanduser() if config.data_root else default_data_root()
    data = info.load(data_root, image_size, config.batch_size, config.seed, config.holdout, device, config.download)
    method.setup(SetupContext(
        device=device, dataset=config.dataset, image_shape=data.image_shape,
        batch_size=config.batch_size, batches_per_epoch=data.batches.batches_per_epoch,
        expected_steps=config.budget.expected_steps(config.batch_size)))
    config = dataclasses.replace(config, image_size=image_size,
                                 arch=info.default_arch if config.arch == "auto" else config.arch,
                                 optim=config.optim or info.optim(),
                                 inception_n=(N_INCEPTION_GPU if device.type == "cuda" else 0)
                                 if config.inception_n is None else config.inception_n)
    resolved = config.to_dict() | {"device": str(device), "data_root": str(data_root),
                                   "method_options": method.options()}
    run_id = f"{config.method}-{config.dataset}-seed{config.seed}-{config_hash(resolved)[:10]}"

    torch.manual_seed(config.seed)  # G is built first: same seed and sizes give every method the same G
    generator, discriminator = build_networks(config.arch, method.energy_model, data.image_shape, config.z_dim,
                                              config.mlp)
    return PreparedRun(config=config, resolved=resolved, run_id=run_id, run_dir=Path(config.out) / run_id,
                       device=device, spec=info, data=data, method=method, generator=generator.to(device),
                       discriminator=discriminator.to(device))


def dropout_seed(seed: int) -> int:
    """The seed of a run's dropout masks: its own stream, so that masks do not depend on what else draws."""
    return (seed * 2654435761 + 97) % 2**63


def _optimizer(name: str, params, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas)
    return torch.optim.SGD(params, lr=lr)


class Trainer:
    """Trains one prepared run to its budget, logging, checkpointing and resuming."""

    def __init__(self, run: PreparedRun, on_log: Callable[[dict[str, float]], None] | None = None,
                 on_start: Callable[[RunStart], None] | None = None,
                 on_eval: "Callable[[int, float, list[int]], None] | None" = None):
        self.run, self.cfg, self.method = run, run.config, run.method
        self.on_eval = on_eval  # (step, wall_s, [0]) every cfg.eval_every steps and at the end: scores over training
        self.G, self.D = run.generator, run.discriminator
        set_matmul_precision(self.cfg.matmul)
        betas = (self.cfg.optim.beta1, self.cfg.optim.beta2)
        self.opt_g = _optimizer(self.cfg.optim.optimizer_g, self.G.parameters(), self.cfg.optim.lr_g, betas)
        self.opt_d = _optimizer(self.cfg.optim.optimizer_d, self.D.parameters(), self.cfg.optim.lr_d, betas)
        self.z_generator = torch.Generator(run.device).manual_seed(self.cfg.seed)
        self.dropout_generator = torch.Generator(run.device).manual_seed(dropout_seed(self.cfg.seed))
        for layer in self.D.modules():
            if isinstance(layer, Dropout):
                layer.generator = self.dropout_generator
        torch.manual_seed(self.cfg.seed)  # anything a plugin draws from the global generator
        self.batches = run.data.batches
        self.stats = IntervalStats()
        self.on_log, self.on_start = on_log, on_start
        self.writer = TrajectoryWriter(run.run_dir / TRAJECTORY, STANDARD_COLUMNS)
        self.result = RunResult(
            run_id=run.run_id, run_dir=str(run.run_dir), method=self.cfg.method, dataset=self.cfg.dataset,
            seed=self.cfg.seed, status="running", budget=asdict(self.cfg.budget),
            params_g=count_parameters(self.G), params_d=count_parameters(self.D))

    # -- one step ------------------------------------------------------------------------------------------------
    def _noise(self) -> torch.Tensor:
        return torch.randn(self.cfg.batch_size, self.cfg.z_dim, device=self.run.device,
                           generator=self.z_generator)

    def _energies(self, images: torch.Tensor) -> Energies:
        out = self.D(images)
        return Energies(images=images, out=out, energy=self.method.energy(images, out))

    def step(self, step: int, check_contract: bool) -> None:
        """One training step. The method's outputs are checked (a host sync) on the first step (`check_contract`)
        and on the first step that trains G (MAGAN's come after pre-training)."""
        method, batch = self.method, self.cfg.batch_size
        trains_g = method.trains_generator(step)
        check_g = trains_g and self.result.generator_steps == 0
        real = self._energies(self.batches.next())
        fake_d = None
        if trains_g:
            with torch.no_grad():
                fake_images = self.G(self._noise())
            fake_d = self._energies(fake_images)
        loss_d = method.loss_d(real, fake_d)
        if check_contract:
            check_energy(method, real.energy, batch, "real")
            if fake_d is not None:
                check_energy(method, fake_d.energy, batch, "generated")
            check_loss(method, loss_d, "loss_d")
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        fake_g = None
        if trains_g:
            self.D.requires_grad_(False)
            fake_g = self._energies(self.G(self._noise()))
            loss_g = method.loss_g(fake_g)
            if check_g:
                check_energy(method, fake_g.energy, batch, "generated")
                check_loss(method, loss_g, "loss_g")
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            self.D.requires_grad_(True)
            self.stats.add_scalar("loss_g", loss_g)
            self.result.generator_steps += 1
        else:
            self.result.pretrain_steps += 1

        method.end_step(step, _detached(real), _detached(fake_d), _detached(fake_g))
        self.stats.add_scalar("loss_d", loss_d)
        self.stats.add_energy("real", real.energy)
        if fake_d is not None:
            self.stats.add_energy("fake", fake_d.energy)
        if real.out.reconstruction is not None:
            self.stats.add_squared_error("recon_rmse_real", real.out.reconstruction, real.images)
        for name, value in method.pop_logged().items():
            self.stats.add_scalar(name, value)

    # -- the loop ------------------------------------------------------------------------------------------------
    def train(self) -> RunResult:
        start_step = self._resume()
        self.start_trajectory(start_step)
        if self.on_start:
            budget = self.cfg.budget
            self.on_start(RunStart(self.run.run_id, start_step, budget, budget.expected_steps(self.cfg.batch_size)))
        steps, images = start_step, self.result.images
        wall_before = self.result.wall_s
        started = time.perf_counter()
        log_every, checkpoint_every = self.cfg.log_every, self.cfg.checkpoint_every
        done = self.cfg.budget.exhausted(steps, images, wall_before)
        while not done:  # the step that exhausts the budget is always logged and checkpointed
            self.G.train(), self.D.train()
            self.step(steps, check_contract=steps == 0)
            steps += 1
            images += self.cfg.batch_size
            done = self.cfg.budget.exhausted(steps, images, wall_before + time.perf_counter() - started)
            logs, checkpoints = steps % log_every == 0 or done, steps % checkpoint_every == 0 or done
            evals = self.on_eval is not None and (steps % self.cfg.eval_every == 0 or done)
            if logs or checkpoints or evals:
                self._clock(steps, images, wall_before + self._elapsed(started))
            row = self._log_row() if logs else None
            if self.result.status == "diverged":
                break
            if evals:  # before the checkpoint: a run killed in between evaluates this step again on resume
                self.on_eval(steps, self.result.wall_s, [0])
                started, wall_before = time.perf_counter(), self.result.wall_s  # wall_s counts training only
            if checkpoints:
                self._checkpoint()
            if row is not None and self.on_log:
                self.on_log(row)
        return self._finish()

    def start_trajectory(self, start_step: int) -> None:
        """The trajectory file of a run starting at `start_step`: rows up to a resumed checkpoint kept, the last one
        (the checkpoint's own last row) checked to be there."""
        last_row = self.result.final.get("step") if start_step else None
        self.writer.start(resume_after_step=start_step if start_step else None,
                          last_row_step=int(last_row) if last_row is not None else None)

    def _elapsed(self, started: float) -> float:
        if self.run.device.type == "cuda":  # so wall_s covers the work, not just its launch; logging and
            torch.cuda.synchronize(self.run.device)  # checkpoints read the device back anyway
        return time.perf_counter() - started

    def _clock(self, steps: int, images: int, wall_s: float) -> None:
        self.result.steps, self.result.images, self.result.wall_s = steps, images, wall_s

    def _log_row(self) -> dict[str, float]:
        r = self.result
        row = {"step": r.steps, "images": r.images, "wall_s": round(r.wall_s, 3)}
        row.update(self.stats.row(self.method.state_values()))
        self.writer.append(row)
        r.final = row
        r.steps_per_s = r.steps / r.wall_s if r.wall_s > 0 else 0.0
        watched = [v for k, v in row.items() if k.startswith(("loss_", "energy_"))]
        if any(v != v or v in (float("inf"), float("-inf")) for v in watched):
            r.status, r.diverged_at_step = "diverged", r.steps
        write_json(self.run.run_dir / RESULT, asdict(r))
        return row

    def _finish(self) -> RunResult:
        """Training is over (budget spent or diverged); evaluation is the caller's next step."""
        write_json(self.run.run_dir / RESULT, asdict(self.result))
        return self.result

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        save_torch(self.run.run_dir / CHECKPOINT, {
            "result": asdict(self.result),
            "generator": self.G.state_dict(), "discriminator": self.D.state_dict(),
            "optimizer_g": self.opt_g.state_dict(), "optimizer_d": self.opt_d.state_dict(),
            "method": self.method.state_dict(), "data": self.batches.state_dict(),
            "interval": self.stats.state_dict(),  # empty at a logging step; the sums so far between two rows
            "rng": {"torch": torch.get_rng_state(), "z": self.z_generator.get_state(),
                    "dropout": self.dropout_generator.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if self.run.device.type == "cuda" else None},
        })

    def _resume(self) -> int:
        """Load the checkpoint of an interrupted run, if any; returns the step to continue from."""
        path = self.run.run_dir / CHECKPOINT
        if not path.exists():
            return 0
        state = load_checkpoint(path, self.run.device)
        try:
            result = RunResult(**state["result"])
        except (KeyError, TypeError) as err:  # not a checkpoint of a run
            raise corrupt_file_error(path, err) from None
        try:
            self._load_state(state)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
            raise checkpoint_mismatch_error(path, err) from None  # another method's, architecture's or size's
        self.result = result
        return self.result.steps

    def _load_state(self, state: dict[str, Any]) -> None:
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
        if "interval" in state:  # checkpoints written before intervals were saved were all taken at a row
            self.stats.load_state_dict(state["interval"])


def _detached(energies: Energies | None) -> Energies | None:
    if energies is None:
        return None
    return Energies(images=energies.images.detach(), out=energies.out, energy=energies.energy.detach())
