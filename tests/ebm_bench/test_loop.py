"""The training loop's contract, alone and packed: schedules (a margin that decays to exactly 0), phases (G switched
off after step N), resume across both, a diverged run's last row and counters. Tiny nets on real MNIST."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

import ebm_bench
from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.errors import ConfigError, MethodContractError
from ebm_bench.pack import PackedTrainer
from ebm_bench.runs import train_one, train_pack
from ebm_bench.schedule import split_options
from ebm_bench.train import Trainer, prepare

SMALL = MLPConfig(n_layer_g=2, size_g=16, n_layer_d=2, size_d=16)
STEPS, END, OFF = 12, 6, 8  # the margin reaches 0 at step 6; G trains in steps 0-7, D alone in steps 8-11
SCHEDULED = {"margin_schedule": f"linear:16:0:{END}", "generator_off_after": OFF}
OTHER = {"margin_schedule": "linear:8:2:3:9", "generator_off_after": OFF}  # another run of the same pack


def tiny(mnist_root, out, seed=0, options=SCHEDULED, method="ebgan", **overrides) -> RunConfig:
    values = dict(method=method, seed=seed, budget=Budget("steps", STEPS), batch_size=16, mlp=SMALL, z_dim=8,
                  holdout=100, data_root=str(mnist_root), out=str(out), log_every=1, checkpoint_every=4,
                  n_samples=16, download=False, eval_n=50, method_options=dict(options))
    return RunConfig(**(values | overrides))


def linear(first: float, last: float, start: int, end: int, step: int) -> float:
    """A linear schedule's value at `step`, as the run holds it (float32)."""
    fraction = min(max((step - start) / (end - start), 0.0), 1.0)
    return float(np.float32(first * (1 - fraction) + last * fraction))


def trajectory(result) -> pd.DataFrame:
    return pd.read_csv(f"{result.run_dir}/trajectory.csv").drop(columns="wall_s")


def checkpoint(result) -> dict:
    return torch.load(f"{result.run_dir}/checkpoint.pt", weights_only=False)


def test_a_scheduled_margin_falls_to_exactly_zero_at_its_end_step_and_stays_there(mnist_root, tmp_path):
    frame = trajectory(train_one(tiny(mnist_root, tmp_path)))
    assert frame["step"].tolist() == list(range(1, STEPS + 1))
    assert frame["margin"].tolist() == [linear(16, 0, 0, END, s) for s in frame["step"]]  # after s steps: step s's
    before = frame.loc[frame["step"] < END, "margin"]
    assert (before > 0).all() and before.is_monotonic_decreasing
    assert frame["margin"].iloc[0] == pytest.approx(16 * 5 / 6)
    assert (frame.loc[frame["step"] >= END, "margin"] == 0.0).all()
    # steps 6 and 7 trained G with a margin of exactly 0: the hinge on generated energies (>= 0) is 0, so D's loss
    # was its real energy alone (float32 mean against the float64 one)
    at_zero = frame[frame["step"].isin([END + 1, OFF])]
    assert at_zero["energy_fake_mean"].notna().all() and (at_zero["hinge_active"] == 0).all()
    np.testing.assert_allclose(at_zero["loss_d"], at_zero["energy_real_mean"], rtol=1e-6)


def _snapshot(trainer) -> tuple[dict, dict]:
    state = trainer.state if isinstance(trainer, Trainer) else None
    if state is not None:
        return ({k: v.clone() for k, v in state.G.state_dict().items()},
                {k: v.clone() for k, v in state.D.state_dict().items()})
    step = trainer.step  # the packed step: every run's parameters and BatchNorm statistics, stacked
    return ({"flat": step.G.flat.clone(), **{k: v.clone() for k, v in step.G.buffers.items()}},
            {"flat": step.D.flat.clone(), **{k: v.clone() for k, v in step.D.buffers.items()}})


def _equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("packed", [False, True], ids=["solo", "packed"])
def test_once_the_phase_starts_g_and_its_optimiser_stay_bitwise_as_they_were_while_d_trains_on(
        mnist_root, tmp_path, packed):
    configs = [tiny(mnist_root, tmp_path), tiny(mnist_root, tmp_path, seed=1, options=OTHER)]
    trainer = PackedTrainer([prepare(c) for c in configs]) if packed else Trainer(prepare(configs[0]))
    g, d = {0: _snapshot(trainer)[0]}, {0: _snapshot(trainer)[1]}
    for step in range(STEPS):
        trainer.step(step, check_contract=step == 0)
        g[step + 1], d[step + 1] = _snapshot(trainer)
    assert not _equal(g[OFF - 1], g[OFF])  # G trained up to its last step
    assert all(_equal(g[OFF], g[s]) for s in range(OFF + 1, STEPS + 1))  # then not even its BatchNorm statistics
    assert all(not _equal(d[s - 1], d[s]) for s in range(OFF + 1, STEPS + 1))  # D trained in every step
    for state in trainer.states:
        assert (state.result.generator_steps, state.result.pretrain_steps) == (OFF, STEPS - OFF)
    if packed:
        assert trainer.step.opt_g.steps == OFF and trainer.step.opt_d.steps == STEPS
    else:
        assert {int(s["step"]) for s in trainer.state.opt_g.state.values()} == {OFF}


def test_a_pack_schedules_and_switches_off_each_run_as_it_would_alone(mnist_root, tmp_path):
    configs = [tiny(mnist_root, tmp_path / "packed"), tiny(mnist_root, tmp_path / "packed", seed=1, options=OTHER)]
    packed = train_pack(configs)
    for config, together in zip(configs, packed):
        alone = train_one(dataclasses.replace(config, out=str(tmp_path / "solo")))
        a, b = trajectory(alone), trajectory(together)
        assert a["margin"].tolist() == b["margin"].tolist()  # each run's own schedule, to the bit
        assert a["energy_fake_mean"].isna().tolist() == b["energy_fake_mean"].isna().tolist()
        assert b.loc[b["step"] > OFF, ["energy_fake_mean", "loss_g"]].isna().all().all()
        assert (together.generator_steps, together.pretrain_steps) == (alone.generator_steps, alone.pretrain_steps)
    assert trajectory(packed[1])["margin"].tolist() == [linear(8, 2, 3, 9, s) for s in range(1, STEPS + 1)]


@pytest.mark.parametrize("packed, interrupt_at", [(False, 5), (True, 10)], ids=["solo-before", "packed-inside"])
def test_a_run_resumed_across_the_schedule_s_end_and_the_phase_matches_an_uninterrupted_one(
        mnist_root, tmp_path, packed, interrupt_at):
    """Checkpoints every 3 steps: interrupted at row 5, a run resumes from step 3, before the margin reaches 0 and
    G stops; at row 10, from step 9, inside the phase. Either way every row, weight and counter is bitwise."""

    def configs(out):
        runs = [tiny(mnist_root, out, checkpoint_every=3), tiny(mnist_root, out, seed=1, options=OTHER,
                                                                checkpoint_every=3)]
        return runs if packed else runs[:1]

    def train(out, on_log=None):
        if packed:
            return train_pack(configs(out), progress=lambda i: (on_log, None))
        return [train_one(configs(out)[0], on_log=on_log)]

    def interrupt(row):
        if row["step"] == interrupt_at:
            raise KeyboardInterrupt

    whole = train(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "resumed", on_log=interrupt)
    stopped = torch.load(f"{tmp_path}/resumed/{whole[0].run_id}/checkpoint.pt", weights_only=False)
    assert stopped["result"]["steps"] == interrupt_at // 3 * 3
    resumed = train(tmp_path / "resumed")
    for a, b in zip(whole, resumed):
        assert trajectory(a).equals(trajectory(b))
        assert (a.steps, a.generator_steps, a.pretrain_steps) == (b.steps, b.generator_steps, b.pretrain_steps)
        saved_a, saved_b = checkpoint(a), checkpoint(b)
        for part in ("generator", "discriminator"):
            assert _equal(saved_a[part], saved_b[part])
        assert a.evaluation == b.evaluation


def test_schedules_and_phases_are_part_of_the_run_s_identity(mnist_root, tmp_path):
    scheduled = prepare(tiny(mnist_root, tmp_path))
    assert scheduled.resolved["method_options"] == {"margin": 16.0, "margin_schedule": f"linear:16.0:0.0:{END}",
                                                    "generator_off_after": OFF}
    respelled = prepare(tiny(mnist_root, tmp_path, options={"margin": 16, "margin_schedule": f"linear:16.0:0:0:{END}",
                                                            "generator_off_after": float(OFF)}))
    plain = prepare(tiny(mnist_root, tmp_path, options={"margin": 16.0}))
    phase_only = prepare(tiny(mnist_root, tmp_path, options={"margin": 16.0, "generator_off_after": OFF}))
    assert respelled.run_id == scheduled.run_id
    assert len({scheduled.run_id, plain.run_id, phase_only.run_id}) == 3
    # a resolved config (config.json) holds the option beside its schedule: read back, it is the same run
    assert prepare(dataclasses.replace(tiny(mnist_root, tmp_path), method_options=scheduled.resolved[
        "method_options"])).run_id == scheduled.run_id


@pytest.mark.parametrize("options, message", [
    ({"margin_schedule": "linear:16:0"}, "is not a schedule: write linear:FROM:TO:END"),
    ({"margin_schedule": "cosine:16:0:100"}, "is not a schedule"),
    ({"margin_schedule": "linear:big:0:100"}, "must be numbers"),
    ({"margin_schedule": "linear:16:0:100:100"}, "0 <= START < END"),
    ({"margin_schedule": "linear:16:0:2.5"}, "whole numbers of steps"),
    ({"margin_schedule": "linear:inf:0:100"}, "finite"),
    ({"margin": 10.0, "margin_schedule": "linear:16:0:100"}, "disagree; give only the schedule"),
    ({"generator_off_after": 0}, "generator_off_after must be a whole number of steps >= 1"),
    ({"generator_off_after": "soon"}, "generator_off_after must be a whole number"),
    ({"generator_frozen_after": 0}, "generator_frozen_after must be a whole number of steps >= 1"),
    ({"generator_frozen_after": 2.5}, "generator_frozen_after must be a whole number"),
])
def test_a_bad_schedule_or_phase_is_one_line_naming_the_fix(options, message):
    with pytest.raises(ConfigError, match=message) as error:
        split_options("ebgan", options)
    assert "\n" not in str(error.value)
    assert split_options("magan", {"pretrain_steps_schedule": "linear:1:0:5"})[0] == {
        "pretrain_steps_schedule": "linear:1:0:5"}  # not a float option: left to the method, which refuses it


def test_a_method_that_cannot_train_d_alone_is_refused_before_its_first_step(mnist_root, tmp_path):
    config = tiny(mnist_root, tmp_path, method="gan", options={"generator_off_after": OFF})  # GAN's loss_d needs G
    with pytest.raises(MethodContractError, match="'gan' cannot train D without a generated batch") as error:
        train_one(config)
    assert "\n" not in str(error.value)
    assert not (tmp_path / prepare(config).run_id / "trajectory.csv").exists()


@ebm_bench.register_method("test-loop-blows-up")
@dataclass
class BlowsUp(ebm_bench.Method):
    """A GAN whose D loss turns infinite from its fourth step on when `blowup` > 0 (a per-run option)."""

    blowup: float = 0.0
    energy_model = "classifier"
    state_names = ("steps_done",)

    def setup(self, context):
        self.steps_done = torch.zeros((), device=context.device)

    def energy(self, images, out):
        return -out.logit

    def loss_d(self, real, fake):
        explodes = (self.steps_done >= 3) & (self.steps_done * 0 + self.blowup > 0)
        return (real.energy.mean() - fake.energy.mean()) * torch.where(explodes, float("inf"), 1.0)

    def loss_g(self, fake):
        return fake.energy.mean()

    def end_step(self, step, real, fake_d, fake_g):
        self.steps_done = self.steps_done + 1


def test_a_diverged_run_s_row_reaches_on_log_and_its_counters_stop_alone_and_packed(mnist_root, tmp_path):
    config = tiny(mnist_root, tmp_path / "solo", method="test-loop-blows-up", options={"blowup": 1.0},
                  budget=Budget("steps", 8))
    rows = []
    alone = train_one(config, on_log=rows.append)
    assert alone.status == "diverged" and alone.diverged_at_step == 4 and [r["step"] for r in rows] == [1, 2, 3, 4]
    packed = train_pack([dataclasses.replace(config, out=str(tmp_path / "packed")),
                         dataclasses.replace(config, out=str(tmp_path / "packed"), seed=1, method_options={})])
    assert packed[0].status == "diverged" and packed[1].status == "finished" and packed[1].steps == 8
    assert (packed[0].steps, packed[0].generator_steps) == (alone.steps, alone.generator_steps) == (4, 4)


def test_a_frozen_generator_still_draws_d_s_samples(mnist_root, tmp_path):
    """generator_frozen_after=N: G trains in steps 0..N-1; from step N D trains on against that frozen G's samples
    (the D at its optimum for a fixed G that the GAN critique reasons about)."""
    frozen_at, options = 4, {"margin": 4.0, "generator_frozen_after": 4}
    whole = train_one(tiny(mnist_root, tmp_path / "whole", options=options, checkpoint_every=frozen_at))
    assert whole.generator_steps == frozen_at and whole.pretrain_steps == STEPS - frozen_at
    frame = trajectory(whole)
    assert frame["energy_fake_mean"].notna().all()  # D saw generated samples in every step
    assert frame.loc[frame["step"] > frozen_at, "loss_g"].isna().all()  # ... and G trained in none after N
    stopped = train_one(tiny(mnist_root, tmp_path / "short", options=options, budget=Budget("steps", frozen_at)))
    end, at_n = checkpoint(whole), checkpoint(stopped)
    weights = [k for k in at_n["generator"] if "running_" not in k and "num_batches" not in k]  # BN's statistics
    assert weights and all(torch.equal(end["generator"][k], at_n["generator"][k]) for k in weights)  # as at step N
    assert not all(torch.equal(end["discriminator"][k], at_n["discriminator"][k]) for k in at_n["discriminator"])
    with pytest.raises(ConfigError, match="generator_frozen_after train alone for now: use --pack 1"):
        train_pack([tiny(mnist_root, tmp_path / "pack", seed=s, options=options) for s in (0, 1)])
