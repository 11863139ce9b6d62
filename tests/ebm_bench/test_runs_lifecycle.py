"""A run folder's life on real MNIST: one writer at a time (a real second process), corrupt files, an unusable
--out, the resume message, plain progress lines for a log file, and the 80-column summary."""

import dataclasses
import importlib.util
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from ebm_bench import Budget, runs, summary
from ebm_bench.api import run_configs, train_one
from ebm_bench.cli import main
from ebm_bench.errors import ConfigError
from ebm_bench.record import RunLocked
from ebm_bench.summary import PlainProgress, progress_line, summary_table
from ebm_bench.sweep import run_safely
from ebm_bench.train import RunResult, RunStart, prepare

_spec = importlib.util.spec_from_file_location("test_train_shared", Path(__file__).with_name("test_train.py"))
_train_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_tests)
small = _train_tests.small  # the same tiny MNIST run as the training tests


def log_console() -> Console:
    """What a sweep writing to a log file has: a console that is not a terminal."""
    return Console(file=io.StringIO(), force_terminal=False, width=80)


def interrupted(config, at_step):
    def interrupt(row):
        if row["step"] == at_step:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train_one(config, on_log=interrupt)


# -- one writer at a time ------------------------------------------------------------------------------------------
_LOCKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ebm_bench.record import RunLocked, run_lock
    try:
        with run_lock(Path(sys.argv[1]), Path(sys.argv[1]).name):
            print("locked", flush=True)
            if sys.argv[2] == "hold":
                time.sleep(300)
    except RunLocked as err:
        print(err, flush=True)
""")


def another_process(run_dir: Path, hold: bool) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _LOCKER, str(run_dir), "hold" if hold else "try"],
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.slow  # a second process, killed
def test_a_run_another_live_process_writes_is_skipped_and_taken_over_once_it_dies(mnist_root, tmp_path):
    config = small(mnist_root, tmp_path)
    run = prepare(config)
    holder = another_process(run.run_dir, hold=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=f"^run {run.run_id} is being written by process {holder.pid}$"):
            train_one(config)
        assert not (run.run_dir / "trajectory.csv").exists()  # the second process wrote nothing

        console = log_console()  # `run`: one line, and the next run still trains
        locked, other = run_configs([config, dataclasses.replace(config, seed=1)], console=console)
        assert (locked.status, other.status) == ("locked", "finished")
        assert f"run {run.run_id} is being written by process {holder.pid}; skipped" in console.file.getvalue()
        outcome = run_safely(config)  # a sweep: someone else's run, not a failure
        assert (outcome.status, outcome.run_id) == ("locked", run.run_id)
    finally:
        holder.kill()  # SIGKILL: the OS releases the flock, no stale lock is left
        holder.wait()
    assert train_one(config).status == "finished"


def test_the_lock_is_held_while_the_run_trains(mnist_root, tmp_path):
    config = small(mnist_root, tmp_path)
    run = prepare(config)
    seen = []

    def probe(row):
        if row["step"] == 4:
            seen.append(another_process(run.run_dir, hold=False).communicate(timeout=120)[0].strip())

    train_one(config, on_log=probe)
    assert seen == [f"run {run.run_id} is being written by process {os.getpid()}"]
    assert (run.run_dir / ".lock").read_text() == ""  # released: no pid left behind
    assert another_process(run.run_dir, hold=False).communicate(timeout=120)[0].strip() == "locked"


# -- corrupt files -----------------------------------------------------------------------------------------------
def test_a_truncated_checkpoint_is_named_with_the_way_to_start_over(mnist_root, tmp_path):
    config = small(mnist_root, tmp_path, checkpoint_every=4)
    interrupted(config, at_step=8)
    checkpoint = prepare(config).run_dir / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:500])
    with pytest.raises(ConfigError) as error:
        train_one(config)
    message = str(error.value)
    assert message.startswith(f"{checkpoint} is corrupt (") and "--restart" in message and "\n" not in message
    assert train_one(config, restart=True).status == "finished"


def test_a_truncated_result_is_named_by_the_run_command(mnist_root, tmp_path, capsys):
    argv = ["run", "--methods", "ebgan", "--steps", "12", "--batch-size", "16", "--n-layer-g", "3", "--size-g", "64",
            "--size-d", "64", "--z-dim", "16", "--holdout", "200", "--log-every", "4", "--eval-n", "100",
            "--data-root", str(mnist_root), "--no-download", "--out", str(tmp_path / "runs"), "--quiet"]
    assert main(argv) == 0
    result = next((tmp_path / "runs").glob("*/result.json"))
    result.write_text(result.read_text()[:40])
    capsys.readouterr()
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{result} is corrupt (" in lines[0] and "--restart" in lines[0]
    assert main([*argv, "--restart"]) == 0


# -- an --out nothing can be written to --------------------------------------------------------------------------
@pytest.fixture
def no_data_loading(monkeypatch):
    """The --out checks come before any data loads or training starts."""
    def fail(config):
        raise AssertionError("prepare() ran before the --out check")
    monkeypatch.setattr(runs, "prepare", fail)


def test_out_naming_a_file_is_one_line(mnist_root, tmp_path, no_data_loading):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(ConfigError, match=f"^--out {tmp_path}/a_file is a file; pass a directory$"):
        train_one(small(mnist_root, tmp_path, out=str(tmp_path / "a_file")))
    with pytest.raises(ConfigError, match="is inside .*a_file, which is a file; pass a directory"):
        train_one(small(mnist_root, tmp_path, out=str(tmp_path / "a_file" / "runs")))


def test_a_read_only_out_is_one_line(mnist_root, tmp_path, no_data_loading, monkeypatch):
    out = tmp_path / "read-only"
    out.mkdir()
    out.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: answer the write probe as the kernel answers anyone else
        real_open = os.open

        def refusing_open(path, flags, *args, **kwargs):
            if Path(path).parent == out and flags & os.O_CREAT:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)
        monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(ConfigError, match=f"^cannot write to --out {out}: permission denied; "
                                          "choose a writable directory$"):
        train_one(small(mnist_root, tmp_path, out=str(out)))
    assert list(out.iterdir()) == []  # the probe left nothing behind


# -- resume message, progress lines and the summary -----------------------------------------------------------------
def test_resuming_says_where_it_resumes_in_a_log_file_and_in_a_terminal(mnist_root, tmp_path):
    config = small(mnist_root, tmp_path, steps=16)
    for console in (log_console(), Console(file=io.StringIO(), force_terminal=True, width=200)):
        interrupted(config, at_step=12)
        run_configs([config], console=console, restart=False)
        assert f"resuming {prepare(config).run_id} from step 8 of 16" in console.file.getvalue()
        Path(prepare(config).run_dir, "result.json").unlink()  # ended runs are not resumed: start the next round
        Path(prepare(config).run_dir, "checkpoint.pt").unlink()
    start = RunStart("began-mnist-seed0-abc", 40, Budget("seconds", 30), None)
    assert start.resume_message() == "resuming began-mnist-seed0-abc from step 40 of 30 seconds"


def test_a_log_file_gets_one_plain_line_per_logging_interval_at_most(mnist_root, tmp_path, monkeypatch):
    monkeypatch.setattr(summary, "PLAIN_EVERY_S", 0.0)  # so that every interval is rarer than the time limit
    console = log_console()
    result, = run_configs([small(mnist_root, tmp_path, method="began")], console=console)
    text = console.file.getvalue()
    lines = [line for line in text.splitlines() if "steps/s" in line]
    assert [line.split("  ")[:2] for line in lines] == [[result.run_id, f"step {s}/12"] for s in (4, 8, 12)]
    assert all("ETA " in line and "E(x) " in line and "E(G(z)) " in line for line in lines)
    assert "\x1b[" not in text  # no escape codes in a log file
    assert f"{result.run_id} finished: 12 steps" in text


def test_plain_lines_come_every_30_seconds_when_intervals_are_shorter():
    now = [0.0]
    console = log_console()
    progress = PlainProgress(console, clock=lambda: now[0])
    progress.on_start(RunStart("ebgan-mnist-seed0-abc", 0, Budget("steps", 100), 100))
    for step, t in ((1, 0.0), (2, 10.0), (3, 29.0), (4, 31.0), (5, 45.0), (6, 62.0)):
        now[0] = t
        progress.on_log({"step": step, "images": step * 64, "wall_s": t + 1, "energy_real_mean": 1.0})
    assert [line.split("  ")[1] for line in console.file.getvalue().splitlines()] == ["step 1/100", "step 4/100",
                                                                                        "step 6/100"]


def test_a_progress_line_has_run_step_speed_eta_and_energies():
    start = RunStart("ebgan-mnist-seed0-1a2b3c4d5e", 0, Budget("steps", 2000), 2000)
    row = {"step": 400, "images": 25600, "wall_s": 8.0, "energy_real_mean": 0.1234, "energy_fake_mean": 0.98765}
    assert progress_line(start, row) == ("ebgan-mnist-seed0-1a2b3c4d5e  step 400/2000  50 steps/s  ETA 0m32s  "
                                         "E(x) 0.1234  E(G(z)) 0.9877")
    pretraining = RunStart("magan-mnist-seed0-abc", 0, Budget("seconds", 300), None)
    row = {"step": 50, "images": 3200, "wall_s": 10.0, "energy_real_mean": 2.0, "energy_fake_mean": float("nan")}
    assert progress_line(pretraining, row) == "magan-mnist-seed0-abc  step 50 (10/300 s)  5 steps/s  ETA 4m50s  E(x) 2"


def test_the_summary_fits_80_columns_and_shows_the_headline_scores():
    def result(method, status, **evaluation):
        return RunResult(run_id=f"{method}-x", run_dir="runs/x", method=method, dataset="mnist", seed=2, status=status,
                         budget={"kind": "steps", "amount": 20000}, steps=20000, wall_s=1234.5678,
                         steps_per_s=16.2, final={"energy_real_mean": 0.123456, "energy_fake_mean": 12.3456},
                         evaluation=evaluation)
    results = [result("ebgan-pt", "finished", i_prime=1.23456, classes_covered=10, fid_mnist=123.456,
                      energy_auroc=0.98765),
               result("magan", "diverged"), result("began", "locked")]
    console = Console(file=io.StringIO(), width=200, force_terminal=False)  # its natural width, not squeezed
    console.print(summary_table(results))
    lines = console.file.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "method" in line)
    assert all(name in header for name in ("I'", "classes", "FID-MNIST", "AUROC", "status"))
    row = next(line for line in lines if "ebgan-pt" in line)
    assert all(value in row for value in ("finished", "1.235", "10", "123.5"))


def test_missing_inception_weights_fail_the_run_before_it_trains(mnist_root, tmp_path):
    config = dataclasses.replace(small(mnist_root, tmp_path), inception_n=20, download=False,
                                 inception_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError, match="Inception weights not found at .*missing.pth"):
        train_one(config)
    assert not list(tmp_path.rglob("trajectory.csv"))  # not 2,000 steps first and the error after them
