"""Quality over training (--eval-every): rows in evaluation.csv, no effect on training, resume, packs, summary."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ebm_bench import OptimConfig
from ebm_bench.api import train_one
from ebm_bench.errors import ConfigError
from ebm_bench.evaluate import QualityLog, quality_summary
from ebm_bench.metrics import METRICS, over_training_metrics
from ebm_bench.runs import train_pack
from ebm_bench.train import prepare

_spec = importlib.util.spec_from_file_location("test_train_shared", Path(__file__).with_name("test_train.py"))
_train_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_tests)
small = _train_tests.small  # the tiny MNIST run of the training tests: 12 steps, logs every 4, checkpoints every 8


def quality(mnist_root, tmp_path, **overrides):
    return small(mnist_root, tmp_path, **({"eval_every": 5, "eval_every_n": 64} | overrides))


def evaluation_csv(result) -> pd.DataFrame:
    return pd.read_csv(Path(result.run_dir) / "evaluation.csv")


def sample_metrics_over_training() -> list[str]:
    """The metrics over training of a run on generated samples (test_error needs a D that classifies)."""
    return [name for name in over_training_metrics() if METRICS[name].needs != "classes"]


def test_scores_over_training_every_n_steps_and_at_the_end(mnist_root, tmp_path):
    result = train_one(quality(mnist_root, tmp_path))
    table = evaluation_csv(result)
    assert table["step"].tolist() == [5, 10, 12]  # every 5 steps, and the last step
    scored = sample_metrics_over_training()
    assert set(scored) <= set(table.columns) and (table["n"] == 64).all()
    values = table[[*scored, "energy_heldout", "energy_generated", "energy_auroc"]]
    assert np.isfinite(values.to_numpy(float)).all()
    assert table["classes_covered"].between(0, 10).all() and table["energy_auroc"].between(0, 1).all()
    assert result.quality == quality_summary(result.run_dir) and set(result.quality) == set(scored)
    final = result.quality["i_prime"]["final"]
    assert final == pytest.approx(table["i_prime"].iloc[-1])


def test_evaluating_during_training_leaves_training_untouched(mnist_root, tmp_path):
    plain = train_one(small(mnist_root, tmp_path / "plain"))
    watched = train_one(quality(mnist_root, tmp_path / "watched"))
    assert watched.run_id != plain.run_id  # the records differ, so the identity does
    a, b = (pd.read_csv(Path(r.run_dir) / "trajectory.csv").drop(columns="wall_s") for r in (plain, watched))
    pd.testing.assert_frame_equal(a, b)  # bitwise: same batches, noise, dropout, BatchNorm statistics
    assert watched.evaluation == plain.evaluation


def test_every_run_is_scored_on_the_same_noise(mnist_root, tmp_path):
    logs = [QualityLog([prepare(quality(mnist_root, tmp_path, seed=seed))]) for seed in (0, 1)]
    assert logs[0].noise.equal(logs[1].noise)


def test_an_interrupted_run_resumes_its_evaluations_without_gaps_or_repeats(mnist_root, tmp_path):
    config = quality(mnist_root, tmp_path, log_every=1, checkpoint_every=4)

    def interrupt(row):
        if row["step"] == 6:  # evaluated at 5, last checkpoint at 4: step 5 is evaluated again on resume
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_one(config, on_log=interrupt)
    assert evaluation_csv(prepare(config))["step"].tolist() == [5]
    resumed = train_one(config)
    straight = train_one(dataclasses.replace(config, out=str(tmp_path / "straight")))
    a, b = (evaluation_csv(r).drop(columns=["wall_s", "eval_s"]) for r in (resumed, straight))
    pd.testing.assert_frame_equal(a, b)
    assert a["step"].tolist() == [5, 10, 12]


def test_a_pack_scores_its_runs_as_solo_runs_do(mnist_root, tmp_path):
    # lr 1e-4: at 1e-3 these tiny nets are chaotic within 12 steps and float32 order alone moves them. Even here G's
    # samples in eval mode differ by ~4e-4 (BatchNorm's running mean follows a bias whose Adam steps rounding
    # decides), so scores are compared at test_pack's measured score tolerance, 2e-2.
    configs = [quality(mnist_root, tmp_path / "packed", seed=seed, optim=OptimConfig(lr_g=1e-4, lr_d=1e-4))
               for seed in (0, 1)]
    packed = train_pack(configs)
    for config, result in zip(configs, packed):
        solo = train_one(dataclasses.replace(config, out=str(tmp_path / "solo")))
        a, b = (evaluation_csv(r).drop(columns=["wall_s", "eval_s"]) for r in (solo, result))
        np.testing.assert_allclose(b.to_numpy(float), a.to_numpy(float), rtol=2e-2, atol=1e-5)


def test_the_summary_holds_best_final_drop_last_three_mean_area_and_the_share_near_the_best(tmp_path):
    pd.DataFrame({"step": [5, 10, 15, 20], "i_prime": [1.0, 2.0, 1.9, 1.5],
                  "fid_mnist": [40.0, 10.0, 10.5, 30.0]}).to_csv(tmp_path / "evaluation.csv", index=False)
    summary = quality_summary(tmp_path)
    # I': best 2.0 at step 10, final 1.5, drop 0.5; within 10% of 2.0: 2.0 and 1.9 -> 2 of 4; last three
    # (2.0 + 1.9 + 1.5) / 3 = 1.8; area 5 * (1.5 + 1.95 + 1.7) = 25.75 over 15 steps = 1.71667
    assert summary["i_prime"] == pytest.approx({"best": 2.0, "best_step": 10, "final": 1.5, "drop": 0.5,
                                                "near_best_share": 0.5, "last_k_mean": 1.8, "auc": 25.75 / 15})
    # FID (lower is better): best 10 at step 10, final 30, drop 20 (worse by 20); within 10%: 10 and 10.5;
    # last three (10 + 10.5 + 30) / 3; area 5 * (25 + 10.25 + 20.25) = 277.5 over 15 steps = 18.5
    assert summary["fid_mnist"] == pytest.approx({"best": 10.0, "best_step": 10, "final": 30.0, "drop": 20.0,
                                                  "near_best_share": 0.5, "last_k_mean": 50.5 / 3, "auc": 18.5})
    assert isinstance(summary["fid_mnist"]["best_step"], int)  # a step, as result.json has always held it
    assert quality_summary(tmp_path / "none") == {}


def test_the_summary_leaves_out_an_evaluation_that_is_not_a_number(tmp_path):
    pd.DataFrame({"step": [5, 10, 15], "i_prime": [1.0, 3.0, float("nan")]}).to_csv(tmp_path / "evaluation.csv",
                                                                                     index=False)
    # the NaN at step 15 is left out: final 3.0 (step 10), last three = both finite points, area over 5..10 = 2.0
    assert quality_summary(tmp_path)["i_prime"] == pytest.approx(
        {"best": 3.0, "best_step": 10, "final": 3.0, "drop": 0.0, "near_best_share": 0.5, "last_k_mean": 2.0,
         "auc": 2.0})


def test_eval_every_without_classifier_or_held_out_set_is_one_line(mnist_root, tmp_path):
    run = prepare(quality(mnist_root, tmp_path, holdout=0))
    run.spec = dataclasses.replace(run.spec, classifier=False)
    with pytest.raises(ConfigError, match="--eval-every needs the MNIST classifier"):
        QualityLog([run])
    with pytest.raises(ConfigError, match="eval_every must be >= 0"):
        quality(mnist_root, tmp_path, eval_every=-1).validate()
