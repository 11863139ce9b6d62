"""Packed training against solo training on real MNIST: every method, BatchNorm and dropout in D, runs differing
in seed, method options, learning rates and betas; resume after a kill; partly finished packs; divergence."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

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
from ebm_bench.train import prepare

SMALL = MLPConfig(n_layer_g=2, size_g=32, n_layer_d=3, size_d=32)  # nLayerD 3: a BatchNorm layer in D
STEPS = 50
# float32: the packed step's batched matmuls and reductions sum in another order than solo's. In a chaotic setting
# no fixed tolerance holds for long (a solo run whose lr moves by 1e-7 drifts as far): these settings are not.
RTOL, ATOL = 1e-3, 1e-5
VARIED = {"gan": ({}, {}),
          "ebgan": ({"margin": 2.0}, {"margin": 5.0}),
          "ebgan-pt": ({"margin": 2.0}, {"margin": 3.0, "pt_weight": 0.2}),
          "began": ({}, {"gamma": 0.7, "lambda_k": 0.01}),
          "magan": ({"pretrain_steps": 10, "period_steps": 15}, {"pretrain_steps": 10, "period_steps": 15})}


def base(mnist_root, out, method="ebgan", steps=STEPS, **overrides) -> RunConfig:
    values = dict(method=method, budget=Budget("steps", steps), batch_size=16, mlp=SMALL, z_dim=16, holdout=200,
                  data_root=str(mnist_root), out=str(out), log_every=5, checkpoint_every=20, n_samples=16,
                  download=False, eval_n=200)
    return RunConfig(**(values | overrides))


def two_runs(mnist_root, out, method) -> list[RunConfig]:
    """Same pack key, different everything else: seed, options, dropout on/off, lr and betas."""
    config = base(mnist_root, out, method)
    scale = 0.1  # at lr 1e-3 these small nets are chaotic by step ~15 (see RTOL)
    lr_d, beta1 = 2e-3, 0.5  # MAGAN's second run: chaotic without dropout in D (its pre-trained auto-encoder)
    return [dataclasses.replace(config, seed=0, method_options=VARIED[method][0], optim=OptimConfig(
                lr_g=1e-3 * scale, lr_d=1e-3 * scale), mlp=dataclasses.replace(SMALL, dropout_d=True)),
            dataclasses.replace(config, seed=1, method_options=VARIED[method][1],
                                optim=OptimConfig(lr_g=5e-4 * scale, lr_d=lr_d * scale, beta1=beta1),
                                mlp=dataclasses.replace(SMALL, dropout_d=method == "magan"))]


def trajectory(result) -> pd.DataFrame:
    return pd.read_csv(f"{result.run_dir}/trajectory.csv").drop(columns="wall_s")


def assert_same_run(solo, packed) -> None:
    assert packed.run_id == solo.run_id and packed.status == solo.status and packed.steps == solo.steps
    a, b = trajectory(solo), trajectory(packed)
    assert list(a.columns) == list(b.columns) and a["step"].tolist() == b["step"].tolist()
    np.testing.assert_allclose(b.to_numpy(float), a.to_numpy(float), rtol=RTOL, atol=ATOL, equal_nan=True)
    assert solo.evaluation.keys() == packed.evaluation.keys()
    for key, value in solo.evaluation.items():
        assert packed.evaluation[key] == pytest.approx(value, rel=RTOL, abs=ATOL), key


@pytest.mark.parametrize("method", ["gan", "ebgan", "ebgan-pt", "began", "magan"])
def test_a_packed_run_trains_as_it_would_alone(mnist_root, tmp_path, method):
    solo = [train_one(c) for c in two_runs(mnist_root, tmp_path / "solo", method)]
    packed = train_pack(two_runs(mnist_root, tmp_path / "packed", method))
    for alone, together in zip(solo, packed):
        assert_same_run(alone, together)
        assert len(trajectory(alone)) == STEPS // 5
    manifest = json.loads((tmp_path / "packed" / packed[1].run_id / "manifest.json").read_text())
    assert manifest["execution"] == {"pack_size": 2, "pack_index": 1, "pack_runs": [r.run_id for r in packed],
                                     "cuda_graphs": False}
    assert json.loads((tmp_path / "solo" / solo[1].run_id / "manifest.json").read_text())["execution"] == {
        "pack_size": 1}


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
    assert manifest["execution"]["pack_size"] == 1  # the one run left trains alone
    assert_same_run(train_one(dataclasses.replace(second, out=str(tmp_path / "alone"))), results[1])


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
    config = base(mnist_root, tmp_path / "packed", "test-blows-up", steps=20, log_every=4, eval_n=0,
                  optim=OptimConfig(lr_g=1e-4, lr_d=1e-4))  # not chaotic (see RTOL)
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
        from ebm_bench.pack import PackedTrainer
        from ebm_bench.train import prepare
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
    reason="on an H100 (2026-11-22) one trajectory column of packed BEGAN was 5% (0.014) from solo within 50 steps: "
           "cuBLAS's batched and single GEMMs sum in different orders and k_t's feedback amplifies it; open"))])
def test_a_packed_run_on_the_gpu_trains_as_it_would_alone_there(mnist_root, tmp_path, method):
    configs = [dataclasses.replace(c, device="cuda", inception_n=0, cuda_graphs=False)
               for c in two_runs(mnist_root, tmp_path / "solo", method)]
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
        assert_same_run(a, b)
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
        alone, alone_provenance = evaluation.evaluate(run)
        assert scores.keys() == alone.keys() and provenance == alone_provenance
        assert scores == pytest.approx(alone, rel=1e-6, abs=1e-9)
