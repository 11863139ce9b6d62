"""The packed step: K runs of one pack key trained as one stacked model, each as it would train alone.

Every parameter, BatchNorm statistic, optimiser moment and method state tensor carries a leading run axis. One
vmap'ed forward computes the K runs' losses; run k's loss depends only on run k's parameters, so one backward of
their sum gives each run its own gradient, and one optimiser step over a flat (K, P) buffer applies each run's lr.

Per run, exactly as solo (the loop, ebm_bench.loop, is the same; only the step differs):
- its batches and noise, from its own generators (K runs' batches are gathered by one index op);
- its dropout masks, drawn from its own generator outside vmap and fed in (`nets.MASK_FEED`);
- its method options where they differ (margin, gamma, ...), scheduled ones included, and its method state;
- its weights, optimiser moments and method state written back to its own modules (`sync`) before the loop's
  checkpoints (in the solo format: a packed run resumes solo and vice versa) and evaluations read them;
- divergence: the loop freezes a diverged run here; its parameters and moments stop, the others go on.
Nothing in a step reads a value back to the host; on a GPU the step replays as a CUDA graph (`StepGraphs`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.func import vmap

from ..datasets import TensorBatches, to_unit_range
from ..errors import ConfigError
from ..interval import IntervalStats
from ..loop import Loop, PreparedRun, RunStart, RunState, Step, StepOutputs
from ..methods import Energies, check_energy, check_loss
from ..nets import MASK_FEED, DOutput, Dropout, dropout_mask
from .graphs import StepGraphs, uses_cuda_graphs
from .plan import pack_key
from .stacked import StackedNet, StackedOptimizer


def _outputs(out: DOutput, prefix: str) -> dict[str, torch.Tensor]:
    """A DOutput as vmap outputs (tensors only), keys prefixed so real and generated do not collide."""
    return {f"{prefix}.{f.name}": getattr(out, f.name).detach() for f in dataclasses.fields(out)
            if getattr(out, f.name) is not None}


def _d_output(outputs: dict[str, torch.Tensor], prefix: str) -> DOutput:
    return DOutput(**{k.split(".", 1)[1]: v for k, v in outputs.items() if k.startswith(prefix + ".")})


def _logged(*sources: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """What the method logged in the step's vmap'ed calls, one value per name as solo keeps it (the last)."""
    return {key[4:]: value for source in sources for key, value in (source or {}).items() if key.startswith("log.")}


def check_packable(runs: list[PreparedRun]) -> None:
    if any(run.config.labels is not None or run.loop_options.lr_decay_from is not None
           or run.loop_options.generator_frozen_after is not None for run in runs):
        raise ConfigError("semi-supervised runs (--labels), lr_decay_from and generator_frozen_after train alone for "
                          "now: use --pack 1 (and --no-cuda-graphs on a GPU)")
    if len({pack_key(run.config) for run in runs}) != 1:
        raise ConfigError("these runs differ in more than seed, float method options, learning rates, betas and "
                          "dropout; they cannot train as one pack (a sweep groups them with --pack auto)")


class PackedStep(Step):
    """The step of K runs of one pack key (resumed from one step), on stacked copies of their networks."""

    def __init__(self, states: list[RunState], stats: IntervalStats):
        runs = [state.run for state in states]
        check_packable(runs)
        super().__init__(states, stats)
        self.runs, self.K = runs, len(runs)
        self.cfg, self.device = runs[0].config, runs[0].device
        self.G = StackedNet([run.generator for run in runs])
        self.D = StackedNet([run.discriminator for run in runs])
        self.graphs = StepGraphs(self.device) if uses_cuda_graphs(runs[0]) else None
        optim, capturable = self.cfg.optim, self.graphs is not None
        self.opt_g = StackedOptimizer(optim.optimizer_g, self.G.flat, [r.config.optim.lr_g for r in runs],
                                      [r.config.optim.beta1 for r in runs], [r.config.optim.beta2 for r in runs],
                                      capturable=capturable)
        self.opt_d = StackedOptimizer(optim.optimizer_d, self.D.flat, [r.config.optim.lr_d for r in runs],
                                      [r.config.optim.beta1 for r in runs], [r.config.optim.beta2 for r in runs],
                                      capturable=capturable)
        self.opt_g.load_from([list(s.opt_g.state.values()) for s in states])
        self.opt_d.load_from([list(s.opt_d.state.values()) for s in states])
        self.method = copy.deepcopy(runs[0].method)  # the template the K runs' values are bound to in vmap
        self.values = self._method_values()
        self.dropout = self._dropout_layers()
        self._shared_images = self._shared_image_tensor()
        self.inputs: dict[str, torch.Tensor] = {}  # one step's draws, in buffers a captured step reads every time

    # -- set-up --------------------------------------------------------------------------------------------------
    def _method_values(self) -> dict[str, torch.Tensor]:
        """Per-run tensors for scheduled options, options that differ between the runs, and tensor state (k_t,
        MAGAN's margin)."""
        methods = [run.method for run in self.runs]
        scheduled = self.schedules.values() if self.schedules is not None else {}
        values = {name: value.clone() for name, value in scheduled.items()}
        for name in methods[0].options():
            column = [getattr(m, name) for m in methods]
            if name in values or all(v == column[0] for v in column):
                continue  # the template keeps the Python value, exactly as solo
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in column):
                raise ConfigError(f"the runs of a pack differ in {self.method.name} option {name!r}, which is not a "
                                  "number; they cannot train as one pack")
            values[name] = torch.tensor(column, dtype=torch.float32, device=self.device)
        for name in type(methods[0]).state_names:
            column = [getattr(m, name) for m in methods]
            if isinstance(column[0], torch.Tensor):
                values[name] = torch.stack(column)
            elif any(v != column[0] for v in column):
                raise ConfigError(f"the runs of a pack differ in {self.method.name} state {name!r}; train them apart")
        return values

    def _dropout_layers(self) -> list[tuple[tuple[int, ...], list[float], list[torch.Generator]]]:
        """Each dropout a D forward applies, in order: its per-sample shape, and each run's rate and generator."""
        if not any(isinstance(m, Dropout) for m in self.runs[0].discriminator.modules()):
            return []
        probe = copy.deepcopy(self.runs[0].discriminator).train()  # a copy: its BatchNorm statistics move
        probe_names = {id(m): name for name, m in probe.named_modules() if isinstance(m, Dropout)}
        recorded: list = []
        MASK_FEED.shapes = recorded
        try:
            with torch.no_grad():
                probe(torch.zeros(self.cfg.batch_size, *self.runs[0].data.image_shape, device=self.device))
        finally:
            MASK_FEED.shapes = None
        layers = []
        for module, shape in recorded:
            name = probe_names[id(module)]
            rates = [state.D.get_submodule(name).p for state in self.states]
            layers.append((tuple(shape), rates, [state.dropout_generator for state in self.states]))
        return layers if any(p > 0 for _, rates, _ in layers for p in rates) else []

    def _shared_image_tensor(self) -> torch.Tensor | None:
        batches = [run.data.batches for run in self.runs]
        if all(isinstance(b, TensorBatches) and b.images is batches[0].images for b in batches):
            return batches[0].images
        return None

    # -- per-step inputs, drawn from each run's own generators, in the order solo draws them -----------------------
    def _fill(self, key: str, parts: list[torch.Tensor]) -> torch.Tensor:
        """`parts` stacked into the buffer `self.inputs[key]`, made on first use and the same tensor every step."""
        buffer = self.inputs.get(key)
        if buffer is None:
            buffer = self.inputs[key] = torch.stack(parts)
        else:
            torch.stack(parts, out=buffer)
        return buffer

    def _draw(self, trains_g: bool) -> None:
        """A step's batches, noise and dropout masks for every run (a replayed step reads them from `inputs`)."""
        if self._shared_images is not None:
            self._fill("index", [s.batches.next_index() for s in self.states])
        else:
            self._fill("real", [s.batches.next() for s in self.states])
        if trains_g:
            self._fill("z_d", [s.noise() for s in self.states])
        for i, parts in enumerate(self._masks() + (self._masks() if trains_g else [])):  # D: real, then generated
            self._fill(f"mask_d{int(trains_g)}.{i}", parts)
        if trains_g:
            for i, parts in enumerate(self._masks()):
                self._fill(f"mask_g.{i}", parts)
            self._fill("z_g", [s.noise() for s in self.states])

    def _input_masks(self, prefix: str) -> list[torch.Tensor]:
        return [self.inputs[f"{prefix}.{i}"] for i in range(len(self.dropout) * (2 if prefix == "mask_d1" else 1))]

    def _masks(self) -> list[list[torch.Tensor]]:
        """One D forward's dropout masks, per layer one per run: run k's from run k's generator, as solo."""
        return [[dropout_mask(shape, p, g, self.device) if p > 0 else torch.ones(shape, device=self.device)
                 for p, g in zip(rates, generators)] for shape, rates, generators in self.dropout]

    # -- the vmap'ed pieces (each sees one run) ----------------------------------------------------------------------
    @contextmanager
    def _bound(self, values: dict[str, torch.Tensor], masks: list[torch.Tensor]) -> Iterator[None]:
        """The template method holds run k's options and state, D gets run k's masks, for one vmap'ed call."""
        saved = {name: getattr(self.method, name) for name in values}
        for name, value in values.items():
            setattr(self.method, name, value)
        MASK_FEED.masks = list(masks) if self.dropout else None
        try:
            yield
        finally:
            MASK_FEED.masks = None
            for name, value in saved.items():
                setattr(self.method, name, value)
            self.method.pop_logged()

    def _energies(self, params, buffers, images) -> Energies:
        out = self.D(params, buffers, images)
        return Energies(images=images, out=out, energy=self.method.energy(images, out))

    def _d_loss(self, params, buffers, values, masks, real, *fake):
        with self._bound(values, masks):
            real_e = self._energies(params, buffers, real)
            fake_e = self._energies(params, buffers, fake[0]) if fake else None
            loss = self.method.loss_d(real_e, fake_e)
            out = {"loss": loss, "energy_real": real_e.energy.detach(), **_outputs(real_e.out, "real")}
            if fake_e is not None:
                out |= {"energy_fake": fake_e.energy.detach(), **_outputs(fake_e.out, "fake")}
            if real_e.out.reconstruction is not None:
                out["sse_real"] = (real_e.out.reconstruction.detach() - real).double().square().sum()
            return out | {f"log.{k}": v for k, v in self.method.pop_logged().items()}

    def _g_loss(self, params_g, buffers_g, params_d, buffers_d, values, masks, z):
        with self._bound(values, masks):
            fake = self.G(params_g, buffers_g, z)
            fake_e = self._energies(params_d, buffers_d, fake)
            loss = self.method.loss_g(fake_e)
            return ({"loss": loss, "energy": fake_e.energy.detach(), "images": fake.detach(),
                     **_outputs(fake_e.out, "fake")} | {f"log.{k}": v for k, v in self.method.pop_logged().items()})

    def _end_step(self, step, has_fake_d, has_fake_g, values, real, real_out, fake_d, fake_d_out, fake_g,
                  fake_g_out):
        """method.end_step for one run; returns its new state tensors and what it logged."""
        with self._bound(values, []):
            self.method.end_step(
                step, Energies(real, _d_output(real_out, "real"), real_out["energy"]),
                Energies(fake_d, _d_output(fake_d_out, "fake"), fake_d_out["energy"]) if has_fake_d else None,
                Energies(fake_g, _d_output(fake_g_out, "fake"), fake_g_out["energy"]) if has_fake_g else None)
            state = {name: getattr(self.method, name) for name in values if name in type(self.method).state_names}
            return state | {f"log.{k}": v for k, v in self.method.pop_logged().items()}

    # -- one step ---------------------------------------------------------------------------------------------------
    def compute(self, step: int, trains_g: bool, check_d: bool, check_g: bool) -> StepOutputs:
        self._draw(trains_g)
        if self.schedules is not None:
            self.schedules.set_step(step)  # outside the graph: a replay reads the counter
        compute = functools.partial(self._tensor_work, step, trains_g, check_d, check_g)
        if self.graphs is None:
            out = compute()
        else:
            out = self.graphs.run(f"g{int(trains_g)}", compute, eager=check_d or check_g)
        d, g = out["d"], out["g"]
        return StepOutputs(loss_d=d["loss"].detach(), energy_real=d["energy_real"], energy_fake=d.get("energy_fake"),
                           loss_g=None if g is None else g["loss"].detach(), sse_real=d.get("sse_real"),
                           sse_values=out["values_per_run"], logged=_logged(d, g, out["end"]))

    def _tensor_work(self, step: int, trains_g: bool, check_d: bool, check_g: bool) -> dict:
        """The step's tensor work, from `self.inputs` to updated parameters, moments and method state: what a CUDA
        graph captures. Returns its outputs (a replayed graph rewrites the same tensors)."""
        inputs = self.inputs
        if self.schedules is not None:
            for name, value in self.schedules.values().items():
                self.values[name].copy_(value)  # in place: a replayed step reads them from the same tensors
        real = (to_unit_range(self._shared_images[inputs["index"]]) if self._shared_images is not None
                else inputs["real"])
        fake = ()
        if trains_g:
            with torch.no_grad():
                fake = (vmap(self.G)(self.G.params, self.G.buffers, inputs["z_d"]),)
        d = vmap(self._d_loss)(self.D.params, self.D.buffers, self.values, self._input_masks(f"mask_d{int(trains_g)}"),
                               real, *fake)
        if check_d:
            self._check(d["energy_real"], "real", d["loss"], "loss_d")
            if fake:
                self._check(d["energy_fake"], "generated", None, "")
        self.opt_d.step(self.D.backward(d["loss"].sum()))

        g = None
        if trains_g:
            g = vmap(self._g_loss)(self.G.params, self.G.buffers, self.D.params, self.D.buffers, self.values,
                                   self._input_masks("mask_g"), inputs["z_g"])
            if check_g:
                self._check(g["energy"], "generated", g["loss"], "loss_g")
            self.opt_g.step(self.G.backward(g["loss"].sum()))

        def outputs(source: dict, energy: str, prefix: str) -> dict[str, torch.Tensor]:
            return {"energy": source[energy]} | {k: v for k, v in source.items() if k.startswith(prefix)}

        end = vmap(functools.partial(self._end_step, step, bool(fake), g is not None))(
            self.values, real, outputs(d, "energy_real", "real."),
            fake[0] if fake else real, outputs(d, "energy_fake", "fake.") if fake else {"energy": d["energy_real"]},
            g["images"] if g else real, outputs(g, "energy", "fake.") if g else {"energy": d["energy_real"]})
        for name, value in end.items():
            if not name.startswith("log."):
                self.values[name].copy_(value)  # in place: a replayed step reads the state from the same tensors
        if self.schedules is not None:
            for name, value in self.schedules.values(1).items():
                self.values[name].copy_(value)  # what the next step uses, and the row after this one shows
        return {"d": d, "g": g, "end": end, "values_per_run": real[0].numel()}

    def _check(self, energy: torch.Tensor, which: str, loss: torch.Tensor | None, loss_name: str) -> None:
        for k in range(self.K):
            check_energy(self.method, energy[k], self.cfg.batch_size, which)
            if loss is not None:
                check_loss(self.method, loss[k], loss_name)

    # -- the loop's side ------------------------------------------------------------------------------------------
    def freeze(self, k: int) -> None:
        self.opt_g.freeze(k)
        self.opt_d.freeze(k)

    def sync(self, modules: bool) -> None:
        """Each run's method state and scheduled options (and with `modules`, its weights and moments) back to its
        own modules. A diverged run keeps what it had, as solo keeps its last checkpoint, not its diverged weights."""
        scheduled = self.schedules.table if self.schedules is not None else {}
        for k, state in enumerate(self.states):
            for name in (*type(self.method).state_names, *scheduled):
                if name in self.values:
                    setattr(state.method, name, self.values[name][k].clone())
                else:
                    setattr(state.method, name, copy.deepcopy(getattr(self.method, name)))
            if not modules or not state.live:
                continue
            self.G.copy_to(k, state.G)
            self.D.copy_to(k, state.D)
            for stacked, opt, module, net in ((self.opt_g, state.opt_g, state.G, self.G),
                                              (self.opt_d, state.opt_d, state.D, self.D)):
                moments = stacked.state_for(k, net.shapes)
                for name, param in module.named_parameters():
                    if name in moments:
                        opt.state[param] = moments[name]


class PackedTrainer(Loop):
    """K prepared runs of one pack key, trained together to their budget: the loop over their packed step.
    `trainer.step(s, check_contract)` takes one step outside the loop (tests, benchmarks)."""

    def __init__(self, runs: list[PreparedRun],
                 on_log: list[Callable[[dict[str, float]], None] | None] | None = None,
                 on_start: list[Callable[[RunStart], None] | None] | None = None,
                 on_eval: Callable[[int, float, list[int]], None] | None = None):
        check_packable(runs)
        on_log, on_start = on_log or [None] * len(runs), on_start or [None] * len(runs)
        super().__init__([RunState(run, on_log[k], on_start[k]) for k, run in enumerate(runs)], PackedStep, on_eval)

    @property
    def graphs(self) -> StepGraphs | None:
        return self.step.graphs

    @property
    def G(self) -> StackedNet:
        return self.step.G

    @property
    def D(self) -> StackedNet:
        return self.step.D
