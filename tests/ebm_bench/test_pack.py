"""Packed training against solo training on real MNIST: every method, BatchNorm and dropout in D, runs differing
in seed, method options, learning rates and betas; resume after a kill; partly finished packs; divergence.

A pack sums in another order than solo (batched matmuls and reductions), as another CPU or thread count does, so
packed and solo agree only as far as the dynamics leave float32 rounding small. Two things amplify it (measured on
a 2-core x86 CPU at OMP_NUM_THREADS 1 and 2):
- Adam moves a parameter by about lr whatever its gradient's size, so where the exact gradient is zero rounding
  decides the sign of the step: the bias of a Linear feeding BatchNorm, and, in D with BatchNorm, a first-layer
  weight from a pixel that is background (-1) in the whole batch into a unit active on the whole batch. Packed and
  solo differ there by up to 2 lr a step; the bias shows in eval mode (BatchNorm's running mean follows it), the
  weight as soon as a later batch has ink at that pixel.
- At the default lr these GANs are chaotic: a solo run whose lr moves by one part in 1e7 drifts as far as packed
  from solo (logged values 1.6e-4 of their scale apart after step 2, 3.4e-3 after step 3, 1e-2 by step 10).
So the first steps are compared tightly at the default lr, 100 steps at lr <= 2e-4 without BatchNorm in D loosely,
and the scores of 8 seeds after realistic training as two samples of one distribution (slow).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import ebm_bench
from ebm_bench import Budget, MLPConfig, OptimConfig, RunConfig
from ebm_bench.api import train_one
from ebm_bench.errors import ConfigError
from ebm_bench.pack import PackedTrainer, StackedOptimizer, pack_key, parse_pack, plan_packs
from ebm_bench.runs import train_pack
from ebm_bench.stats import mann_whitney
from ebm_bench.train import prepare

SMALL = MLPConfig(n_layer_g=2, size_g=32, n_layer_d=3, size_d=32)  # nLayerD 3: a BatchNorm layer in D
NO_BN_D = dataclasses.replace(SMALL, n_layer_d=2)  # G keeps its BatchNorm
# the built-in methods (plug-ins that other test modules register during collection live elsewhere)
METHODS = sorted(name for name, cls in ebm_bench.available_methods().items()  # ... that train without labels
                 if cls.__module__.startswith("ebm_bench.methods.") and not cls.needs_labels)
STEPS = 50
VARIED = {"ebgan": ({"margin": 2.0}, {"margin": 5.0}),  # method options of a pack's two runs; others: ({}, {})
          "ebgan-pt": ({"margin": 2.0}, {"margin": 3.0, "pt_weight": 0.2}),
          "began": ({}, {"gamma": 0.7, "lambda_k": 0.01}),
          "magan": ({"pretrain_steps": 10, "period_steps": 15}, {"pretrain_steps": 10, "period_steps": 15}),
          # at the default m = 10 the tiny nets' energies (~2.4) put ae-logistic's L_G in softplus's exponential tail,
          # where its relative rounding is E's absolute rounding: margins near the energies keep it measurable
          "ae-logistic": ({"margin": 2.0}, {"margin": 5.0}),
          "clf-hinge": ({"margin": 2.0}, {"margin": 5.0})}

# The first steps at the default lr, BatchNorm and dropout in D. Measured over every method, seeds 0-5 and
# OMP_NUM_THREADS 1 and 2 (96 runs), against what a run shows when given its pack neighbour's lr, beta1, dropout or
# method options (solo; "a wrong setting" below). Logged values, in units of their column's largest |value|
# (row_differences): 1.4e-5 at step 1 (AE-logistic's loss_g; 3.2e-6 the others; a wrong dropout or options
# 2.1e-3 or more), 1.6e-4 at step 2 (after one update of each net; a wrong lr, dropout or options 1.3e-2 or more).
# Step 3 (3.4e-3) is not compared: rounding-decided Adam steps have met new batches there.
FIRST_STEPS, FIRST_ROW_TOL = 2, {1: 1e-4, 2: 2e-3}
# After each net's first Adam step (first_step_differences), every parameter moved by lr g / (|g| + eps):
# - where |g| is at least GRADIENT_FLOOR of the net's largest, by about lr sign(g): 9.7e-3 lr apart at most (the
#   G of AE-logistic and GAN, whose gradients are small), a wrong lr 0.5 lr or more, a wrong dropout or options 2 lr;
# - elsewhere rounding may decide the sign, and Adam's first step is under lr either way: at most 2 lr apart;
# - Adam's moments, (1 - beta1) g and (1 - beta2) g^2: 1.6e-4 of the net's largest apart, a wrong beta1 0.8;
# - BatchNorm's running variance: equal; its running mean: 0.17 lr, bounded by 0.2 lr (momentum 0.1 times the
#   rounding-decided bias's 2 lr, which D's forward in the G step sees).
GRADIENT_FLOOR = 1e-4
FIRST_STEP_LIMITS = {"decided": 0.1, "undecided": 2.0 + 1e-3, "exp_avg": 1e-3, "exp_avg_sq": 1e-3,
                     "running_var": 1e-6, "running_mean": 0.25}

# 100 steps at lr <= 2e-4 with D free of BatchNorm (with it, packed and solo drifted up to 0.28 apart within 100
# steps: the rounding-decided first-layer weights above). Logged values differ at most by 5.8e-4 (BEGAN, k_t's
# feedback; AE-logistic 1.4e-5, the others 3.3e-7) over every method, seeds 0-5, OMP_NUM_THREADS 1 and 2; giving a run
# its pack neighbour's lr_d, lr_g, beta1, dropout or method options moves it by 0.15 or more: 1e-2 sits 17x above
# the one and 15x below the other. Scores differ by at most 1.2e-3 relative (I', 1e-9 at this stage; the generated
# energy 4.0e-4: G samples in eval mode, where BatchNorm's running mean follows the rounding-decided bias): 2e-2.
SMALL_LR_STEPS, SMALL_LR_ROW_TOL, SMALL_LR_SCORE_TOL = 100, 1e-2, 2e-2


def base(mnist_root, out, method="ebgan", steps=STEPS, **overrides) -> RunConfig:
    values = dict(method=method, budget=Budget("steps", steps), batch_size=16, mlp=SMALL, z_dim=16, holdout=200,
                  data_root=str(mnist_root), out=str(out), log_every=5, checkpoint_every=20, n_samples=16,
                  download=False, eval_n=200)
    return RunConfig(**(values | overrides))


def two_runs(mnist_root, out, method, lr_scale=0.1, mlp=SMALL, options=None, **overrides) -> list[RunConfig]:
    """Same pack key, different everything else: seed, options, dropout on/off, lr and betas. `lr_scale` 1: the
    default lr (1e-3; the second run's D 2e-3); 0.1: lr <= 2e-4, not chaotic when D is free of BatchNorm."""
    config = base(mnist_root, out, method, **overrides)
    options = options or VARIED.get(method, ({}, {}))
    return [dataclasses.replace(config, seed=0, method_options=options[0], optim=OptimConfig(
                lr_g=1e-3 * lr_scale, lr_d=1e-3 * lr_scale), mlp=dataclasses.replace(mlp, dropout_d=True)),
            dataclasses.replace(config, seed=1, method_options=options[1],
                                optim=OptimConfig(lr_g=5e-4 * lr_scale, lr_d=2e-3 * lr_scale, beta1=0.5),
                                mlp=dataclasses.replace(mlp, dropout_d=method == "magan"))]


def trajectory(result) -> pd.DataFrame:
    return pd.read_csv(f"{result.run_dir}/trajectory.csv").drop(columns="wall_s")


def row_differences(solo: pd.DataFrame, packed: pd.DataFrame) -> pd.DataFrame:
    """|packed - solo| per logged value, in units of its column's largest |value| in the solo run, indexed by step:
    means and quantiles that cross zero (a GAN's energies start at +-1e-3) have no relative precision, a column's
    scale is the yardstick."""
    assert list(solo.columns) == list(packed.columns) and solo["step"].tolist() == packed["step"].tolist()
    assert solo.isna().equals(packed.isna()), "a value logged in one run and not in the other"
    scale = solo.abs().max().replace(0.0, 1.0)
    return ((packed - solo).abs() / scale).fillna(0.0).set_index(solo["step"])


def assert_rows_agree(solo, packed, tolerance: float | dict[int, float]) -> None:
    for step, row in row_differences(trajectory(solo), trajectory(packed)).iterrows():
        limit = tolerance if isinstance(tolerance, float) else tolerance[step]
        assert row.max() <= limit, (f"{solo.run_id} step {step}: {row.idxmax()} differs by {row.max():.2e} of its "
                                    f"column's scale (limit {limit:g})")


def assert_same_run(solo, packed, row_tol=SMALL_LR_ROW_TOL, score_tol=SMALL_LR_SCORE_TOL) -> None:
    assert packed.run_id == solo.run_id and packed.status == solo.status and packed.steps == solo.steps
    assert_rows_agree(solo, packed, row_tol)
    assert solo.evaluation.keys() == packed.evaluation.keys()
    for key, value in solo.evaluation.items():
        assert packed.evaluation[key] == pytest.approx(value, rel=score_tol, abs=1e-12), key


def trained_with_checkpoints(train, configs: list[RunConfig]) -> tuple[list, list[dict[int, dict]]]:
    """`train(progress)`'s results and each run's checkpoint after every step (configs checkpoint every step), read
    as its row is logged: a run's checkpoint is written before its row is handed on."""
    checkpoints: list[dict[int, dict]] = [{} for _ in configs]
    run_dirs: list[Path | None] = [None] * len(configs)

    def progress(i):
        def on_log(row):
            checkpoints[i][row["step"]] = torch.load(run_dirs[i] / "checkpoint.pt", weights_only=False)

        def on_start(start):
            run_dirs[i] = Path(configs[i].out) / start.run_id
        return on_log, on_start
    return train(progress), checkpoints


BATCHNORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def first_update(checkpoints: dict[int, dict], part: str) -> dict:
    """The checkpoint right after `part`'s first optimiser step (MAGAN's G takes its first after pre-training)."""
    return next(saved for _, saved in sorted(checkpoints.items())
                if part == "discriminator" or saved["result"]["generator_steps"] == 1)


def first_step_differences(solo: dict[int, dict], packed: dict[int, dict], part: str, lr: float) -> dict[str, float]:
    """How far packed is from solo after `part`'s first Adam step (see FIRST_STEP_LIMITS): parameters whose gradient
    is at least GRADIENT_FLOOR of the net's largest ("decided") and the rest ("undecided"), in units of lr; Adam's
    moments in units of the net's largest; BatchNorm's running variance in units of its largest, running mean of lr.
    The gradient is read from solo's second moment, (1 - beta2) g^2 after one step."""
    optimizer = {"generator": "optimizer_g", "discriminator": "optimizer_d"}[part]
    a, b = first_update(solo, part), first_update(packed, part)
    names = [name for name in a[part] if not name.endswith(BATCHNORM_BUFFERS)]
    moments_a, moments_b = a[optimizer]["state"], b[optimizer]["state"]
    assert len(moments_a) == len(moments_b) == len(names)
    worst = dict.fromkeys(("decided", "undecided", "exp_avg", "exp_avg_sq", "running_var", "running_mean"), 0.0)
    for key in ("exp_avg", "exp_avg_sq"):
        scale = max(state[key].abs().max().item() for state in moments_a.values()) or 1.0  # 0: a net without loss
        worst[key] = max((moments_b[i][key] - moments_a[i][key]).abs().max().item() / scale for i in moments_a)
    gradient = [moments_a[i]["exp_avg_sq"].sqrt() for i in range(len(names))]
    floor = GRADIENT_FLOOR * max(g.max() for g in gradient)
    for name, g in zip(names, gradient):
        difference, decided = (b[part][name] - a[part][name]).abs(), g >= floor
        if decided.any():
            worst["decided"] = max(worst["decided"], difference[decided].max().item() / lr)
        if not decided.all():
            worst["undecided"] = max(worst["undecided"], difference[~decided].max().item() / lr)
    for name, value in a[part].items():
        kind = name.rsplit(".", 1)[-1]
        if kind == "num_batches_tracked":
            assert torch.equal(b[part][name], value), name
        elif kind in ("running_mean", "running_var"):
            difference = (b[part][name] - value).abs().max().item()
            worst[kind] = max(worst[kind], difference / (lr if kind == "running_mean" else value.abs().max().item()))
    return worst


def first_steps_configs(mnist_root, out, method) -> list[RunConfig]:
    """two_runs at the default lr for FIRST_STEPS steps, every step logged and checkpointed; MAGAN pre-trains for
    one step only, so that its G too takes a step."""
    options = [{**o, "pretrain_steps": 1} for o in VARIED["magan"]] if method == "magan" else None
    return two_runs(mnist_root, out, method, lr_scale=1.0, options=options, steps=FIRST_STEPS, log_every=1,
                    checkpoint_every=1, eval_n=0)


@pytest.mark.parametrize("method", METHODS)
def test_a_packed_run_takes_its_first_steps_as_it_would_alone(mnist_root, tmp_path, method):
    solo_configs = first_steps_configs(mnist_root, tmp_path / "solo", method)
    packed_configs = first_steps_configs(mnist_root, tmp_path / "packed", method)
    solo, solo_checkpoints = trained_with_checkpoints(
        lambda progress: [train_one(c, False, *progress(i)) for i, c in enumerate(solo_configs)], solo_configs)
    packed, packed_checkpoints = trained_with_checkpoints(
        lambda progress: train_pack(packed_configs, progress=progress), packed_configs)
    for k, (alone, together) in enumerate(zip(solo, packed)):
        assert together.run_id == alone.run_id and together.steps == alone.steps == FIRST_STEPS
        assert_rows_agree(alone, together, FIRST_ROW_TOL)
        optim = solo_configs[k].optim
        for part, lr in (("generator", optim.lr_g), ("discriminator", optim.lr_d)):
            worst = first_step_differences(solo_checkpoints[k], packed_checkpoints[k], part, lr)
            assert all(worst[key] <= limit for key, limit in FIRST_STEP_LIMITS.items()), (alone.run_id, part, worst)


@pytest.mark.parametrize("method", METHODS)
def test_a_packed_run_trains_as_it_would_alone_at_a_small_lr(mnist_root, tmp_path, method):
    solo = [train_one(c) for c in two_runs(mnist_root, tmp_path / "solo", method, mlp=NO_BN_D, steps=SMALL_LR_STEPS,
                                           log_every=10)]
    packed = train_pack(two_runs(mnist_root, tmp_path / "packed", method, mlp=NO_BN_D, steps=SMALL_LR_STEPS,
                                 log_every=10))
    for alone, together in zip(solo, packed):
        assert_same_run(alone, together)
        assert len(trajectory(alone)) == SMALL_LR_STEPS // 10
    manifest = json.loads((tmp_path / "packed" / packed[1].run_id / "manifest.json").read_text())
    assert manifest["execution"] == {"pack_size": 2, "pack_index": 1, "pack_runs": [r.run_id for r in packed],
                                     "cuda_graphs": False}
    assert json.loads((tmp_path / "solo" / solo[1].run_id / "manifest.json").read_text())["execution"] == {
        "pack_size": 1}


# 8 seeds at the default lr, trained for long enough that each seed's packed and solo trajectories part (a seed's I'
# differed by up to 38% between them, its FID-MNIST by 21%), their final scores compared as two samples.
STAT_SEEDS, STAT_STEPS, STAT_MLP = 8, 400, MLPConfig(n_layer_g=2, size_g=64, n_layer_d=3, size_d=64)
STAT_SCORES, STAT_MARGIN, STAT_P = ("i_prime", "classes_covered", "fid_mnist"), 2.0, 0.002


@pytest.mark.slow  # about a minute on 2 cores: 8 runs of 400 steps alone, then as one pack
def test_eight_seeds_packed_score_as_the_same_eight_seeds_alone(mnist_root, tmp_path):
    """EBGAN, seeds 0-7, 400 steps at lr 1e-3 (G 2x64, D 3x64 with BatchNorm, batch 32), I', classes covered and
    FID-MNIST of 500 samples each. For each score, packed and solo must not be distinguishable:
    - equivalence: |mean packed - mean solo| <= STAT_MARGIN (2) x the pooled between-seed standard deviation;
    - Mann-Whitney U (two-sided, ebm_bench.stats) p > STAT_P (0.002): only U <= 2 of 64 (or >= 62) fails, near
      complete separation of the two groups.
    One machine trains the same numbers every time, so the test cannot flake there. On another CPU each packed run
    is a fresh draw (its trajectory parts from solo anyway): were packing exact, the two groups would be 8 and 8
    draws of one distribution, and the margin fails with probability 0.13% a score (Student t with 14 degrees of
    freedom beyond 4; less still, as a seed's packed and solo runs share initial weights, data order and noise),
    the U test with 8 / 12870 = 0.06%. Measured at OMP_NUM_THREADS 1 (and 2, where every run, solo too, trained
    otherwise): |mean difference| 0.04 (0.67) pooled sd for I', 0.10 (0.00) for classes, 0.29 (0.34) for FID;
    U test p 0.75 (0.14), 1.0 (0.54), 0.75 (0.92).
    """
    configs = [base(mnist_root, tmp_path / "solo", steps=STAT_STEPS, seed=seed, mlp=STAT_MLP, batch_size=32,
                    holdout=500, eval_n=500, log_every=100, checkpoint_every=STAT_STEPS)
               for seed in range(STAT_SEEDS)]
    solo = [train_one(config) for config in configs]
    packed = train_pack([dataclasses.replace(config, out=str(tmp_path / "packed")) for config in configs])
    assert [r.run_id for r in packed] == [r.run_id for r in solo]
    assert json.loads((tmp_path / "packed" / packed[0].run_id / "manifest.json").read_text())["execution"][
        "pack_size"] == STAT_SEEDS
    for score in STAT_SCORES:
        alone = np.array([r.evaluation[score] for r in solo])
        together = np.array([r.evaluation[score] for r in packed])
        pooled = np.sqrt((alone.var(ddof=1) + together.var(ddof=1)) / 2)
        difference = abs(together.mean() - alone.mean())
        p = mann_whitney(together, alone)["p_two_sided"]  # NaN: every value tied, nothing to tell apart
        shown = (f"{score}: alone {alone.round(3).tolist()}, packed {together.round(3).tolist()}, |mean difference| "
                 f"{difference / pooled if pooled else difference:.3f} pooled sd, U test p {p:.3g}")
        print(shown)  # the statistics, for pytest -rP
        assert difference <= STAT_MARGIN * pooled, shown
        assert np.isnan(p) or p > STAT_P, shown


def test_a_killed_pack_resumes_bitwise(mnist_root, tmp_path):
    configs = two_runs(mnist_root, tmp_path / "whole", "began")
    whole = train_pack(configs)

    class Killed(Exception):
        pass

    def progress(i):
        def on_log(row):
            if row["step"] == 25:  # between the checkpoints at 20 and 40: rows 25 are written, then lost
                raise Killed
        return on_log, None

    interrupted = [dataclasses.replace(c, out=str(tmp_path / "killed")) for c in configs]
    with pytest.raises(Killed):
        train_pack(interrupted, progress=progress)
    resumed = train_pack(interrupted)
    for a, b in zip(whole, resumed):
        assert trajectory(a).equals(trajectory(b))
        assert a.evaluation == b.evaluation
        saved_a = torch.load(f"{a.run_dir}/checkpoint.pt", weights_only=False)
        saved_b = torch.load(f"{b.run_dir}/checkpoint.pt", weights_only=False)
        for part in ("generator", "discriminator"):
            assert all(torch.equal(saved_a[part][k], saved_b[part][k]) for k in saved_a[part])
        assert torch.equal(saved_a["optimizer_d"]["state"][0]["exp_avg"], saved_b["optimizer_d"]["state"][0]["exp_avg"])


def test_a_pack_trains_only_its_unfinished_runs_and_a_packed_checkpoint_resumes_solo(mnist_root, tmp_path):
    first, second = two_runs(mnist_root, tmp_path / "runs", "ebgan")
    done = train_one(first)
    stamp = (tmp_path / "runs" / done.run_id / "result.json").stat().st_mtime_ns
    results = train_pack([first, second])
    assert results[0].evaluation == done.evaluation
    assert (tmp_path / "runs" / done.run_id / "result.json").stat().st_mtime_ns == stamp  # only read
    manifest = json.loads((tmp_path / "runs" / results[1].run_id / "manifest.json").read_text())
    assert manifest["execution"]["pack_size"] == 1  # the one run left trains alone, bitwise as solo
    alone = train_one(dataclasses.replace(second, out=str(tmp_path / "alone")))
    assert alone.run_id == results[1].run_id and trajectory(alone).equals(trajectory(results[1]))
    assert alone.evaluation == results[1].evaluation


@ebm_bench.register_method("test-blows-up")
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


def test_a_diverged_run_in_a_pack_is_recorded_and_frozen_while_the_others_go_on(mnist_root, tmp_path):
    config = base(mnist_root, tmp_path / "packed", "test-blows-up", steps=20, log_every=4, eval_n=0, mlp=NO_BN_D,
                  optim=OptimConfig(lr_g=1e-4, lr_d=1e-4))  # not chaotic (see SMALL_LR_ROW_TOL)
    configs = [dataclasses.replace(config, method_options={"blowup": 1.0}),
               dataclasses.replace(config, seed=1)]
    exploded, fine = train_pack(configs)
    assert exploded.status == "diverged" and exploded.diverged_at_step == 4 and exploded.steps == 4
    assert trajectory(exploded)["step"].tolist() == [4]
    stored = json.loads((tmp_path / "packed" / exploded.run_id / "result.json").read_text())
    assert stored["status"] == "diverged" and stored["diverged_at_step"] == 4
    assert fine.status == "finished" and fine.steps == 20
    assert_same_run(train_one(dataclasses.replace(configs[1], out=str(tmp_path / "solo"))), fine)


def test_planning_groups_runs_by_shape_into_packs_of_at_most_k(mnist_root, tmp_path):
    config = base(mnist_root, tmp_path)
    configs = ([dataclasses.replace(config, seed=s, method_options={"margin": m}) for s in range(3) for m in (1, 2)]
               + [dataclasses.replace(config, mlp=dataclasses.replace(SMALL, size_d=64)),
                  dataclasses.replace(config, method="began"),
                  dataclasses.replace(config, optim=OptimConfig(optimizer_d="sgd"))])
    packs = plan_packs(configs, 4)
    assert [len(p) for p in packs] == [4, 2, 1, 1, 1]
    assert pack_key(configs[0]) == pack_key(dataclasses.replace(
        configs[0], seed=9, mlp=dataclasses.replace(SMALL, dropout_d=True), optim=OptimConfig(lr_d=0.1)))
    assert parse_pack("auto") == "auto" and parse_pack("3") == 3
    with pytest.raises(ConfigError, match="--pack takes a number"):
        parse_pack("0")
    with pytest.raises(ConfigError, match="cannot train as one pack"):
        PackedTrainer([prepare(configs[0]), prepare(configs[-2])])


@pytest.mark.parametrize("kind", ["adam", "sgd"])
@pytest.mark.parametrize("capturable", [False, True])
@pytest.mark.parametrize("lrs", [(1e-3, 1e-3, 1e-3), (1e-3, 2e-2, 5e-4)], ids=["same-lr", "per-run-lr"])
def test_the_stacked_optimizer_steps_each_run_as_torch_optim_would(kind, capturable, lrs):
    torch.manual_seed(0)
    beta1 = [0.5, 0.9, 0.5] if len(set(lrs)) > 1 else [0.5] * 3
    start = torch.randn(3, 7)
    grads = [torch.randn(3, 7) for _ in range(6)]
    stacked = StackedOptimizer(kind, start.clone(), list(lrs), beta1, [0.999] * 3, capturable=capturable)
    for step, grad in enumerate(grads):
        if step == 4:
            stacked.freeze(1)  # a diverged run: frozen from here on
        stacked.step(grad)
    assert stacked.steps == len(grads)
    for k in range(3):
        param = torch.nn.Parameter(start[k].clone())
        opt = (torch.optim.Adam([param], lr=lrs[k], betas=(beta1[k], 0.999)) if kind == "adam"
               else torch.optim.SGD([param], lr=lrs[k]))
        for grad in grads[:4] if k == 1 else grads:
            param.grad = grad[k].clone()
            opt.step()
        torch.testing.assert_close(stacked.flat[k], param.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.cuda
@pytest.mark.parametrize("method", ["ebgan", pytest.param("began", marks=pytest.mark.xfail(
    reason="on an H100 (2026-11-22) one trajectory column of packed BEGAN was 5% (0.014) from solo within 50 steps "
           "(BatchNorm in D then): cuBLAS's batched and single GEMMs sum in different orders and k_t's feedback "
           "amplifies it; open"))])
def test_a_packed_run_on_the_gpu_trains_as_it_would_alone_there(mnist_root, tmp_path, method):
    configs = [dataclasses.replace(c, device="cuda", inception_n=0, cuda_graphs=False)
               for c in two_runs(mnist_root, tmp_path / "solo", method, mlp=NO_BN_D, steps=SMALL_LR_STEPS,
                                 log_every=10)]
    solo = [train_one(c) for c in configs]
    packed = train_pack([dataclasses.replace(c, out=str(tmp_path / "packed")) for c in configs])
    for alone, together in zip(solo, packed):
        assert_same_run(alone, together)


@pytest.mark.cuda
@pytest.mark.parametrize("method", ["gan", "ebgan", "ebgan-pt", "began"])
def test_a_graph_replayed_pack_trains_as_the_eagerly_launched_one(mnist_root, tmp_path, method):
    configs = [dataclasses.replace(c, device="cuda", inception_n=0) for c in two_runs(mnist_root, tmp_path, method)]
    eager = train_pack([dataclasses.replace(c, cuda_graphs=False, out=str(tmp_path / "eager")) for c in configs])
    graphs = train_pack([dataclasses.replace(c, out=str(tmp_path / "graphs")) for c in configs])
    for a, b in zip(eager, graphs):
        assert_same_run(a, b, row_tol=1e-3)  # the same kernels, replayed
        assert json.loads((tmp_path / "graphs" / b.run_id / "manifest.json").read_text())["execution"]["cuda_graphs"]
    # the step really is replayed: parameters after 20 steps equal the eager pack's
    trainers = [PackedTrainer([prepare(dataclasses.replace(c, cuda_graphs=on, out=str(tmp_path / f"t{on}")))
                               for c in configs]) for on in (False, True)]
    for trainer in trainers:
        for step in range(20):
            trainer.step(step, check_contract=step == 0)
    assert trainers[1].graphs is not None and set(trainers[1].graphs.captured) == {"g1"}
    for eager_net, graph_net in ((trainers[0].G, trainers[1].G), (trainers[0].D, trainers[1].D)):
        torch.testing.assert_close(graph_net.flat, eager_net.flat, rtol=1e-4, atol=1e-6)


@pytest.mark.cuda
def test_magan_keeps_its_python_state_and_is_never_replayed(mnist_root, tmp_path):
    configs = [dataclasses.replace(c, device="cuda", inception_n=0) for c in two_runs(mnist_root, tmp_path, "magan")]
    assert PackedTrainer([prepare(c) for c in configs]).graphs is None


def test_a_pack_is_evaluated_in_one_classifier_pass_with_the_scores_of_solo_evaluation(mnist_root, tmp_path,
                                                                                      monkeypatch):
    from ebm_bench import evaluate as evaluation
    from ebm_bench.metrics import inputs

    configs = [dataclasses.replace(base(mnist_root, tmp_path, steps=10, eval_n=300), seed=seed) for seed in (0, 1, 2)]
    train_pack(configs)
    runs = [prepare(config) for config in configs]
    for run in runs:  # the trained weights, as the pack left them
        state = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)
        run.generator.load_state_dict(state["generator"])
        run.discriminator.load_state_dict(state["discriminator"])
    seen = {"classifier_outputs": [], "classifier_features": []}

    def counting(name):
        compute = getattr(inputs, name)

        def count(images, *args, **kwargs):
            seen[name].append(len(images))
            return compute(images, *args, **kwargs)
        return count

    for name in seen:
        monkeypatch.setattr(inputs, name, counting(name))
    together = evaluation.evaluate_runs(runs)
    # 3 x 300 samples in batches of 1000 (one pass for log-probabilities and features together), then the 300
    # reference images once, not three times
    assert seen == {"classifier_outputs": [900], "classifier_features": [300]}
    for run, (scores, provenance) in zip(runs, together):
        alone, alone_provenance = evaluation.evaluate_runs([run])[0]
        assert scores.keys() == alone.keys() and provenance == alone_provenance
        assert scores == pytest.approx(alone, rel=1e-6, abs=1e-9)
