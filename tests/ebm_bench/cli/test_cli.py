"""The command line: clear errors, `list`, and a small real run."""

import json

import pytest

from ebm_bench.cli import main

SMALL = ["--steps", "8", "--batch-size", "16", "--n-layer-g", "3", "--size-g", "32", "--size-d", "32",
         "--z-dim", "8", "--log-every", "4", "--holdout", "100", "--no-download", "--eval-n", "100"]


def test_list_shows_every_method_and_dataset(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("gan", "ebgan", "ebgan-pt", "began", "magan", "mnist"):
        assert f"  {name} " in out


def test_unknown_method_lists_the_known_ones(capsys):
    assert main(["run", "--methods", "ebgan,wgan-gp"]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'wgan-gp'" in err
    assert "ae-logistic, ae-real, began, clf-hinge, ebgan, ebgan-ln, ebgan-pt, gan, ladder" in err
    assert "Traceback" not in err


def test_bad_budget_is_a_clear_error(capsys, mnist_root):
    assert main(["run", "--methods", "ebgan", "--steps", "0", "--data-root", str(mnist_root)]) == 2
    assert "budget must be a positive number of steps" in capsys.readouterr().err


def test_option_no_method_has_is_an_error(capsys):
    assert main(["run", "--methods", "gan", "--margin", "3"]) == 2
    assert "margin" in capsys.readouterr().err


def test_missing_data_says_where_it_looked(capsys, tmp_path):
    assert main(["run", "--methods", "ebgan", "--data-root", str(tmp_path / "empty"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "MNIST not found" in err and "empty" in err and "Traceback" not in err


def test_run_trains_and_prints_json(capsys, mnist_root, tmp_path):
    code = main(["run", "--methods", "ebgan,began", "--seeds", "0,1", "--data-root", str(mnist_root),
                 "--out", str(tmp_path), "--json", "--quiet", "-o", "gamma=0.7", *SMALL])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert [(r["method"], r["seed"], r["status"]) for r in results] == [
        ("ebgan", 0, "finished"), ("began", 0, "finished"), ("ebgan", 1, "finished"), ("began", 1, "finished")]
    config = json.loads((tmp_path / results[1]["run_id"] / "config.json").read_text())
    assert config["method_options"] == {"gamma": 0.7, "lambda_k": 0.001}


@pytest.mark.parametrize("argv", [["run", "--methods", "ebgan", "--seeds", "a,b"],
                                  ["run", "--methods", "ebgan", "--steps", "5", "--seconds", "3"]])
def test_malformed_arguments_are_rejected_by_the_parser(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


@pytest.mark.parametrize("seeds", [",", "", " , "])
def test_seeds_naming_no_seed_is_a_one_line_error(capsys, seeds):
    assert main(["run", "--methods", "ebgan", "--seeds", seeds]) == 2  # was: exit 0, nothing run
    err = capsys.readouterr().err.strip()
    assert err == "error: --seeds names no seed; expected comma-separated integers like 0,1,2"


def test_metrics_chooses_what_a_run_scores(capsys, mnist_root, tmp_path):
    code = main(["run", "--methods", "ebgan", "--data-root", str(mnist_root), "--out", str(tmp_path), "--json",
                 "--quiet", "--metrics", "i_prime,energy_auroc", *SMALL])
    assert code == 0
    evaluation = json.loads(capsys.readouterr().out)[0]["evaluation"]
    assert {k for k in evaluation if not k.startswith("n")} == {"i_prime", "energy_auroc"}
