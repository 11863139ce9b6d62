"""Config files: `run/sweep --config FILE.toml` with flags overriding the file, `config show` as TOML that
round-trips, and one-line errors for what a file can get wrong."""

from __future__ import annotations

import json
import sys

import pytest

from ebm_bench.cli import main
from ebm_bench.config import read_config, toml_dumps

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# A tiny real run, as a file: the nested tables of `config show`'s form and top-level settings mixed.
TINY_FILE = """
description = "a tiny EBGAN"
methods = ["ebgan"]
seeds = [0]
steps = 8
batch_size = 16
z_dim = 8
log_every = 4
holdout = 100
eval_n = 100
download = false
data_root = "{mnist}"
out = "{out}"

[mlp]
n_layer_g = 3
size_g = 32
size_d = 32

[method_options]
margin = 5
"""


def show(*argv: str) -> str:
    """`ebm-bench config show ARGV` as text, its exit status checked."""
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        assert main(["config", "show", *argv]) == 0
    return out.getvalue()


def blocks(text: str) -> list[str]:
    """The runs of `config show`'s text, each without its `# run N` header."""
    return [block.split("\n", 1)[1] for block in text.split("\n# run ")[1:]]


def test_a_config_file_runs_and_flags_override_it(tmp_path, mnist_root, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_FILE.format(mnist=mnist_root, out=tmp_path / "runs"))
    assert main(["run", "--config", str(path), "--steps", "4", "--margin", "3", "--json", "--quiet"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert (result["method"], result["status"], result["steps"]) == ("ebgan", "finished", 4)
    config = json.loads((tmp_path / "runs" / result["run_id"] / "config.json").read_text())
    assert config["method_options"]["margin"] == 3.0 and config["batch_size"] == 16 and config["mlp"]["size_g"] == 32
    # the same run spelled as flags only, and as the text `config show` prints for it: one run id, not trained again
    flags = ["--methods", "ebgan", "--steps", "4", "--margin", "3", "--batch-size", "16", "--z-dim", "8",
             "--log-every", "4", "--holdout", "100", "--eval-n", "100", "--no-download", "--data-root",
             str(mnist_root), "--out", str(tmp_path / "runs"), "--n-layer-g", "3", "--size-g", "32", "--size-d", "32"]
    shown = tmp_path / "shown.toml"
    shown.write_text(show(*flags))
    for argv in (flags, ["--config", str(shown)]):
        assert main(["run", *argv, "--json", "--quiet"]) == 0
        (again,) = json.loads(capsys.readouterr().out)
        assert again["run_id"] == result["run_id"] and again["wall_s"] == result["wall_s"]


def test_config_show_round_trips(tmp_path):
    text = show("--methods", "ebgan,began", "--seeds", "0,1", "-o", "gamma=0.7", "--lr", "2e-4", "--images", "640")
    runs = blocks(text)
    assert [r.split("\n")[:3] for r in runs[:2]] == [['method = "ebgan"', 'dataset = "mnist"', "seed = 0"],
                                                     ['method = "began"', 'dataset = "mnist"', "seed = 0"]]
    assert len(runs) == 4 and "# run 4: began seed 1" in text
    began = tomllib.loads(runs[1])
    assert began["budget"] == {"kind": "images", "amount": 640}
    assert began["optim"]["lr_g"] == began["optim"]["lr_d"] == 2e-4 and began["image_size"] == 32
    assert began["method_options"] == {"gamma": 0.7, "lambda_k": 0.001}
    for i, run in enumerate(runs):  # each run's text is a config file that shows as itself
        path = tmp_path / f"run{i}.toml"
        path.write_text(run)
        assert blocks(show("--config", str(path))) == [run]
    whole = tmp_path / "whole.toml"  # and one run's whole output, comments included, reads back as the same text
    whole.write_text(show("--methods", "magan", "--dataset", "celeba", "--seconds", "30"))
    assert show("--config", str(whole)) == whole.read_text()


def test_config_show_expands_a_sweep_file_and_flags_override_it():
    runs = [tomllib.loads(run) for run in blocks(show("--config", "margin-sensitivity", "--size-g", "800"))]
    assert [r["method_options"]["margin"] for r in runs] == [1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0]
    assert {(r["mlp"]["size_g"], r["mlp"]["size_d"], r["optim"]["lr_g"]) for r in runs} == {(800, 1024, 1e-3)}


@pytest.mark.parametrize("text, phrase", [
    ('methods = ["ebgan"]\nsizeg = 800\n', "unknown key 'sizeg' in {path}"),
    ('methods = ["ebgan"]\n[mlp]\nsizeg = 800\n', "unknown key 'sizeg' in [mlp] of {path}"),
    ('methods = ["ebgan"]\n[method_options]\ngamma = 0.5\n', "unknown key 'gamma' in [method_options] of {path}"),
    ('methods = ["ebgan"]\n[grid]\nmargn = [1, 2]\n', "unknown key 'margn' in {path}"),
    ('methods = ["ebgan"]\n[optimiser]\nlr = 1\n', "unknown table [optimiser] in {path}"),
    ('methods = ["ebgan"]\nsteps = 5\n[budget]\nkind = "images"\namount = 64\n', "sets both steps and budget"),
    ('methods = ["ebgan"]\nseeds = []\n', "seeds in {path} must be a list of integers"),
    ('methods = ["ebgan", "gan", "ebgan"]\n', "methods in {path} names method ebgan twice"),
    ('methods = ["ebgan"]\nseeds = [1, 2, 1]\n', "seeds in {path} names seed 1 twice"),
    ('methods = ["ebgan"]\nseeds = [-3]\n', "seed -3 is out of range"),
    ('methods = ["ebgan"]\nseconds = inf\n', "budget (seconds) option amount must be a finite number, got inf"),
    ('methods = ["ebgan"]\n[budget]\nkind = "seconds"\namount = nan\n', "must be a finite number, got nan"),
    ('methods = ["ebgan"]\nlr = inf\n', "lr_g must be a finite number, got inf"),
    ('methods = ["ebgan"]\n[method_options]\nmargin = inf\n', "ebgan option margin must be a finite number"),
    ('methods = ["magan"]\nsteps = 100\n[method_options]\npretrain_steps = 100\n',
     "pretrain_steps 100 is not below the budget of 100 steps"),
    ('methods = ["ebgan"]\neval_n = 3\n', "--eval-n 3 is below its minimum 6"),
    ('methods = ["ebgan"]\n[grid]\nmargin = [2, 2.0]\n', "grid axis margin names value 2.0 twice"),
])
def test_a_bad_config_file_is_one_line_naming_the_key_and_file(tmp_path, capsys, text, phrase):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["config", "show", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert phrase.format(path=path) in err.replace("\n", "") and "Traceback" not in err


def test_run_with_a_grid_file_points_to_sweep(capsys):
    assert main(["run", "--config", "margin-sensitivity"]) == 2
    err = capsys.readouterr().err
    assert "margin-sensitivity has a [grid] (margin)" in err and "ebm-bench sweep --config margin-sensitivity" in err


def test_preset_stays_an_alias_of_config(capsys):
    assert main(["sweep", "--preset", "margin-sensitivity", "--dry-run"]) == 0
    by_preset = capsys.readouterr().out
    assert main(["sweep", "--config", "margin-sensitivity", "--dry-run"]) == 0
    assert capsys.readouterr().out == by_preset and "8 runs (8 grid points x 1 method(s) x 1 seed(s))" in by_preset


@pytest.mark.parametrize("grid, phrase", [("margin=a", "margin must be a number, got 'a'"),
                                          ("size_g=800,big", "size_g must be a number, got 'big'"),
                                          ("margin=4,-1", "margin must be positive")])
def test_dry_run_checks_every_grid_point(capsys, grid, phrase):
    assert main(["sweep", "--methods", "ebgan", "--grid", grid, "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert phrase in captured.err and len(captured.err.strip().splitlines()) == 1 and "runs (" not in captured.out


def test_the_toml_writer_round_trips_every_kind_it_writes():
    data = {"text": 'a "quoted" \\ line\nnext\ttab \x01 ünï', "n": -3, "x": 1e-05, "big": 1e20, "whole": 2.0,
            "inf": float("inf"), "flag": False, "names": ["a", "b"], "nothing": None, "empty": [],
            "table": {"k": 1, "odd key": "v", "inner": {"deep": True}}, "after": {}}
    text = toml_dumps(data)
    assert tomllib.loads(text) == {k: v for k, v in data.items() if v is not None}
    assert "nothing" not in text


def test_a_preset_reads_as_a_config_file():
    file = read_config("ebgan-paper-grid")
    assert file.methods == ["ebgan"] and file.settings["margin"] == 10.0 and len(file.grid) == 5
