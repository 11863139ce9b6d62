"""Packed training: K runs of one shape trained as one stacked model, each as it would train alone.

Runs pack together when they share everything but what `pack_key` leaves out: seed, float method options
(margin, gamma, lambda_k, pt_weight, ...), learning rates and betas, dropout on or off, and evaluation settings.
Every parameter, BatchNorm statistic, optimiser moment and method state tensor carries a leading run axis. One
vmap'ed forward computes the K runs' losses; run k's loss depends only on run k's parameters, so one backward of
their sum gives each run its own gradient, and one optimiser step over a flat (K, P) buffer applies each run's lr.

Per run, exactly as solo (`train.Trainer`, which each member still is for everything but the step):
- its batches and noise, from its own generators (K runs' batches are gathered by one index op);
- its dropout masks, drawn from its own generator outside vmap and fed in (`nets.MASK_FEED`);
- its trajectory rows, result, checkpoints in the solo format (a packed run resumes solo and vice versa);
- divergence: a run whose row is not finite is recorded as diverged at that step and frozen; the others go on.
Nothing in a step reads a value back to the host; rows and checkpoints do, once per interval, as solo.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import time
from contextlib import contextmanager
from collections.abc import Callable, Iterator

import torch
from torch.func import functional_call, stack_module_state, vmap

from .config import RunConfig
from .datasets import TensorBatches, get_dataset, to_unit_range
from .device import resolve_device
from .errors import ConfigError
from .methods import Energies, check_energy, check_loss, get_method
from .nets import MASK_FEED, DOutput, Dropout, dropout_mask
from .train import PreparedRun, RunResult, RunStart, Trainer
from .trajectory import PackedIntervalStats

_EVALUATION_ONLY = ("seed", "out", "metrics", "eval_n", "inception_n", "n_samples", "inception_weights",
                    "data_root", "download")


def varying_options(method: str) -> set[str]:
    """The options of `method` that may differ within a pack: its float-typed fields (margin, gamma, ...)."""
    cls = get_method(method)
    if not dataclasses.is_dataclass(cls):
        return set()
    return {f.name for f in dataclasses.fields(cls) if str(f.type).replace(" ", "").startswith("float")}


def pack_key(config: RunConfig) -> str:
    """Runs with equal keys can train as one pack: the config without what may differ per run."""
    data = config.to_dict()
    for name in _EVALUATION_ONLY:
        data.pop(name)
    varying = varying_options(config.method)
    data["method_options"] = {k: v for k, v in config.method_options.items() if k not in varying}
    data["mlp"]["dropout_d"] = None
    optim = config.optim or get_dataset(config.dataset).optim()  # None: the dataset's
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


def _column(values: list[float], like: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=like.device).view(-1, *([1] * (like.dim() - 1)))


class StackedNet:
    """The parameters of K same-shape modules in one flat (K, P) buffer, their buffers stacked, a meta template.

    Each parameter is a leaf whose storage lies in `flat`: one optimiser step over `flat` (and its flat gradient)
    updates every parameter of every run in a few calls, not a few per parameter.
    """

    def __init__(self, modules: list[torch.nn.Module]):
        params, self.buffers = stack_module_state(modules)
        self.template = copy.deepcopy(modules[0]).to("meta")
        self.shapes = {name: tuple(p.shape[1:]) for name, p in params.items()}
        self.flat = torch.cat([p.detach().flatten(1) for p in params.values()], dim=1)
        self.grad = torch.empty_like(self.flat)
        self.params, offset = {}, 0
        for name, shape in self.shapes.items():
            size = int(torch.Size(shape).numel())
            self.params[name] = self.flat[:, offset:offset + size].view(-1, *shape).detach().requires_grad_(True)
            offset += size

    def __call__(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], *args):
        return functional_call(self.template, (params, buffers), args)

    def backward(self, loss: torch.Tensor) -> torch.Tensor:
        """The flat gradient of `loss` (summed over runs) with respect to these parameters only."""
        grads = torch.autograd.grad(loss, list(self.params.values()))
        return torch.cat([g.flatten(1) for g in grads], dim=1, out=self.grad)

    def copy_to(self, k: int, module: torch.nn.Module) -> None:
        with torch.no_grad():
            for name, param in module.named_parameters():
                param.copy_(self.params[name][k])
            for name, buffer in module.named_buffers():
                buffer.copy_(self.buffers[name][k])


class StackedOptimizer:
    """Adam or SGD on a (K, P) buffer with each run's lr and betas: torch.optim's formulas, run by run.

    Bias corrections are computed in float64 on the device (torch.optim computes them in float64 on the host), so
    a step never syncs. Runs in `frozen` (diverged) keep their parameters. `capturable`: the step count lives on
    the device and every run is masked by `alive`, so a CUDA graph of `step` replays correctly.
    """

    def __init__(self, kind: str, flat: torch.Tensor, lr: list[float], beta1: list[float], beta2: list[float],
                 eps: float = 1e-8, capturable: bool = False):
        self.kind, self.flat, self.eps, self.capturable = kind, flat, eps, capturable
        self._steps = 0
        self.step_t = torch.zeros((), dtype=torch.float64, device=flat.device) if capturable else None
        # The same value for every run (the usual case): Python floats and torch.optim's fused calls, exactly.
        self.uniform = len(set(lr)) == len(set(beta1)) == len(set(beta2)) == 1 and not capturable
        self.lr, self.beta1, self.beta2 = lr[0], beta1[0], beta2[0]
        self.lr64 = torch.tensor(lr, dtype=torch.float64, device=flat.device)
        self.beta1_64 = torch.tensor(beta1, dtype=torch.float64, device=flat.device)
        self.beta2_64 = torch.tensor(beta2, dtype=torch.float64, device=flat.device)
        self.neg_lr = _column([-x for x in lr], flat)
        self.one_minus_beta1 = _column([1 - b for b in beta1], flat)
        self.beta2_column = _column(beta2, flat)
        self.one_minus_beta2 = _column([1 - b for b in beta2], flat)
        self.exp_avg = torch.zeros_like(flat) if kind == "adam" else None
        self.exp_avg_sq = torch.zeros_like(flat) if kind == "adam" else None
        # (K, 1) bool once a run is frozen; from the start when captured (a graph cannot take a new branch later)
        self.alive = torch.ones(flat.shape[0], 1, dtype=torch.bool, device=flat.device) if capturable else None

    @property
    def steps(self) -> int:
        """Steps taken (read back from the device when capturable: at checkpoints only)."""
        return int(self.step_t.item()) if self.capturable else self._steps

    @steps.setter
    def steps(self, value: int) -> None:
        self._steps = value
        if self.capturable:
            self.step_t.fill_(value)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        if self.capturable:
            self.step_t.add_(1)
            t = self.step_t
        else:
            self._steps += 1
            t = self._steps
        if self.alive is not None:
            grad = torch.where(self.alive, grad, 0.0)  # a frozen run's moments stop too
        if self.kind != "adam":
            update = -self.lr * grad if self.uniform else self.neg_lr * grad
        elif self.uniform:
            beta1, beta2 = self.beta1, self.beta2
            self.exp_avg.lerp_(grad, 1 - beta1)
            self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (self.exp_avg_sq.sqrt() / (1 - beta2 ** t) ** 0.5).add_(self.eps)
            if self.alive is None:
                self.flat.addcdiv_(self.exp_avg, denom, value=-(self.lr / (1 - beta1 ** t)))
                return
            update = -(self.lr / (1 - beta1 ** t)) * (self.exp_avg / denom)
        else:
            self.exp_avg.lerp_(grad, self.one_minus_beta1)
            self.exp_avg_sq.mul_(self.beta2_column).addcmul_(grad, grad * self.one_minus_beta2)
            step_size = (self.lr64 / (1 - self.beta1_64 ** t)).float().view(-1, 1)
            bias_correction2_sqrt = ((1 - self.beta2_64 ** t) ** 0.5).float().view(-1, 1)
            denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            update = -step_size * (self.exp_avg / denom)
        if self.alive is not None:
            update = torch.where(self.alive, update, 0.0)
        self.flat.add_(update)

    def freeze(self, k: int) -> None:
        if self.alive is None:
            self.alive = torch.ones(self.flat.shape[0], 1, dtype=torch.bool, device=self.flat.device)
        self.alive[k] = False  # in place: a captured step sees it

    def state_for(self, k: int, shapes: dict[str, tuple[int, ...]]) -> dict[str, dict[str, torch.Tensor]]:
        """Run k's moments per parameter name, as torch.optim.Adam keeps them (empty before the first step)."""
        steps = self.steps
        if self.kind != "adam" or steps == 0:
            return {}
        state, offset = {}, 0
        for name, shape in shapes.items():
            size = int(torch.Size(shape).numel())
            state[name] = {"step": torch.tensor(float(steps)),
                           "exp_avg": self.exp_avg[k, offset:offset + size].reshape(shape).clone(),
                           "exp_avg_sq": self.exp_avg_sq[k, offset:offset + size].reshape(shape).clone()}
            offset += size
        return state

    def load_from(self, per_run: list[list[dict[str, torch.Tensor]]]) -> None:
        """Moments from each run's torch.optim state (a list of per-parameter dicts, in parameter order)."""
        if self.kind != "adam" or not per_run[0]:
            return
        steps = {int(s["step"]) for states in per_run for s in states}
        if len(steps) != 1:
            raise ConfigError("the runs of a pack resume from different optimiser steps; run them separately")
        self.steps = steps.pop()
        with torch.no_grad():
            self.exp_avg.copy_(torch.stack([torch.cat([s["exp_avg"].flatten() for s in states])
                                            for states in per_run]))
            self.exp_avg_sq.copy_(torch.stack([torch.cat([s["exp_avg_sq"].flatten() for s in states])
                                               for states in per_run]))


def _outputs(out: DOutput, prefix: str) -> dict[str, torch.Tensor]:
    """A DOutput as vmap outputs (tensors only), keys prefixed so real and generated do not collide."""
    return {f"{prefix}.{f.name}": getattr(out, f.name).detach() for f in dataclasses.fields(out)
            if getattr(out, f.name) is not None}


def _d_output(outputs: dict[str, torch.Tensor], prefix: str) -> DOutput:
    return DOutput(**{k.split(".", 1)[1]: v for k, v in outputs.items() if k.startswith(prefix + ".")})


def uses_cuda_graphs(run: PreparedRun) -> bool:
    """Whether this run's packed steps replay as CUDA graphs: on a GPU, unless switched off, for methods whose step
    can be captured once (`Method.replayable`)."""
    return run.device.type == "cuda" and run.config.cuda_graphs and type(run.method).replayable


class StepGraphs:
    """The packed step as CUDA graphs, one per kind of step (with or without a G update).

    A kind runs eagerly for its first WARM_STEPS steps (on a side stream, as capture needs: cuBLAS handles and
    autograd's lazy set-up happen there), is captured on the next, and is replayed from then on. Capturing records
    without running, so the capture step is replayed at once. Inputs are the trainer's buffers, refilled before
    every step; outputs are the tensors the capture returned, rewritten by every replay.
    """

    WARM_STEPS = 2

    def __init__(self, device: torch.device):
        self.stream = torch.cuda.Stream(device)
        self.warm: dict[str, int] = {}
        self.captured: dict[str, tuple[torch.cuda.CUDAGraph, dict]] = {}

    def run(self, kind: str, compute: Callable[[], dict], eager: bool = False) -> dict:
        if kind in self.captured:
            graph, out = self.captured[kind]
            graph.replay()
            return out
        if eager or self.warm.get(kind, 0) < self.WARM_STEPS:
            self.warm[kind] = self.warm.get(kind, 0) + 1
            self.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.stream):
                out = compute()
            torch.cuda.synchronize()  # a few times per pack: the side stream's memory is then free to reuse
            return out
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = compute()
        graph.replay()
        self.captured[kind] = (graph, out)
        return out


class PackedTrainer:
    """Trains K prepared runs of one pack key together, as `Trainer` trains one."""

    def __init__(self, runs: list[PreparedRun],
                 on_log: list[Callable[[dict[str, float]], None] | None] | None = None,
                 on_start: list[Callable[[RunStart], None] | None] | None = None,
                 on_eval: Callable[[int, float, list[int]], None] | None = None):
        keys = {pack_key(run.config) for run in runs}
        if len(keys) != 1:
            raise ConfigError("these runs differ in more than seed, float method options, learning rates, betas and "
                              "dropout; they cannot train as one pack (a sweep groups them with --pack auto)")
        self.runs, self.K = runs, len(runs)
        self.on_eval = on_eval  # (step, wall_s, live run indices): scores over training, all runs in one pass
        self.members = [Trainer(run, on_log=(on_log or [None] * self.K)[k], on_start=(on_start or [None] * self.K)[k])
                        for k, run in enumerate(runs)]
        self.cfg, self.device = runs[0].config, runs[0].device
        self.start_step = self._resume_members()
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
        self.opt_g.load_from([list(m.opt_g.state.values()) for m in self.members])
        self.opt_d.load_from([list(m.opt_d.state.values()) for m in self.members])
        self.method = copy.deepcopy(runs[0].method)  # the template the K runs' values are bound to in vmap
        self.values = self._method_values()
        self.stats = PackedIntervalStats.stack([m.stats for m in self.members])
        self.alive = [m.result.status == "running" for m in self.members]
        self.dropout = self._dropout_layers()
        self._shared_images = self._shared_image_tensor()
        self.inputs: dict[str, torch.Tensor] = {}  # one step's draws, in buffers a captured step reads every time

    # -- set-up --------------------------------------------------------------------------------------------------
    def _resume_members(self) -> int:
        steps = {m._resume() for m in self.members}
        if len(steps) != 1:
            raise ConfigError("the runs of a pack resume from different steps; train them as separate packs")
        return steps.pop()

    def _method_values(self) -> dict[str, torch.Tensor]:
        """Per-run tensors for options that differ between the runs and for tensor state (k_t, MAGAN's margin)."""
        methods = [run.method for run in self.runs]
        values = {}
        for name in methods[0].options():
            column = [getattr(m, name) for m in methods]
            if all(v == column[0] for v in column):
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
            rates = [member.D.get_submodule(name).p for member in self.members]
            layers.append((tuple(shape), rates, [member.dropout_generator for member in self.members]))
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
            self._fill("index", [m.batches.next_index() for m in self.members])
        else:
            self._fill("real", [m.batches.next() for m in self.members])
        if trains_g:
            self._fill("z_d", [m._noise() for m in self.members])
        for i, parts in enumerate(self._masks() + (self._masks() if trains_g else [])):  # D: real, then generated
            self._fill(f"mask_d{int(trains_g)}.{i}", parts)
        if trains_g:
            for i, parts in enumerate(self._masks()):
                self._fill(f"mask_g.{i}", parts)
            self._fill("z_g", [m._noise() for m in self.members])

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
    def step(self, step: int, check_contract: bool) -> None:
        trains_g = self.method.trains_generator(step)
        check_g = trains_g and self.members[0].result.generator_steps == 0
        self._draw(trains_g)
        compute = functools.partial(self._compute, step, trains_g, check_contract, check_g)
        if self.graphs is None:
            out = compute()
        else:
            out = self.graphs.run(f"g{int(trains_g)}", compute, eager=check_contract or check_g)
        self._account(out)

    def _compute(self, step: int, trains_g: bool, check_contract: bool, check_g: bool) -> dict:
        """The step's tensor work, from `self.inputs` to updated parameters, moments and method state: what a CUDA
        graph captures. Returns its outputs (a replayed graph rewrites the same tensors)."""
        inputs = self.inputs
        real = (to_unit_range(self._shared_images[inputs["index"]]) if self._shared_images is not None
                else inputs["real"])
        fake = ()
        if trains_g:
            with torch.no_grad():
                fake = (vmap(self.G)(self.G.params, self.G.buffers, inputs["z_d"]),)
        d = vmap(self._d_loss)(self.D.params, self.D.buffers, self.values, self._input_masks(f"mask_d{int(trains_g)}"),
                               real, *fake)
        if check_contract:
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
        return {"d": d, "g": g, "end": end, "values_per_run": real[0].numel()}

    def _account(self, out: dict) -> None:
        """Counters and the interval's sums, from a step's outputs."""
        d, g, end = out["d"], out["g"], out["end"]
        if g is not None:
            self.stats.add_scalar("loss_g", g["loss"].detach())
            for member in self.members:
                member.result.generator_steps += 1
        else:
            for member in self.members:
                member.result.pretrain_steps += 1
        self.stats.add_scalar("loss_d", d["loss"].detach())
        self.stats.add_energy("real", d["energy_real"])
        if "energy_fake" in d:
            self.stats.add_energy("fake", d["energy_fake"])
        if "sse_real" in d:
            self.stats.add_sum("recon_rmse_real", d["sse_real"], out["values_per_run"])
        for source in (d, g or {}, end):
            for key, value in source.items():
                if key.startswith("log."):
                    self.stats.add_scalar(key[4:], value)

    def _check(self, energy: torch.Tensor, which: str, loss: torch.Tensor | None, loss_name: str) -> None:
        for k in range(self.K):
            check_energy(self.method, energy[k], self.cfg.batch_size, which)
            if loss is not None:
                check_loss(self.method, loss[k], loss_name)

    # -- the loop (as Trainer.train, for K runs) ---------------------------------------------------------------------
    def train(self) -> list[RunResult]:
        for member in self.members:
            member.start_trajectory(self.start_step)
            if member.on_start:
                budget = member.cfg.budget
                member.on_start(RunStart(member.run.run_id, self.start_step, budget,
                                         budget.expected_steps(self.cfg.batch_size)))
        steps, images = self.start_step, self.members[0].result.images
        wall_before = self.members[0].result.wall_s
        started = time.perf_counter()
        budget, log_every, checkpoint_every = self.cfg.budget, self.cfg.log_every, self.cfg.checkpoint_every
        done = budget.exhausted(steps, images, wall_before) or not any(self.alive)
        while not done:
            self.step(steps, check_contract=steps == 0)
            steps += 1
            images += self.cfg.batch_size
            done = budget.exhausted(steps, images, wall_before + time.perf_counter() - started)
            logs, checkpoints = steps % log_every == 0 or done, steps % checkpoint_every == 0 or done
            evals = self.on_eval is not None and (steps % self.cfg.eval_every == 0 or done)
            if not (logs or checkpoints or evals):
                continue
            wall_s = wall_before + self.members[0]._elapsed(started)
            for k, member in enumerate(self.members):
                if self.alive[k]:
                    member._clock(steps, images, wall_s)
            self._sync_method_state()
            parts = self.stats.split(self.K)
            if logs:
                self.stats.reset()
            rows: list[tuple[Trainer, dict[str, float]]] = []
            for k, member in enumerate(self.members):
                if not self.alive[k]:
                    continue
                member.stats = parts[k]
                if logs:
                    rows.append((member, member._log_row()))
                if member.result.status == "diverged":
                    self._freeze(k)
            if evals or checkpoints:
                self._sync_members()
            if evals and any(self.alive):  # every live run in one pass; before the checkpoint, as solo
                self.on_eval(steps, wall_s, [k for k in range(self.K) if self.alive[k]])
                started, wall_before = time.perf_counter(), wall_s
            if checkpoints:
                for k, member in enumerate(self.members):
                    if self.alive[k]:
                        member._checkpoint()
            for member, row in rows:
                if member.on_log:
                    member.on_log(row)
            done = done or not any(self.alive)
        self._sync_members()
        return [member._finish() for member in self.members]

    def _freeze(self, k: int) -> None:
        """A diverged run: recorded (its row has just been written), parameters frozen from now on."""
        self.alive[k] = False
        self.opt_g.freeze(k)
        self.opt_d.freeze(k)

    # -- back to the runs' own modules (checkpoints, rows, evaluation) ---------------------------------------------
    def _sync_method_state(self) -> None:
        for k, member in enumerate(self.members):
            for name in type(self.method).state_names:
                if name in self.values:
                    setattr(member.method, name, self.values[name][k].clone())
                else:
                    setattr(member.method, name, copy.deepcopy(getattr(self.method, name)))

    def _sync_members(self) -> None:
        self._sync_method_state()
        for k, member in enumerate(self.members):
            if not self.alive[k] and member.result.status == "diverged":
                continue  # as solo: a diverged run keeps its last checkpoint, not its diverged weights
            self.G.copy_to(k, member.G)
            self.D.copy_to(k, member.D)
            for stacked, opt, module, net in ((self.opt_g, member.opt_g, member.G, self.G),
                                              (self.opt_d, member.opt_d, member.D, self.D)):
                state = stacked.state_for(k, net.shapes)
                for name, param in module.named_parameters():
                    if name in state:
                        opt.state[param] = state[name]


def describe_packs(packs: list[list[RunConfig]]) -> str:
    """"12 runs in 2 pack(s): 1 x 8, 1 x 4"."""
    sizes: dict[int, int] = {}
    for pack in packs:
        sizes[len(pack)] = sizes.get(len(pack), 0) + 1
    return (f"{sum(len(p) for p in packs)} runs in {len(packs)} pack(s): "
            + ", ".join(f"{count} x {size}" for size, count in sorted(sizes.items(), reverse=True)))


__all__ = ["AUTO_PACK", "PackedTrainer", "StackedNet", "StackedOptimizer", "StepGraphs", "describe_packs", "pack_key",
           "pack_size", "parse_pack", "plan_packs", "uses_cuda_graphs", "varying_options"]
