"""Bad input gets one line naming the problem and the fix, never a traceback (issue 10's table, as tried)."""

from __future__ import annotations

import shutil

import pytest

from ebm_bench.cli import main

SMALL = ["--batch-size", "16", "--size-g", "16", "--size-d", "16", "--holdout", "100"]
TINY = ["--steps", "2", *SMALL, "--eval-n", "50", "--quiet"]
GPUS = "1000"  # more than any machine has: a Ray started here could never run the task


@pytest.fixture(scope="module")
def setup(tmp_path_factory, mnist_root):
    """Files the rows need (made once: no row writes into them): a plugin with a syntax error, a config file with an
    endless budget, a truncated MNIST archive, records with a truncated result.json, and two leaderboard tables of
    different setups."""
    tmp_path = tmp_path_factory.mktemp("bad-inputs")
    (tmp_path / "broken_plugin.py").write_text("def oops(:\n    pass\n")
    (tmp_path / "endless.toml").write_text('methods = ["ebgan"]\nseconds = inf\n')
    (tmp_path / "a_file").write_text("not a folder")
    truncated = tmp_path / "truncated" / "MNIST" / "raw"
    truncated.mkdir(parents=True)
    for archive in (mnist_root / "MNIST" / "raw").glob("*.gz"):  # the archives only, none extracted
        shutil.copy(archive, truncated)
    archive = truncated / "train-labels-idx1-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:100])
    assert main(["run", "--methods", "gan", "--seeds", "0,1", "--data-root", str(mnist_root),
                 "--out", str(tmp_path / "runs"), *TINY]) == 0
    for run, eval_n in zip(sorted((tmp_path / "runs").iterdir()), (50, 60)):
        table = tmp_path / f"table-{eval_n}.csv"
        main(["leaderboard", str(run), "--reference", "none", "--format", "csv", "--output", str(table)])
        if eval_n == 60:  # a second setup: the same records claimed at another evaluation N
            text = table.read_text().replace(",50,", ",60,")
            table.write_text(text)
    shutil.copytree(tmp_path / "runs", tmp_path / "damaged")
    result = next((tmp_path / "damaged").glob("*/result.json"))
    result.write_text(result.read_text()[:40])
    return tmp_path


def run(*args):
    return ["run", "--methods", "began", *TINY, *args]


def sweep(*args):
    return ["sweep", "--methods", "ebgan", *SMALL, "--steps", "2", *args]


# (argv with {tmp} and {mnist} placeholders, expected exit code, a phrase the one line must hold)
ROWS = {
    "-o gamma=abc": (run("-o", "gamma=abc", "--data-root", "{mnist}"), 2, "gamma must be a number, got 'abc'"),
    "--out naming a file": (run("--out", "{tmp}/a_file", "--data-root", "{mnist}"), 2, "is a file"),
    "plugin with a SyntaxError": (run("--plugin", "{tmp}/broken_plugin.py"), 2, "syntax error at line 1"),
    "--z-dim 1000000000": (run("--z-dim", "1000000000", "--data-root", "{mnist}"), 2, "GiB to train"),
    "--beta1 2": (run("--beta1", "2", "--data-root", "{mnist}"), 2, "--beta1 2 is outside [0, 1)"),
    "negative margin": (["run", "--methods", "ebgan", *TINY, "--margin", "-1", "--data-root", "{mnist}"], 2,
                        "margin must be positive"),
    "negative gamma": (run("-o", "gamma=-0.5", "--data-root", "{mnist}"), 2, "gamma (the diversity ratio)"),
    "--batch-size 100000": (["run", "--methods", "began", "--steps", "2", *SMALL[2:], "--eval-n", "50", "--quiet",
                             "--batch-size", "100000", "--data-root", "{mnist}"], 2,
                            "--batch-size 100000 is larger than"),  # SMALL[2:]: all but its --batch-size
    "truncated MNIST archive": (run("--data-root", "{tmp}/truncated", "--no-download"), 2, "is corrupt (md5"),
    "an unknown metric": (run("--metrics", "i_prime,sharpness", "--data-root", "{mnist}"), 2,
                          "unknown metric(s) sharpness; known metrics:"),
    "--seeds ,": (run("--seeds", ",", "--data-root", "{mnist}"), 2, "--seeds"),
    "sweep --grid margin=a": (["sweep", "--methods", "ebgan", "--grid", "margin=a", "--dry-run"], 2,
                              "margin must be a number, got 'a'"),
    "leaderboard over a truncated result.json": (["leaderboard", "{tmp}/damaged", "--reference", "none"], 0,
                                                 "result.json"),
    "leaderboard --output naming a directory": (["leaderboard", "{tmp}/runs", "--reference", "none", "--format",
                                                 "csv", "--output", "{tmp}"], 2, "is a directory"),
    "compare --force on tables of different setups": (["compare", "{tmp}/table-50.csv", "{tmp}/table-60.csv",
                                                       "--force", "--format", "csv"], 0, "eval_n differs"),
    # issue 26: tracebacks before
    "--pack 0": (run("--pack", "0"), 2, "--pack takes a number of runs per pack"),
    "--pack abc": (run("--pack", "abc"), 2, "--pack takes a number of runs per pack"),
    "--pack -2": (run("--pack", "-2"), 2, "--pack takes a number of runs per pack"),
    "sweep --pack 0": (sweep("--pack", "0", "--dry-run"), 2, "--pack takes a number of runs per pack"),
    "--seeds beyond a seed's range": (run("--seeds", "99999999999999999999"), 2,
                                      "a seed is a whole number from 0 to 18446744073709551615"),
    "--seeds -1": (run("--seeds", "-1"), 2, "seed -1 is out of range"),
    "Ray --cpus-per-run -1": (sweep("--executor", "ray", "--cpus-per-run", "-1", "--dry-run"), 2,
                              "--cpus-per-run must be a positive number, got -1"),
    # issue 26: silently accepted before
    "--methods ebgan,ebgan": (["run", "--methods", "ebgan,ebgan", *TINY], 2, "names method ebgan twice"),
    "--seeds 0,0": (run("--seeds", "0,0"), 2, "--seeds names seed 0 twice"),
    "MAGAN pretrain_steps at the budget": (["run", "--methods", "magan", *TINY, "-o", "pretrain_steps=2"], 2,
                                           "pretrain_steps 2 is not below the budget of 2 steps"),
    "MAGAN pretrain_steps above an images budget": (["run", "--methods", "magan", *SMALL, "--images", "64",
                                                     "-o", "pretrain_steps=5"], 2,
                                                    "pretrain_steps 5 is not below the budget of 4 steps"),
    "--workers 0": (sweep("--workers", "0", "--dry-run"), 2, "--workers must be >= 1"),
    "--workers -1": (sweep("--workers", "-1", "--dry-run"), 2, "--workers must be >= 1"),
    "--gpus-per-run beyond this machine's GPUs, local Ray": (sweep("--executor", "ray", "--gpus-per-run", GPUS), 2,
                                                             f"--gpus-per-run {GPUS} asked for, but this machine has"),
    "--gpus-per-run without --executor ray": (sweep("--gpus-per-run", "2"), 2, "--gpus-per-run is for Ray"),
    "--address without --executor ray": (sweep("--address", "127.0.0.1:6379"), 2, "--address is for Ray"),
    "the same --grid axis twice": (sweep("--grid", "margin=1,2", "--grid", "margin=3", "--dry-run"), 2,
                                   "margin is given twice: --grid margin=1,2 and --grid margin=3"),
    "a --grid value twice": (sweep("--grid", "margin=1,1.0", "--dry-run"), 2, "names value 1.0 twice"),
    "config show -o margin=5 --margin 6": (["config", "show", "--methods", "ebgan", "-o", "margin=5", "--margin", "6"],
                                           2, "margin is given twice: --margin 6 and -o margin=5"),
    "--margin 5 --margin 6": (["run", "--methods", "ebgan", *TINY, "--margin", "5", "--margin", "6"], 2,
                              "margin is given twice: --margin 5 and --margin 6"),
    "--steps and --set seconds": (sweep("--set", "seconds=60", "--dry-run"), 2,
                                  "the budget is given twice: --steps 2 and --set seconds=60"),
    "--seconds inf": (["run", "--methods", "began", *SMALL, "--seconds", "inf"], 2,
                      "--seconds inf: seconds must be a finite number"),
    "seconds = inf in a config file": (["run", "--config", "{tmp}/endless.toml"], 2,
                                       "budget (seconds) option amount must be a finite number, got inf"),
    "--margin inf": (["run", "--methods", "ebgan", *TINY, "--margin", "inf"], 2, "--margin inf: margin must be a "
                                                                                  "finite number"),
    "--lr inf": (run("--lr", "inf"), 2, "--lr inf: lr must be a finite number"),
    "-o gamma=nan": (run("-o", "gamma=nan"), 2, "-o gamma=nan: gamma must be a finite number"),
    "--grid lr=1e-3,inf": (sweep("--grid", "lr=1e-3,inf", "--dry-run"), 2, "lr must be a finite number"),
    "--eval-every-n below a batch": (run("--eval-every", "1", "--eval-every-n", "10"), 2,
                                     "--eval-every-n 10 is below its minimum, the batch size 16"),
    "--eval-n below the k-NN metrics' minimum": (["run", "--methods", "began", "--steps", "2", *SMALL, "--eval-n", "5"],
                                                 2, "--eval-n 5 is below its minimum 6"),
    "--eval-n 1 with one classifier metric": (["run", "--methods", "began", "--steps", "2", *SMALL, "--eval-n", "1",
                                               "--metrics", "i_prime"], 2, "--eval-n 1 is below its minimum 2"),
    "--threads 0": (run("--threads", "0"), 2, "--threads takes a number of threads"),
    "sweep --threads many": (sweep("--threads", "many", "--dry-run"), 2, "--threads takes a number of threads"),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_bad_input_gets_one_line(name, setup, mnist_root, capsys):
    argv, expected_code, phrase = ROWS[name]
    argv = [a.replace("{tmp}", str(setup)).replace("{mnist}", str(mnist_root)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected_code, err
    assert "Traceback" not in err and lines and phrase in " ".join(lines), err
    if expected_code:
        assert len(lines) <= 2, err  # argparse prints its usage line before its one-line error
