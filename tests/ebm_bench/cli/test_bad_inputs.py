"""Bad input gets one line naming the problem and the fix, never a traceback (issue 10's table, as tried)."""

from __future__ import annotations

import shutil

import pytest

from ebm_bench.cli import main

TINY = ["--steps", "2", "--batch-size", "16", "--size-g", "16", "--size-d", "16", "--holdout", "100",
        "--eval-n", "50", "--quiet"]


@pytest.fixture
def setup(tmp_path, mnist_root):
    """Files the rows need: a plugin with a syntax error, a truncated MNIST archive, records with a truncated
    result.json, and two leaderboard tables of different setups."""
    (tmp_path / "broken_plugin.py").write_text("def oops(:\n    pass\n")
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
    "--batch-size 100000": (run("--batch-size", "100000", "--data-root", "{mnist}"), 2,
                            "--batch-size 100000 is larger than"),
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
