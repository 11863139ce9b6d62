"""MAGAN (Wang, Chang et al. 2017): EBGAN's losses on a squared-L2 energy with a margin that adapts downwards."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebm_bench.errors import ConfigError

from .base import Energies, Method, require

from .ebgan import ebgan_loss_d, ebgan_loss_g, hinge_active

DEFAULT_PRETRAIN_SHARE = 0.1  # of a step budget, when pretrain_steps is not given
DEFAULT_PRETRAIN_STEPS = 500  # when the budget is in seconds


def squared_energy(images: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """sum over pixels of (x - AE(x))^2 per sample (squared L2, as the authors' code)."""
    return (reconstruction - images).square().flatten(1).sum(dim=1)


def magan_margin_update(margin, sum_real, sum_fake, sum_fake_prev, n_batches: int):
    """The end-of-period rule: m <- S_real / N_b if S_real / N_b < m and S_real < S_gen and S_gen_prev < S_gen.

    Sums are of batch-mean energies over the period. The margin never increases.
    """
    mean_real = sum_real / n_batches
    lower = (mean_real < margin) & (sum_real < sum_fake) & (sum_fake_prev < sum_fake)
    return torch.where(lower, mean_real, margin)


@dataclass
class MAGAN(Method):
    """MAGAN: auto-encoder D pre-trained on data, squared-L2 energy, margin lowered once per period."""

    name = "magan"

    pretrain_steps: int | None = None  # None: 10% of a step budget (500 steps for a time budget)
    period_steps: int | None = None  # None: one pass over the training set

    energy_model = "autoencoder"
    state_names = ("margin", "sum_real", "sum_fake", "sum_fake_prev", "n_batches")

    def validate(self):
        for name in ("pretrain_steps", "period_steps"):
            value = getattr(self, name)
            require(value is None or value >= 1, self.name, f"{name} must be >= 1, got {value}")

    def check_budget(self, expected_steps):
        require(self.pretrain_steps is None or expected_steps is None or self.pretrain_steps < expected_steps,
                self.name, f"pretrain_steps {self.pretrain_steps} is not below the budget of {expected_steps} steps, "
                "so G would never train (pre-training steps count in the budget); lower -o pretrain_steps or raise "
                "the budget")

    def setup(self, context):
        self.check_budget(context.expected_steps)
        if self.pretrain_steps is None:
            budget = context.expected_steps
            self.pretrain_steps = max(1, int(budget * DEFAULT_PRETRAIN_SHARE)) if budget else DEFAULT_PRETRAIN_STEPS
        if self.period_steps is None:
            self.period_steps = context.batches_per_epoch
        if self.pretrain_steps < 1 or self.period_steps < 1:
            raise ConfigError("magan: pretrain_steps and period_steps must be >= 1 (the initial margin is the "
                              "mean real energy after pre-training)")
        zero = torch.zeros((), device=context.device)
        self.margin = zero.clone()
        self.sum_real, self.sum_fake = zero.clone(), zero.clone()
        self.sum_fake_prev = torch.full((), float("inf"), device=context.device)  # the first period never lowers m
        self.n_batches = 0

    def trains_generator(self, step):
        return step >= self.pretrain_steps

    def energy(self, images, out):
        return squared_energy(images, out.reconstruction)

    def loss_d(self, real: Energies, fake: Energies | None):
        if fake is None:  # pre-training: D is a plain auto-encoder of the data
            return real.energy.mean()
        self.log("hinge_active", hinge_active(fake.energy, self.margin))
        return ebgan_loss_d(real.energy, fake.energy, self.margin)

    def loss_g(self, fake: Energies):
        return ebgan_loss_g(fake.energy)

    def end_step(self, step, real, fake_d, fake_g):
        if step < self.pretrain_steps:
            self._end_pretrain_step(step, real)
            return
        self.sum_real = self.sum_real + real.energy.mean()
        self.sum_fake = self.sum_fake + fake_d.energy.mean()
        self.n_batches += 1
        if self.n_batches == self.period_steps:
            self.margin = magan_margin_update(self.margin, self.sum_real, self.sum_fake, self.sum_fake_prev,
                                              self.n_batches)
            self.sum_fake_prev = self.sum_fake
            self._reset_sums()

    def _end_pretrain_step(self, step, real):
        """The initial margin: mean real energy over the last tenth of pre-training, when D is (nearly) trained.

        Averaging the whole of pre-training would include the untrained D's energies, far above the final ones.
        """
        if self.pretrain_steps - step <= max(1, self.pretrain_steps // 10):
            self.sum_real = self.sum_real + real.energy.mean()
            self.n_batches += 1
        if step == self.pretrain_steps - 1:
            self.margin = self.sum_real / self.n_batches
            self._reset_sums()

    def _reset_sums(self):
        self.sum_real = torch.zeros_like(self.sum_real)
        self.sum_fake = torch.zeros_like(self.sum_fake)
        self.n_batches = 0

    def state_values(self):
        return {"margin": self.margin}
