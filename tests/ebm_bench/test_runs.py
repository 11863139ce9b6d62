"""Atomic files (and their modes), the interval sums a checkpoint carries, and the trajectory writer's resume."""

import os
import stat

import pandas as pd
import pytest
import torch

from ebm_bench.files import read_json, save_torch, write_json
from ebm_bench.record import load_checkpoint
from ebm_bench.interval import IntervalStats
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


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_get_the_umask_mode_not_mkstemps_0600(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_json(tmp_path / "result.json", {"status": "finished"})
        save_torch(tmp_path / "checkpoint.pt", {"weights": torch.zeros(3)})
    finally:
        os.umask(previous)
    for name in ("result.json", "checkpoint.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_interval_sums_round_trip_through_a_checkpoint(tmp_path):
    stats = IntervalStats()
    stats.add_energy("real", torch.tensor([1.0, 2.0, 4.0]))
    stats.add_scalar("loss_d", torch.tensor(0.5))
    save_torch(tmp_path / "c.pt", stats.state_dict())
    restored = IntervalStats()
    restored.load_state_dict(load_checkpoint(tmp_path / "c.pt", "cpu"))  # plain data: weights_only
    for more in (stats, restored):
        more.add_energy("real", torch.tensor([8.0, 16.0, 32.0]))
        more.add_scalar("loss_d", torch.tensor(1.5))
    assert restored.row({}) == stats.row({})
