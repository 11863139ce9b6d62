"""Atomic files and the trajectory writer's resume behaviour."""

import pandas as pd

from ebm_bench.files import read_json, write_json
from ebm_bench.trajectory import TrajectoryWriter


def test_write_json_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "deep" / "result.json"
    write_json(path, {"status": "running"})
    write_json(path, {"status": "finished", "value": float("inf")})
    assert read_json(path)["status"] == "finished"
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_trajectory_keeps_standard_columns_first_and_drops_rows_after_the_checkpoint_on_resume(tmp_path):
    path = tmp_path / "trajectory.csv"
    writer = TrajectoryWriter(path, ["step", "loss_d", "margin"])
    writer.start(resume_after_step=None)
    for step in (10, 20, 30):
        writer.append({"step": step, "loss_d": step / 10, "zeta": 1.0})
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["step", "loss_d", "margin", "zeta"] and frame["margin"].isna().all()
    resumed = TrajectoryWriter(path, ["step", "loss_d", "margin"])
    resumed.start(resume_after_step=20)
    resumed.append({"step": 30, "loss_d": 9.0, "zeta": 2.0})
    frame = pd.read_csv(path)
    assert frame["step"].tolist() == [10, 20, 30] and frame["loss_d"].tolist() == [1.0, 2.0, 9.0]
