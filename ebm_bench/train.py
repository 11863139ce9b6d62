"""A run prepared for training, and the step every method shares when it trains alone.

One step, for every method alike:
  D: x ~ data, z_D ~ N(0, I); L_D = method.loss_d(E(x), E(G(z_D)))  (G(z_D) carries no gradient to G)
  G: z_G ~ N(0, I), fresh; L_G = method.loss_g(E(G(z_G)))             (D's weights are frozen, not its graph)
  method.end_step(...)                                                (margin / k_t updates, on the device)
A D-only step (MAGAN's pre-training, a phase with G off) gives loss_d no generated batch and leaves G and its
optimiser alone; it counts toward the budget. Nothing in the step reads a value back to the host.
The loop around the step (budget, rows, checkpoints, resume, evaluation) is ebm_bench.loop's, for a run alone as
for a pack (ebm_bench.pack's step trains K runs at once).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import torch

from .config import RunConfig, config_hash
from .datasets import LabelledBatch, default_data_root, semi_supervised
from .device import resolve_device
from .interval import IntervalStats
from .loop import Loop, PreparedRun, RunResult, RunStart, RunState, Step, StepOutputs
from .methods import Energies, SetupContext, check_energy, check_loss
from .nets import build_networks
from .resolve import resolve

EVAL_BATCH = 500
N_INCEPTION_GPU = 10000  # Inception metrics are on by default on a GPU (about 6 images/s on a 2-core CPU)


def prepare(config: RunConfig) -> PreparedRun:
    """The run ready to train: its config resolved (ebm_bench.resolve), then what needs the machine (device, data
    root, Inception N) and the data (loaded, and the method set up for it); the resolved config's hash names it."""
    resolved_run = resolve(config)
    config, info, method, loop_options = resolved_run.config, resolved_run.spec, resolved_run.method, \
        resolved_run.loop_options
    device = resolve_device(config.device)
    data_root = Path(config.data_root).expanduser() if config.data_root else default_data_root()
    data = info.load(data_root, config.image_size, config.batch_size, config.seed, config.holdout, device,
                     config.download)
    if config.labels is not None:  # semi-supervised: batches of labelled + unlabelled images
        data = semi_supervised(data, config.dataset, config.labels, config.batch_size, config.seed, device)
    method.setup(SetupContext(
        device=device, dataset=config.dataset, image_shape=data.image_shape,
        batch_size=config.batch_size, batches_per_epoch=data.batches.batches_per_epoch,
        expected_steps=config.budget.expected_steps(config.batch_size)))
    config = dataclasses.replace(config, inception_n=(N_INCEPTION_GPU if device.type == "cuda" else 0)
                                 if config.inception_n is None else config.inception_n)
    resolved = config.to_dict() | {"device": str(device), "data_root": str(data_root),
                                   "method_options": method.options() | loop_options.options()}
    run_id = f"{config.method}-{config.dataset}-seed{config.seed}-{config_hash(resolved)[:10]}"

    torch.manual_seed(config.seed)  # G is built first: same seed and sizes give every method the same G
    generator, discriminator = build_networks(config.arch, method.energy_model, data.image_shape, config.z_dim,
                                              config.mlp)
    return PreparedRun(config=config, resolved=resolved, run_id=run_id, run_dir=Path(config.out) / run_id,
                       device=device, spec=info, data=data, method=method, generator=generator.to(device),
                       discriminator=discriminator.to(device), loop_options=loop_options)


class SoloStep(Step):
    """The step of one run, on its own networks and optimisers."""

    def __init__(self, states: list[RunState], stats: IntervalStats):
        super().__init__(states, stats)
        (self.state,) = states
        self.method, self.G, self.D = self.state.method, self.state.G, self.state.D

    def _energies(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> Energies:
        out = self.D(images)
        return Energies(images=images, out=out, energy=self.method.energy(images, out), labels=labels)

    def _schedule(self, offset: int) -> None:
        for name, value in self.schedules.values(offset).items():
            setattr(self.method, name, value[0])

    def compute(self, step: int, trains_g: bool, check_d: bool, check_g: bool) -> StepOutputs:
        state, method, batch = self.state, self.method, self.state.config.batch_size
        self.G.train(), self.D.train()  # an evaluation between two steps leaves them in eval mode
        if self.schedules is not None:
            self.schedules.set_step(step)
            self._schedule(0)
        batch_images = state.batches.next()
        if isinstance(batch_images, LabelledBatch):  # a semi-supervised batch: its labels go to the losses
            real = self._energies(batch_images.images, batch_images.labels)
        else:
            real = self._energies(batch_images)
        fake_d = None
        if trains_g:
            with torch.no_grad():
                fake_images = self.G(state.noise())
            fake_d = self._energies(fake_images)
        loss_d = method.loss_d(real, fake_d)
        if check_d:
            check_energy(method, real.energy, len(real.images), "real")  # a semi-supervised batch is 2 x batch
            if fake_d is not None:
                check_energy(method, fake_d.energy, batch, "generated")
            check_loss(method, loss_d, "loss_d")
        state.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        state.opt_d.step()

        fake_g = loss_g = None
        if trains_g and self.updates_g:  # a frozen G (generator_frozen_after) draws D's samples, and trains no more
            self.D.requires_grad_(False)
            fake_g = self._energies(self.G(state.noise()))
            loss_g = method.loss_g(fake_g)
            if check_g:
                check_energy(method, fake_g.energy, batch, "generated")
                check_loss(method, loss_g, "loss_g")
            state.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            state.opt_g.step()
            self.D.requires_grad_(True)

        method.end_step(step, _detached(real), _detached(fake_d), _detached(fake_g))
        if self.schedules is not None:
            self._schedule(1)  # what the next step uses, and the row after this one shows
        reconstruction = real.out.reconstruction
        return StepOutputs(
            loss_d=loss_d.detach().view(1), energy_real=real.energy.detach().view(1, -1),
            energy_fake=None if fake_d is None else fake_d.energy.detach().view(1, -1),
            loss_g=None if loss_g is None else loss_g.detach().view(1),
            sse_real=None if reconstruction is None else
            (reconstruction.detach() - real.images).double().square().sum().view(1),
            sse_values=real.images.numel(), logged={k: v.view(1) for k, v in method.pop_logged().items()})


def _detached(energies: Energies | None) -> Energies | None:
    if energies is None:
        return None
    return Energies(images=energies.images.detach(), out=energies.out, energy=energies.energy.detach(),
                    labels=energies.labels)


class Trainer(Loop):
    """One prepared run, trained to its budget: the loop over its solo step. `trainer.step(s, check_contract)`
    takes one step outside the loop (tests, benchmarks)."""

    def __init__(self, run: PreparedRun, on_log: Callable[[dict[str, float]], None] | None = None,
                 on_start: Callable[[RunStart], None] | None = None,
                 on_eval: Callable[[int, float, list[int]], None] | None = None):
        self.state = RunState(run, on_log=on_log, on_start=on_start)
        super().__init__([self.state], SoloStep, on_eval)
        self.G, self.D, self.opt_g, self.opt_d = self.state.G, self.state.D, self.state.opt_g, self.state.opt_d

    @property
    def result(self) -> RunResult:
        return self.state.result

    def checkpoint(self) -> None:
        self.state.checkpoint(self.stats.state_dict(0))


# PreparedRun, RunResult, RunStart and Energies are ebm_bench.loop's and ebm_bench.methods'; importers still reach
# them here until they import from there
__all__ = ["EVAL_BATCH", "N_INCEPTION_GPU", "Energies", "PreparedRun", "RunResult", "RunStart", "SoloStep", "Trainer",
           "prepare"]
