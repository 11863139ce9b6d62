"""End-of-run evaluation: energies as training computes them, and the metrics a run can supply."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch

from ebm_bench.evaluate import chosen_metrics, energies
from ebm_bench.metrics import METRICS
from ebm_bench.nets import Dropout

_spec = importlib.util.spec_from_file_location(
    "method_contract", Path(__file__).resolve().parents[1] / "methods" / "test_contract.py")
method_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(method_contract)


def batchnorm_run(tmp_path):
    run = method_contract.tiny_run("ebgan", tmp_path / "run")  # D: 3 layers, so BatchNorm after the second
    run.discriminator.apply(lambda m: setattr(m, "p", 0.0) if isinstance(m, Dropout) else None)
    trainer = method_contract.Trainer(run)
    for step in range(5):  # running statistics now mix real and generated batches
        trainer.step(step, check_contract=False)
    return run


def test_energies_use_batch_statistics_and_leave_running_statistics_untouched(tmp_path):
    run = batchnorm_run(tmp_path)
    images = torch.rand(24, 1, 8, 8) * 2 - 1
    before = {k: v.clone() for k, v in run.discriminator.state_dict().items()}
    got = energies(run, images)
    after = run.discriminator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running mean, var and count unchanged

    train_mode = copy.deepcopy(run.discriminator).train()
    with torch.no_grad():
        expected = torch.cat([run.method.energy(chunk, train_mode(chunk)) for chunk in images.split(8)])
        eval_mode = copy.deepcopy(run.discriminator).eval()
        running = torch.cat([run.method.energy(chunk, eval_mode(chunk)) for chunk in images.split(8)])
    assert torch.allclose(got, expected)
    assert not torch.allclose(got, running)  # what the first evaluation computed, and should not have


def test_energies_drop_a_remainder_smaller_than_a_training_batch(tmp_path):
    run = batchnorm_run(tmp_path)
    assert len(energies(run, torch.zeros(20, 1, 8, 8))) == 16


def test_every_registered_metric_the_run_can_supply_is_chosen(tmp_path):
    run = method_contract.tiny_run("ebgan", tmp_path / "run")
    run.data.holdout = torch.zeros(16, 1, 8, 8)
    names = chosen_metrics(run)
    assert {n for n, m in METRICS.items() if m.needs in ("classifier", "energies")} <= set(names)
    assert not {n for n, m in METRICS.items() if m.needs == "inception"} & set(names)  # inception_n is 0 on a CPU
    run.config.metrics = ["i_prime"]
    assert chosen_metrics(run) == ["i_prime"]


TINY = ["--steps", "2", "--batch-size", "16", "--size-g", "16", "--size-d", "16", "--holdout", "100", "--quiet"]


@pytest.mark.slow  # Inception on the CPU
def test_each_metric_family_keeps_its_own_n_and_reference(mnist_root, inception_weights, tmp_path, monkeypatch):
    """eval_n 50 and inception_n 10: the classifier scores' provenance says 50 (the flat keys, as records always
    had), the Inception scores' says 10 (the `inception` sub-dict), and kid_std is NaN with the reason."""
    import json
    import math

    from ebm_bench.cli import main
    from ebm_bench.metrics import CLASSIFIER_SHA256

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # Inception reference statistics go here
    assert main(["run", "--methods", "ebgan", "--data-root", str(mnist_root), "--out", str(tmp_path / "runs"),
                 "--eval-n", "50", "--inception-n", "10", "--inception-weights", str(inception_weights),
                 "--metrics", "i_prime,fid_mnist,fid,kid,kid_std", *TINY]) == 0
    result = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    scores, provenance = result["evaluation"], result["evaluation_provenance"]
    assert scores["n"] == 50 and scores["inception_n"] == 10
    assert provenance["n"] == provenance["n_reference"] == 50 and provenance["reference"] == "mnist-test"
    assert provenance["classifier_sha256"] == CLASSIFIER_SHA256
    inception = provenance["inception"]
    assert inception["n"] == inception["n_reference"] == 10 and inception["reference"] == "mnist-test"
    assert inception["inception_weights_sha256"] == provenance["inception_weights_sha256"]
    assert len(inception["inception_weights_sha256"]) == 64 and "classifier_sha256" not in inception
    assert math.isnan(scores["kid_std"]) and inception["kid_subset_size"] == 10
    assert "whole sets (10 generated, 10 reference)" in inception["kid_std_note"]


def test_an_inception_only_run_keeps_the_flat_keys_readers_use(tmp_path, monkeypatch):
    """No classifier metric: the flat keys the report and the leaderboard read still name the reference set, the
    Inception weights and torch-fidelity."""
    from ebm_bench import evaluate as evaluate_module

    run = method_contract.tiny_run("ebgan", tmp_path / "run")
    run.config.metrics, run.config.inception_n = ["fid"], 10
    record = {"n": 10, "reference": "images-abc", "n_reference": 10, "image_shape": [1, 8, 8],
              "torch_fidelity_version": "0.4.0", "inception_weights_sha256": "ab" * 32, "classifier_sha256": None}
    monkeypatch.setattr(evaluate_module, "_inception_scores", lambda run, names: ({"fid": 1.0, "inception_n": 10},
                                                                                  record))
    monkeypatch.setattr(evaluate_module, "write_samples", lambda run: None)
    (evaluation, provenance), = evaluate_module.evaluate_runs([run])
    assert evaluation == {"fid": 1.0, "inception_n": 10}
    assert provenance == {"reference": "images-abc", "torch_fidelity_version": "0.4.0",
                          "inception_weights_sha256": "ab" * 32,
                          "inception": {k: v for k, v in record.items() if k != "classifier_sha256"}}
