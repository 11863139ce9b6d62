"""The semi-supervised task end to end (issue 25): `ebm-bench run --methods ladder,ebgan-ln --dataset pi-mnist
--labels N` writes the usual records with the test error, and a short run learns."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ebm_bench import Budget, RunConfig
from ebm_bench.cli import main
from ebm_bench.runs import train_one


@pytest.mark.slow
def test_ladder_and_ebgan_ln_run_through_the_cli_and_record_their_test_error(mnist_root, tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(["run", "--methods", "ladder,ebgan-ln", "--dataset", "pi-mnist", "--labels", "1000", "--seeds", "0",
                 "--steps", "50", "--data-root", str(mnist_root), "--no-download", "--out", str(out),
                 "--eval-n", "200", "--threads", "1", "--quiet"])
    assert code == 0, capsys.readouterr().err
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert [f.split("-pi-mnist-seed0-")[0] for f in folders] == ["ebgan-ln", "ladder"]
    for folder in folders:
        run_dir = out / folder
        assert {"config.json", "manifest.json", "trajectory.csv", "samples.png", "result.json"} <= {
            p.name for p in run_dir.iterdir()}
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "finished" and result["steps"] == 50
        assert result["evaluation"]["n_test"] == 10000 and 0 <= result["evaluation"]["test_error"] < 90
        assert "fid_mnist" in result["evaluation"]  # G's samples are scored like any run's
        config = json.loads((run_dir / "config.json").read_text())
        assert config["labels"] == 1000 and config["dataset"] == "pi-mnist"
        rows = pd.read_csv(run_dir / "trajectory.csv")
        assert rows["cross_entropy"].notna().all()
    ebgan_ln = json.loads((out / folders[0] / "config.json").read_text())
    assert ebgan_ln["optim"]["lr_d"] == 5e-4 and ebgan_ln["optim"]["lr_g"] == 2.5e-4


def test_labels_where_they_cannot_apply_are_one_line(mnist_root, tmp_path, capsys):
    common = ["--steps", "2", "--data-root", str(mnist_root), "--no-download", "--out", str(tmp_path)]
    assert main(["run", "--methods", "ladder", "--dataset", "pi-mnist", "--labels", "1005", *common]) == 2
    err = capsys.readouterr().err
    assert "not a multiple of the 10 classes" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["run", "--methods", "ebgan", "--dataset", "mnist", "--labels", "1000", *common]) == 2
    assert "has no labelled training images" in capsys.readouterr().err
    assert main(["run", "--methods", "ladder", "--dataset", "pi-mnist", "--labels", "1000", "--pack", "2",
                 "--seeds", "0,1", *common]) == 2
    assert "train alone" in capsys.readouterr().err


@pytest.mark.slow
def test_with_1000_labels_the_ladder_s_test_error_falls_below_10_percent_in_a_few_hundred_steps(
        mnist_root, tmp_path):
    config = RunConfig(method="ladder", dataset="pi-mnist", labels=1000, batch_size=100, budget=Budget("steps", 400),
                       data_root=str(mnist_root), download=False, out=str(tmp_path), eval_n=0, holdout=1000,
                       eval_every=200, eval_every_n=200, log_every=100)
    result = train_one(config)
    assert result.status == "finished" and result.evaluation["test_error"] < 10.0
    curve = pd.read_csv(Path(result.run_dir) / "evaluation.csv")  # the error curve
    assert curve["step"].tolist() == [200, 400]
    assert curve["test_error"].iloc[-1] == pytest.approx(result.evaluation["test_error"])
    assert curve["test_error"].iloc[0] > curve["test_error"].iloc[-1]
    assert result.quality["test_error"]["final"] == pytest.approx(result.evaluation["test_error"])
