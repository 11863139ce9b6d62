"""K same-shape modules as one: parameters in a flat (K, P) buffer, and an optimiser stepping each run's row."""

from __future__ import annotations

import copy

import torch
from torch.func import functional_call, stack_module_state

from ..errors import ConfigError


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
