"""The readers (compare, probe --table, report, plot) on damaged or foreign files: one line naming the problem, an
error or a warning, never a traceback (issue 26's table, as users found it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ebm_bench.cli import main

LEADERBOARDS = Path(__file__).resolve().parents[3] / "leaderboards"
COMMITTED_TABLE = LEADERBOARDS / "mnist-mlp-4ep" / "table.csv"
PROBE_TABLE = LEADERBOARDS / "mnist-energy-question" / "probe-4ep.csv"
GARBAGE = bytes(range(256)) * 8  # not UTF-8, not a CSV, not a PNG


@pytest.fixture(scope="module")
def setup(report_runs, tmp_path_factory) -> Path:
    """Foreign and damaged files, and copies of the three tiny runs each with one damaged file (ebgan seed 1's)."""
    tmp = tmp_path_factory.mktemp("bad-records")
    (tmp / "garbage.csv").write_bytes(GARBAGE)
    (tmp / "empty.csv").write_bytes(b"")
    (tmp / "other.csv").write_text("name,score\nx,1\n")
    (tmp / "text.csv").write_text(COMMITTED_TABLE.read_text().replace(",5,0,", ",five,0,", 1))
    (tmp / "a_file").write_text("not a folder")
    damages = {"garbage-trajectory": ("trajectory.csv", GARBAGE), "empty-trajectory": ("trajectory.csv", b""),
               "text-trajectory": ("trajectory.csv", b"step,energy_real_mean\nten,abc\n"),
               "header-trajectory": ("trajectory.csv", b"step,images,energy_real_mean\n"),
               "missing-trajectory": ("trajectory.csv", None), "truncated-samples": ("samples.png", 200),
               "garbage-evaluation": ("evaluation.csv", GARBAGE)}
    for name, (file, damage) in damages.items():
        shutil.copytree(report_runs, tmp / name)
        path = next((tmp / name).glob("ebgan-mnist-seed1-*")) / file
        if damage is None:
            path.unlink()
        elif isinstance(damage, int):
            path.write_bytes(path.read_bytes()[:damage])
        else:
            path.write_bytes(damage)
    return tmp


TABLE = str(COMMITTED_TABLE)
NOT_A_TABLE = "is not a leaderboard table"


def left_out(case: str, why: str, figure: str = "the energy view") -> str:
    return f"{figure} leaves out {{tmp}}/{case}/ebgan-mnist-seed1-*: {why}"  # * the run's hash


# (argv with {tmp}, expected exit code, a phrase the one line must hold)
ROWS = {
    "compare: a binary CSV": (["compare", "{tmp}/garbage.csv", TABLE], 2, f"{NOT_A_TABLE}: it does not read as CSV"),
    "compare: an empty CSV": (["compare", "{tmp}/empty.csv", TABLE], 2, "empty.csv is empty, not a leaderboard"),
    "compare: another CSV": (["compare", TABLE, "{tmp}/other.csv"], 2,
                             f"{NOT_A_TABLE}: it lacks the column(s) dataset, budget, method, variant, n_runs"),
    "compare: text in a count": (["compare", "{tmp}/text.csv", "--against", "ebgan"], 2,
                                 f"{NOT_A_TABLE}: its column(s) n_runs hold text"),
    "compare --alpha 2": (["compare", TABLE, TABLE, "--alpha", "2"], 2, "--alpha 2 is outside (0, 1)"),
    "compare --alpha -1": (["compare", TABLE, "--against", "ebgan", "--alpha", "-1"], 2,
                           "--alpha -1 is outside (0, 1)"),
    "compare --alpha nan": (["compare", TABLE, TABLE, "--alpha", "nan"], 2, "--alpha nan is outside (0, 1)"),
    "compare --metrics nope": (["compare", TABLE, "--against", "ebgan", "--metrics", "nope"], 2,
                               "--metrics nope: not compared"),
    "probe --table: a binary CSV": (["probe", "--table", "{tmp}/garbage.csv"], 2,
                                    "is not a probe table: it does not read as CSV"),
    "probe --table: an empty CSV": (["probe", "--table", "{tmp}/empty.csv"], 2, "is empty, not a probe table"),
    "probe --table: another CSV": (["probe", "--table", "{tmp}/other.csv"], 2,
                                   "is not a probe table: it lacks the column(s) run_id"),
    "report: a binary trajectory.csv": (["report", "{tmp}/garbage-trajectory", "--out", "{tmp}/r1", "--reference",
                                         "none"], 0, left_out("garbage-trajectory", "trajectory.csv is unreadable")),
    "report: a truncated samples.png": (["report", "{tmp}/truncated-samples", "--out", "{tmp}/r2", "--reference",
                                         "none"], 0, "samples.png: not a readable PNG (image file is truncated)"),
    "plot: a binary trajectory.csv": (["plot", "{tmp}/garbage-trajectory", "--out", "{tmp}/p1"], 0,
                                      left_out("garbage-trajectory", "trajectory.csv is unreadable")),
    "plot: an empty trajectory.csv": (["plot", "{tmp}/empty-trajectory", "--out", "{tmp}/p2"], 0,
                                      left_out("empty-trajectory", "trajectory.csv is empty")),
    "plot: text in trajectory.csv": (["plot", "{tmp}/text-trajectory", "--out", "{tmp}/p3"], 0,
                                     left_out("text-trajectory", "trajectory.csv is not a table of numbers by step")),
    "plot: a trajectory.csv with no row": (["plot", "{tmp}/header-trajectory", "--out", "{tmp}/p6"], 0,
                                           left_out("header-trajectory", "trajectory.csv holds no row")),
    "plot: no trajectory.csv": (["plot", "{tmp}/missing-trajectory", "--out", "{tmp}/p4"], 0,
                                left_out("missing-trajectory", "no trajectory.csv")),
    "plot: a binary evaluation.csv": (["plot", "{tmp}/garbage-evaluation", "--out", "{tmp}/p5"], 0,
                                      left_out("garbage-evaluation", "evaluation.csv is unreadable",
                                               "quality over training")),
    "plot --out naming a file": (["plot", "{tmp}/garbage-trajectory", "--out", "{tmp}/a_file"], 2,
                                 "--out {tmp}/a_file is a file"),
    "reliability --out naming a file": (["reliability", "{tmp}/garbage-trajectory", "--out", "{tmp}/a_file"], 2,
                                        "--out {tmp}/a_file is a file"),
    "probe --summary naming a file": (["probe", "--table", str(PROBE_TABLE), "--summary", "{tmp}/a_file"], 2,
                                      "--summary {tmp}/a_file is a file"),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_a_bad_record_gets_one_line(name, setup, capsys):
    argv, expected_code, phrase = ROWS[name]
    argv = [a.replace("{tmp}", str(setup)) for a in argv]
    phrase = phrase.replace("{tmp}", str(setup))
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert "Traceback" not in err, err
    before, _, after = phrase.partition("*")
    matching = [line for line in err.splitlines() if before in line and after in line.split(before, 1)[-1]]
    assert len(matching) == 1, err  # said once, in one line
    if expected_code:
        assert len(err.strip().splitlines()) == 1, err
    else:
        assert matching[0].startswith("warning: "), err
