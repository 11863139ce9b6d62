"""End-of-run evaluation: energies as training computes them, and the metrics a run can supply."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

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
