"""Records anyone can open safely, and nothing written outside --out (issue 26): checkpoints are read as data
only, links in a run folder are never followed, a damaged trajectory is kept aside, bad records are one line."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from ebm_bench.cli import main
from ebm_bench.config import Budget, MLPConfig, RunConfig
from ebm_bench.errors import ConfigError
from ebm_bench.evaluate import quality_columns
from ebm_bench.files import read_json, write_json
from ebm_bench.record import load_checkpoint, load_records, read_records, RESULT_REQUIRED
from ebm_bench.runs import existing_result, train_one
from ebm_bench.train import RunResult, Trainer, prepare
from ebm_bench.trajectory import STANDARD_COLUMNS, TrajectoryWriter

TINY = ["--steps", "2", "--batch-size", "16", "--size-g", "16", "--size-d", "16", "--z-dim", "8", "--holdout", "100",
        "--eval-n", "50", "--log-every", "1", "--no-download", "--quiet"]


def tiny_argv(mnist_root: Path, out: Path, method: str = "ebgan") -> list[str]:
    return ["run", "--methods", method, *TINY, "--data-root", str(mnist_root), "--out", str(out)]


@pytest.fixture(scope="module")
def trained(mnist_root, tmp_path_factory) -> Path:
    """A folder of two finished tiny runs, EBGAN and GAN, written by `ebm-bench run`. Read only: copy to change."""
    out = tmp_path_factory.mktemp("safety") / "runs"
    for method in ("ebgan", "gan"):
        assert main(tiny_argv(mnist_root, out, method)) == 0
    return out


def copy_runs(trained: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(--out, the EBGAN run folder, the GAN run folder) of a fresh copy of `trained`."""
    out = tmp_path / "runs"
    shutil.copytree(trained, out)
    return out, next(out.glob("ebgan-*")), next(out.glob("gan-*"))


def unfinished(run_dir: Path) -> None:
    """The run as an interrupted one: the same `run` command resumes it from its checkpoint."""
    write_json(run_dir / "result.json", read_json(run_dir / "result.json") | {"status": "running"})


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder`: its bytes and modification time."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            files[str(path.relative_to(folder))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return files


@pytest.fixture
def sentinel(tmp_path) -> Path:
    """A folder outside every --out, with files a run must never touch."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me\n")
    (folder / "notes").mkdir()
    (folder / "notes" / "more.txt").write_text("and me\n")
    return folder


# -- checkpoints are data, never code ----------------------------------------------------------------------------
class _Payload:
    """Unpickled, it creates `marker`: what a crafted checkpoint could do instead."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def plant_malicious_checkpoint(run_dir: Path, marker: Path) -> None:
    torch.save({"result": {"steps": 2}, "generator": _Payload(marker)}, run_dir / "checkpoint.pt")


def test_the_payload_runs_code_when_a_checkpoint_is_unpickled_unsafely(tmp_path):
    plant_malicious_checkpoint(tmp_path, tmp_path / "proof")
    torch.load(tmp_path / "checkpoint.pt", weights_only=False)  # what run and probe did before
    assert (tmp_path / "proof").exists()


def test_a_checkpoint_that_would_run_code_is_refused_by_probe_and_run(trained, mnist_root, tmp_path, capsys):
    out, run_dir, _ = copy_runs(trained, tmp_path)
    marker = tmp_path / "pwned"
    plant_malicious_checkpoint(run_dir, marker)
    checkpoint = run_dir / "checkpoint.pt"
    capsys.readouterr()
    assert main(["probe", str(run_dir), "--out", str(tmp_path / "probe.csv"), "--n", "16"]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and f"{checkpoint} holds objects a checkpoint never holds (" in lines[0], lines
    assert "io.open" in lines[0] and "--restart" in lines[0]
    unfinished(run_dir)
    assert main(tiny_argv(mnist_root, out)) == 2  # the same command resumes the run
    lines = error_lines(capsys)
    assert len(lines) == 1 and f"{checkpoint} holds objects a checkpoint never holds (" in lines[0], lines
    assert not marker.exists()


@pytest.mark.parametrize("method", ["gan", "ebgan", "ebgan-pt", "began", "magan"])
def test_every_method_s_checkpoint_is_plain_data(mnist_root, tmp_path, method):
    config = RunConfig(method=method, budget=Budget("steps", 3), batch_size=16, z_dim=8, holdout=100,
                       mlp=MLPConfig(size_g=16, size_d=16), data_root=str(mnist_root), out=str(tmp_path),
                       log_every=1, checkpoint_every=2, download=False)
    run = prepare(config)
    run.run_dir.mkdir(parents=True)
    Trainer(run).train()
    state = load_checkpoint(run.run_dir / "checkpoint.pt", "cpu")  # weights_only=True
    assert state["result"]["steps"] == 3 and set(state["method"]) == set(run.method.state_names)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all" * 10, "truncated"])
def test_a_damaged_checkpoint_is_one_line_for_probe(trained, tmp_path, capsys, content):
    _, run_dir, _ = copy_runs(trained, tmp_path)
    checkpoint = run_dir / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:400] if content == "truncated" else content)
    capsys.readouterr()
    assert main(["probe", str(run_dir), "--out", str(tmp_path / "probe.csv"), "--n", "16"]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and f"{checkpoint} is corrupt (" in lines[0], lines


def test_a_checkpoint_of_another_method_is_one_line_for_run_and_probe(trained, mnist_root, tmp_path, capsys):
    out, ebgan, gan = copy_runs(trained, tmp_path)
    shutil.copy(gan / "checkpoint.pt", ebgan / "checkpoint.pt")  # a GAN's D has no decoder
    checkpoint = ebgan / "checkpoint.pt"
    capsys.readouterr()
    assert main(["probe", str(ebgan), "--out", str(tmp_path / "probe.csv"), "--n", "16"]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and f"{checkpoint} does not fit this run (" in lines[0], lines
    unfinished(ebgan)
    assert main(tiny_argv(mnist_root, out)) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and f"{checkpoint} does not fit this run (" in lines[0] and "--restart" in lines[0], lines


# -- nothing written outside --out -------------------------------------------------------------------------------
def test_a_symlinked_run_folder_is_refused_and_restart_never_empties_its_target(trained, mnist_root, tmp_path,
                                                                               sentinel, capsys):
    out, run_dir, _ = copy_runs(trained, tmp_path)
    shutil.rmtree(run_dir)
    run_dir.symlink_to(sentinel, target_is_directory=True)
    before = snapshot(sentinel)
    capsys.readouterr()
    for extra in (["--restart"], []):
        assert main([*tiny_argv(mnist_root, out), *extra]) == 2
        lines = error_lines(capsys)
        assert len(lines) == 1 and f"{run_dir} is a symbolic link" in lines[0], lines
    assert snapshot(sentinel) == before


@pytest.mark.parametrize("what", ["symlink", "folder"])
def test_a_lock_that_is_a_link_or_a_folder_is_one_line(trained, mnist_root, tmp_path, sentinel, capsys, what):
    out, run_dir, _ = copy_runs(trained, tmp_path)
    lock = run_dir / ".lock"
    lock.unlink(missing_ok=True)
    if what == "symlink":
        lock.symlink_to(sentinel / "precious.txt")
    else:
        lock.mkdir()
    before = snapshot(sentinel)
    capsys.readouterr()
    assert main([*tiny_argv(mnist_root, out), "--restart"]) == 2  # a restart takes the lock
    lines = error_lines(capsys)
    assert len(lines) == 1 and f"{lock} is a {'symbolic link' if what == 'symlink' else 'folder'}" in lines[0], lines
    assert snapshot(sentinel) == before


def test_a_symlinked_trajectory_is_never_written_through_on_resume(trained, mnist_root, tmp_path, sentinel, capsys):
    out, run_dir, _ = copy_runs(trained, tmp_path)
    unfinished(run_dir)
    trajectory = run_dir / "trajectory.csv"
    (sentinel / "precious.txt").write_bytes(trajectory.read_bytes())
    trajectory.unlink()
    trajectory.symlink_to(sentinel / "precious.txt")
    before = snapshot(sentinel)
    capsys.readouterr()
    assert main(tiny_argv(mnist_root, out)) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and f"{trajectory} is a symbolic link" in lines[0], lines
    assert snapshot(sentinel) == before


@pytest.mark.parametrize("name, columns", [("trajectory.csv", STANDARD_COLUMNS), ("evaluation.csv", quality_columns())])
def test_appending_to_a_symlinked_file_refuses(tmp_path, sentinel, name, columns):
    path = tmp_path / name
    writer = TrajectoryWriter(path, columns)
    writer.start(resume_after_step=None)
    path.symlink_to(sentinel / "precious.txt")  # planted after the start
    before = snapshot(sentinel)
    with pytest.raises(ConfigError, match=f"^{path} is a symbolic link; "):
        writer.append({"step": 1, "wall_s": 0.5})
    with pytest.raises(ConfigError, match=f"^{path} is a symbolic link; "):
        TrajectoryWriter(path, columns).start(resume_after_step=4)
    assert snapshot(sentinel) == before and path.is_symlink()


def test_an_empty_out_is_an_error(mnist_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["run", "--methods", "ebgan", *TINY, "--data-root", str(mnist_root), "--out", ""]) == 2
    lines = error_lines(capsys)
    assert lines == ["error: --out is empty; pass the folder for the run folders (e.g. --out runs)"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["report", "plot"])
def test_an_empty_out_is_an_error_for_the_readers_too(command, report_runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # Path("") is "."; refused before it could become the current folder
    capsys.readouterr()
    assert main([command, str(report_runs), "--out", ""]) == 2
    assert error_lines(capsys)[0].startswith("error: --out is empty")
    assert list(tmp_path.iterdir()) == []


# -- a damaged trajectory is kept aside, never dropped -----------------------------------------------------------
HEADER = "step,loss_d,margin\n"
ROWS = "".join(f"{step},{step / 10},1.0\n" for step in (4, 8, 12, 16))


def resume_writer(path: Path, resume_after_step: int, last_row_step: int | None = None) -> TrajectoryWriter:
    writer = TrajectoryWriter(path, ["step", "loss_d", "margin"])
    writer.start(resume_after_step=resume_after_step, last_row_step=last_row_step)
    return writer


@pytest.mark.parametrize("name, damaged, kept", [
    ("truncated", HEADER + ROWS[:15], [4]),  # cut inside the row of step 8, before the checkpoint at 12
    ("truncated at a row's end", HEADER + ROWS[:19], [4]),  # step 8's row whole but for its newline
    ("empty", "", []),
    ("garbage", "\x00\x17garbage, no header\n4,0.4,1.0\n", []),
    ("garbage in the middle", HEADER + ROWS[:10] + "#!%\n" + ROWS[10:], [4, 8, 12]),
])
def test_a_damaged_trajectory_is_moved_aside_and_the_readable_rows_kept(tmp_path, capfd, name, damaged, kept):
    path = tmp_path / "trajectory.csv"
    path.write_text(damaged)
    writer = resume_writer(path, resume_after_step=12)
    asides = list(tmp_path.glob("trajectory.csv.corrupt-*"))
    assert len(asides) == 1 and asides[0].read_text() == damaged  # never dropped
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"warning: {path} is damaged (") and str(asides[0]) in lines[0]
    writer.append({"step": 16, "loss_d": 1.6, "margin": 1.0})
    assert pd.read_csv(path)["step"].tolist() == [*kept, 16]


def test_a_trajectory_cut_at_a_row_boundary_is_caught_by_the_checkpoint_s_last_row(tmp_path, capfd):
    path = tmp_path / "trajectory.csv"
    path.write_text(HEADER + ROWS[:10])  # the row of step 4 only; the checkpoint at 12 saw its row of 12 logged
    resume_writer(path, resume_after_step=12, last_row_step=12)
    assert len(list(tmp_path.glob("trajectory.csv.corrupt-*"))) == 1
    assert "its row of step 12 is missing" in capfd.readouterr().err


@pytest.mark.parametrize("tail", ["", "2", "20,2.0", "20,2.0,1."])
def test_a_row_torn_after_the_checkpoint_is_dropped_quietly(tmp_path, capfd, tail):
    path = tmp_path / "trajectory.csv"
    path.write_text(HEADER + ROWS + tail)
    resume_writer(path, resume_after_step=16, last_row_step=16)
    assert list(tmp_path.glob("trajectory.csv.corrupt-*")) == [] and capfd.readouterr().err == ""
    assert pd.read_csv(path)["step"].tolist() == [4, 8, 12, 16]


def test_a_damaged_evaluation_file_is_moved_aside_too(tmp_path, capfd):
    path = tmp_path / "evaluation.csv"
    header, row = ",".join(quality_columns()) + "\n", "6," + ",".join(["1.0"] * (len(quality_columns()) - 1)) + "\n"
    path.write_text(header + row + "12,0.")  # the evaluation of step 12 torn: after the checkpoint, dropped
    TrajectoryWriter(path, quality_columns()).start(resume_after_step=11)
    assert list(tmp_path.glob("evaluation.csv.corrupt-*")) == [] and pd.read_csv(path)["step"].tolist() == [6]
    path.write_text(header + row[:9])  # the evaluation of step 6 cut: rows before the checkpoint lost
    TrajectoryWriter(path, quality_columns()).start(resume_after_step=11)
    assert [p.read_text() for p in tmp_path.glob("evaluation.csv.corrupt-*")] == [header + row[:9]]
    assert f"warning: {path} is damaged" in capfd.readouterr().err


def test_a_run_resumes_past_a_truncated_trajectory_and_keeps_the_damaged_file(mnist_root, tmp_path, capfd):
    config = RunConfig(method="ebgan", budget=Budget("steps", 12), batch_size=16, z_dim=8, holdout=100,
                       mlp=MLPConfig(size_g=16, size_d=16), data_root=str(mnist_root), out=str(tmp_path / "runs"),
                       log_every=2, checkpoint_every=4, download=False, eval_n=50, n_samples=16)

    def interrupt(row):
        if row["step"] == 10:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train_one(config, on_log=interrupt)
    trajectory = prepare(config).run_dir / "trajectory.csv"
    lines = trajectory.read_text().splitlines(keepends=True)  # header, then the rows of steps 2, 4, 6, 8, 10
    damaged = "".join(lines[:3]) + lines[3][:40]  # cut inside the row of step 6, before the checkpoint at 8
    trajectory.write_text(damaged)
    capfd.readouterr()
    assert train_one(config).status == "finished"
    asides = list(trajectory.parent.glob("trajectory.csv.corrupt-*"))
    assert len(asides) == 1 and asides[0].read_text() == damaged
    warnings = [line for line in capfd.readouterr().err.splitlines() if "is damaged" in line]
    assert len(warnings) == 1 and str(asides[0]) in warnings[0]
    assert pd.read_csv(trajectory)["step"].tolist() == [2, 4, 10, 12]  # 6 and 8 are in the file kept aside


# -- records that are not records --------------------------------------------------------------------------------
def _empty_list(result):
    return []


def _text_score(result):
    return result | {"evaluation": result["evaluation"] | {"i_prime": "high"}}


def _no_budget(result):
    return {k: v for k, v in result.items() if k != "budget"}


def _future_schema(result):
    return result | {"schema_version": 99}


@pytest.mark.parametrize("damage, says", [
    (_empty_list, "is not a run's result.json (a JSON list, not an object)"),
    (_text_score, 'has a non-numeric evaluation.i_prime ("high")'),
    (_no_budget, "lacks budget"),
    (_future_schema, "has schema version 99; this ebm-bench reads version 1"),
])
def test_a_record_that_is_not_one_is_skipped_by_a_leaderboard_and_one_line_elsewhere(trained, tmp_path, capsys,
                                                                                     damage, says):
    out, ebgan, _ = copy_runs(trained, tmp_path)
    result = ebgan / "result.json"
    result.write_text(json.dumps(damage(read_json(result))))
    records, unreadable = read_records([str(out)])
    assert list(records["method"]) == ["gan"]
    assert len(unreadable) == 1 and str(result) in unreadable[0] and says in unreadable[0]
    with pytest.raises(ConfigError, match=f"^{re.escape(str(result))} .*{re.escape(says[:20])}") as error:
        load_records([out])  # plots, convergence, reliability
    assert "\n" not in str(error.value)
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--reference", "none", "--format", "csv"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and says in warnings[0]
    with pytest.raises(ConfigError, match=f"^{re.escape(str(result))} "):
        existing_result(ebgan)  # `run` does not take it for an ended run either


def test_the_required_result_fields_are_run_results_without_a_default():
    import dataclasses

    required = [f.name for f in dataclasses.fields(RunResult)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    assert list(RESULT_REQUIRED) == required
