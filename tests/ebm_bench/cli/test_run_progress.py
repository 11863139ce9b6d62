"""What a log file shows of `run` and `sweep` (stderr not a terminal): throttled trajectory lines, and never
throttled, each run's start, its --eval-every evaluations, its last row, its end-of-run evaluation and its end."""

from __future__ import annotations

import re

from ebm_bench.cli import main

SMALL = ["--batch-size", "16", "--size-g", "16", "--size-d", "16", "--holdout", "100", "--eval-n", "50",
         "--no-download"]


def positions(err: str, *patterns: str) -> list[int]:
    """The line number of each pattern's first match (-1: none)."""
    lines = err.splitlines()
    return [next((i for i, line in enumerate(lines) if re.search(pattern, line)), -1) for pattern in patterns]


def test_a_run_log_ends_each_run_with_its_last_row_and_its_evaluation(mnist_root, tmp_path, capsys):
    assert main(["run", "--methods", "ebgan,gan", "--steps", "6", "--log-every", "1", "--eval-every", "4",
                 "--eval-every-n", "16", *SMALL, "--data-root", str(mnist_root), "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    for method in ("ebgan", "gan"):
        run = rf"{method}-mnist-seed0-\w+"
        steps = positions(err, *(rf"^{run} +step {step}/6 " for step in range(1, 7)))
        assert [at >= 0 for at in steps] == [True, False, False, True, False, True]  # 30 s throttle; 4: scored
        start, scored_4, scored_6, evaluating, end = positions(
            err, rf"^{run} training: 6 steps$", rf"^{run} scored at step 4 ", rf"^{run} scored at step 6 ",
            rf"^{run} trained to step 6; end-of-run evaluation started$",
            rf"^{run} finished: 6 steps in [\d.]+ s; end-of-run evaluation took [\d.]+ s$")
        assert 0 <= start < steps[0] < steps[3] < scored_4 < steps[5] < scored_6 < evaluating < end
    ebgan_end, gan_start = positions(err, r"^ebgan-\S+ finished", r"^gan-\S+ training")
    assert 0 <= ebgan_end < gan_start  # a run's end is told as it ends, not when the command does


def test_a_packed_sweep_log_shows_every_runs_last_row_and_end(mnist_root, tmp_path, capsys):
    assert main(["sweep", "--methods", "ebgan", "--seeds", "0,1", "--pack", "2", "--steps", "5", "--log-every", "1",
                 *SMALL, "--data-root", str(mnist_root), "--out", str(tmp_path), "--no-plots"]) == 0
    err = capsys.readouterr().err
    for seed in (0, 1):
        run = rf"ebgan-mnist-seed{seed}-\w+"
        last, evaluating, end, counted = positions(err, rf"^{run} +step 5/5 ", rf"^{run} trained to step 5; ",
                                                   rf"^{run} finished: 5 steps ", rf"^\[\d/2\] ebgan seed {seed} ")
        assert 0 <= last < evaluating < end < counted
        assert positions(err, rf"^{run} +step 3/5 ") == [-1]
