"""The training loop on real MNIST with small networks: every method, budgets, determinism, resume, divergence."""

import dataclasses
import json
from importlib.metadata import version

import pandas as pd
import pytest
import torch

import ebm_bench
from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.api import matched_configs, run_configs, train_one
from ebm_bench.errors import ConfigError, MethodContractError
from ebm_bench.loop import RunState
from ebm_bench.train import Trainer, prepare

SMALL = MLPConfig(n_layer_g=3, size_g=64, n_layer_d=2, size_d=64)


def small(mnist_root, tmp_path, method="ebgan", steps=12, **overrides):
    values = dict(method=method, budget=Budget("steps", steps), batch_size=16, mlp=SMALL, z_dim=16, holdout=200,
                  data_root=str(mnist_root), out=str(tmp_path / "runs"), log_every=4, checkpoint_every=8,
                  n_samples=16, download=False, eval_n=100)
    return RunConfig(**(values | overrides))


def trajectory(result):
    return pd.read_csv(f"{result.run_dir}/trajectory.csv")


@pytest.mark.parametrize("method", ["gan", "ebgan", "ebgan-pt", "began", "magan"])
def test_each_method_trains_on_real_mnist_and_writes_a_complete_run_record(mnist_root, tmp_path, method):
    result = train_one(small(mnist_root, tmp_path, method))
    assert result.status == "finished" and result.steps == 12 and result.images == 12 * 16
    files = {p.name for p in (tmp_path / "runs" / result.run_id).iterdir()}
    assert {"config.json", "manifest.json", "trajectory.csv", "samples.png", "checkpoint.pt",
            "result.json"} <= files
    assert not [name for name in files if name.endswith(".tmp")]
    frame = trajectory(result)
    assert frame["step"].tolist() == [4, 8, 12]
    for column in ["step", "images", "wall_s", "energy_real_mean", "energy_real_std", "energy_fake_mean",
                   "energy_fake_std", "margin", "k_t", "m_global", "pt", "hinge_active", "loss_d", "loss_g"]:
        assert column in frame.columns
    assert frame["energy_real_mean"].notna().all() and frame["loss_d"].notna().all()
    expected = {"gan": [], "ebgan": ["margin", "hinge_active"], "ebgan-pt": ["margin", "hinge_active", "pt"],
                "began": ["k_t", "m_global"], "magan": ["margin"]}[method]
    for column in expected:
        assert frame[column].notna().iloc[-1], column
    for column in {"margin", "k_t", "m_global", "pt"} - set(expected) - {"hinge_active"}:
        assert frame[column].isna().all(), column
    manifest = json.loads((tmp_path / "runs" / result.run_id / "manifest.json").read_text())
    assert manifest["versions"]["torch"] == version("torch") and manifest["device"] == "cpu"
    assert manifest["seed"] == 0 and len(manifest["data_sha256"]) == 64 and manifest["samples"]["holdout"] == 200
    assert 0.0 <= result.evaluation["energy_auroc"] <= 1.0 and result.params_g > 0 and result.params_d > 0


def test_resolved_config_records_method_defaults(mnist_root, tmp_path):
    result = train_one(small(mnist_root, tmp_path, "magan", steps=10))
    config = json.loads((tmp_path / "runs" / result.run_id / "config.json").read_text())
    assert config["method_options"] == {"pretrain_steps": 1, "period_steps": 59800 // 16}
    assert config["device"] == "cpu" and config["image_size"] == 32


def test_same_seed_gives_an_identical_trajectory_on_cpu(mnist_root, tmp_path):
    a = train_one(small(mnist_root, tmp_path / "a", "ebgan-pt"))
    b = train_one(small(mnist_root, tmp_path / "b", "ebgan-pt"))
    c = train_one(small(mnist_root, tmp_path / "c", "ebgan-pt", seed=1))
    pd.testing.assert_frame_equal(trajectory(a).drop(columns="wall_s"), trajectory(b).drop(columns="wall_s"))
    assert not trajectory(a)["loss_d"].equals(trajectory(c)["loss_d"])


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_trajectory(mnist_root, tmp_path):
    config = small(mnist_root, tmp_path / "whole", "magan", steps=16,
                   method_options={"pretrain_steps": 3, "period_steps": 2},
                   mlp=dataclasses.replace(SMALL, n_layer_d=3, dropout_d=True))  # dropout: the global RNG counts
    whole = train_one(config)

    def interrupt(row):
        if row["step"] == 12:  # after the checkpoint at step 8
            raise KeyboardInterrupt

    resumed_config = dataclasses.replace(config, out=str(tmp_path / "resumed"))
    with pytest.raises(KeyboardInterrupt):
        train_one(resumed_config, on_log=interrupt)
    assert json.loads((tmp_path / "resumed" / whole.run_id / "result.json").read_text())["status"] == "running"
    resumed = train_one(resumed_config)
    assert resumed.status == "finished" and resumed.steps == 16
    pd.testing.assert_frame_equal(trajectory(whole).drop(columns="wall_s"),
                                  trajectory(resumed).drop(columns="wall_s"))


def test_a_finished_run_is_not_trained_again(mnist_root, tmp_path):
    first = train_one(small(mnist_root, tmp_path))
    calls = []
    again = train_one(small(mnist_root, tmp_path), on_log=calls.append)
    assert calls == [] and again.wall_s == first.wall_s


def test_budgets_in_images_and_seconds(mnist_root, tmp_path):
    by_images = train_one(small(mnist_root, tmp_path, budget=Budget("images", 100)))
    assert by_images.steps == 7 and by_images.images == 112
    by_time = train_one(small(mnist_root, tmp_path, budget=Budget("seconds", 0.5)))
    assert by_time.status == "finished" and by_time.wall_s >= 0.5 and by_time.steps > 0


def test_magan_pretraining_counts_toward_the_budget(mnist_root, tmp_path):
    result = train_one(small(mnist_root, tmp_path, "magan", steps=12, method_options={"pretrain_steps": 5}))
    assert (result.steps, result.pretrain_steps, result.generator_steps) == (12, 5, 7)
    frame = trajectory(result)
    assert frame["energy_fake_mean"].isna().iloc[0] and frame["energy_fake_mean"].notna().iloc[-1]


def test_matched_configs_share_everything_but_method_and_seed():
    configs = matched_configs(["gan", "ebgan", "began"], seeds=[0, 1], method_options={"margin": 5.0})
    assert [(c.method, c.seed) for c in configs] == [(m, s) for s in (0, 1) for m in ("gan", "ebgan", "began")]
    assert [c.method_options for c in configs[:3]] == [{}, {"margin": 5.0}, {}]
    strip = [dataclasses.replace(c, method="", seed=0, method_options={}) for c in configs]
    assert all(c == strip[0] for c in strip)
    with pytest.raises(ConfigError, match="gamma"):
        matched_configs(["gan", "ebgan"], method_options={"gamma": 0.7})


def test_every_method_starts_from_the_same_generator(mnist_root, tmp_path):
    g_gan = prepare(small(mnist_root, tmp_path, "gan")).generator.state_dict()
    g_began = prepare(small(mnist_root, tmp_path, "began")).generator.state_dict()
    assert all(torch.equal(g_gan[k], g_began[k]) for k in g_gan)


@ebm_bench.register_method("test-explodes")
class Explodes(ebm_bench.Method):
    """A method whose D loss becomes infinite after three steps."""

    energy_model = "classifier"
    calls = 0

    def energy(self, images, out):
        return -out.logit

    def loss_d(self, real, fake):
        Explodes.calls += 1
        return real.energy.mean() * (float("inf") if Explodes.calls > 3 else 1.0)

    def loss_g(self, fake):
        return fake.energy.mean()


def test_a_diverged_run_is_recorded_and_the_next_run_still_trains(mnist_root, tmp_path):
    Explodes.calls = 0
    configs = [small(mnist_root, tmp_path, "test-explodes"), small(mnist_root, tmp_path, "ebgan")]
    exploded, fine = run_configs(configs, show_progress=False)
    assert exploded.status == "diverged" and exploded.diverged_at_step == 4
    assert json.loads((tmp_path / "runs" / exploded.run_id / "result.json").read_text())["status"] == "diverged"
    assert fine.status == "finished"


@ebm_bench.register_method("test-bad-shape")
class BadShape(ebm_bench.Method):
    energy_model = "autoencoder"

    def energy(self, images, out):
        return (out.reconstruction - images).abs().mean()  # one number for the batch: breaks the contract

    def loss_d(self, real, fake):
        return real.energy

    def loss_g(self, fake):
        return fake.energy


def test_a_method_that_breaks_the_contract_is_named_in_the_error(mnist_root, tmp_path):
    with pytest.raises(MethodContractError, match="'test-bad-shape'.*shape \\(16,\\)"):
        train_one(small(mnist_root, tmp_path, "test-bad-shape"))


def test_unknown_method_and_bad_budget_are_config_errors(mnist_root, tmp_path):
    with pytest.raises(ConfigError, match="known methods: .*began.*ebgan.*gan.*magan"):
        train_one(small(mnist_root, tmp_path, "wgan"))
    with pytest.raises(ConfigError, match="budget"):
        train_one(small(mnist_root, tmp_path, budget=Budget("steps", 0)))
    with pytest.raises(ConfigError, match="budget kind"):
        train_one(small(mnist_root, tmp_path, budget=Budget("epochs", 3)))


def test_d_step_leaves_g_alone_and_g_step_leaves_d_alone(mnist_root, tmp_path):
    trainer = Trainer(prepare(small(mnist_root, tmp_path, "ebgan")))
    seen = {}

    def record(name, optimizer, nets):
        original = optimizer.step

        def step():
            seen[name] = {net: [None if p.grad is None else p.grad.clone() for p in getattr(trainer, net).parameters()]
                          for net in nets}
            original()
        optimizer.step = step

    record("d_step", trainer.opt_d, ("G", "D"))
    record("g_step", trainer.opt_g, ("G", "D"))
    trainer.step(0, check_contract=True)
    assert all(g is None for g in seen["d_step"]["G"])  # generated samples are detached in the D step
    assert all(g is not None and g.abs().sum() > 0 for g in seen["d_step"]["D"])
    assert all(torch.equal(a, b) for a, b in zip(seen["d_step"]["D"], seen["g_step"]["D"]))  # D frozen
    assert all(g is not None and g.abs().sum() > 0 for g in seen["g_step"]["G"])


def test_methods_register_through_the_entry_point_group(monkeypatch):
    from importlib.metadata import EntryPoint

    import ebm_bench.registry as registry_module
    from ebm_bench.methods import METHODS

    entry = EntryPoint(name="ep-gan", value="ebm_bench.methods.gan:GAN", group="ebm_bench.methods")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [entry] if group == "ebm_bench.methods" else [])
    monkeypatch.setattr(METHODS, "_entry_points_loaded", False)
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))
    assert ebm_bench.available_methods()["ep-gan"] is ebm_bench.get_method("gan")
    assert ebm_bench.get_method("gan").name == "gan"


@pytest.mark.slow  # Inception on the CPU
def test_end_of_run_scores_carry_their_provenance(mnist_root, tmp_path, inception_weights, monkeypatch):
    from ebm_bench.metrics import CLASSIFIER_SHA256

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # Inception reference statistics go here

    result = train_one(small(mnist_root, tmp_path, "ebgan", eval_n=120, inception_n=40,
                             inception_weights=str(inception_weights)))
    scores = result.evaluation
    assert scores["n"] == 120 and scores["inception_n"] == 40
    assert 0 <= scores["classes_covered"] <= 10 and scores["mnist_is"] >= 1.0 and scores["fid"] > 0
    assert scores["is"] == pytest.approx(1.0)  # the shared weights' fc layer is zeroed: IS means nothing here
    provenance = result.evaluation_provenance
    assert provenance["classifier_sha256"] == CLASSIFIER_SHA256 and provenance["reference"] == "mnist-test"
    assert len(provenance["inception_weights_sha256"]) == 64 and provenance["torch_fidelity_version"]


def test_checkpoints_come_every_checkpoint_every_steps_even_between_log_rows(mnist_root, tmp_path, monkeypatch):
    saved = []
    original = RunState.checkpoint

    def record(self, interval):
        saved.append(self.result.steps)
        original(self, interval)
    monkeypatch.setattr(RunState, "checkpoint", record)
    result = train_one(small(mnist_root, tmp_path, steps=12, log_every=4, checkpoint_every=3))
    assert saved == [3, 6, 9, 12]  # not coarsened to the logging steps 4, 8, 12
    assert trajectory(result)["step"].tolist() == [4, 8, 12]


def test_a_run_resumed_between_two_log_rows_matches_an_uninterrupted_one(mnist_root, tmp_path):
    """The checkpoint at step 6 lies inside the interval 5..8: it carries that interval's sums so far, so the
    resumed run's row at step 8 (and every row and weight after it) is bitwise the uninterrupted run's."""
    config = small(mnist_root, tmp_path / "whole", "magan", steps=16, log_every=4, checkpoint_every=6,
                   method_options={"pretrain_steps": 3, "period_steps": 2},
                   mlp=dataclasses.replace(SMALL, n_layer_d=3, dropout_d=True))
    whole = train_one(config)

    def interrupt(row):
        if row["step"] == 8:  # after the checkpoint at step 6, before the one at 12
            raise KeyboardInterrupt

    resumed_config = dataclasses.replace(config, out=str(tmp_path / "resumed"))
    with pytest.raises(KeyboardInterrupt):
        train_one(resumed_config, on_log=interrupt)
    checkpoint = tmp_path / "resumed" / whole.run_id / "checkpoint.pt"
    assert torch.load(checkpoint, weights_only=False)["result"]["steps"] == 6
    resumed = train_one(resumed_config)
    assert resumed.status == "finished" and resumed.steps == 16 and resumed.images == whole.images
    pd.testing.assert_frame_equal(trajectory(whole).drop(columns="wall_s"),
                                  trajectory(resumed).drop(columns="wall_s"))
    final = [torch.load(f"{r.run_dir}/checkpoint.pt", weights_only=False) for r in (whole, resumed)]
    for net in ("generator", "discriminator"):
        assert all(torch.equal(final[0][net][k], final[1][net][k]) for k in final[0][net])
