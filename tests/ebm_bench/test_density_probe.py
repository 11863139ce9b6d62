"""The known-density probe: on hand-built D's whose energy is exactly -log P or exactly log Q/P it finds each, and
it reads trained gaussians-2d runs (frozen Q or trained G) from their folders, on the command line too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn

from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.cli import main
from ebm_bench.datasets.gaussians import DATA, to_images, to_points
from ebm_bench.density_probe import (
    density_probe_runs,
    density_targets,
    probe_energy,
    probe_points,
    run_energy,
    summarise,
    summary_markdown,
)
from ebm_bench.errors import ConfigError
from ebm_bench.methods import make_method
from ebm_bench.nets import DOutput
from ebm_bench.nets.toy import FROZEN_Q
from ebm_bench.runs import train_one
from ebm_bench.stats import spearman

N, GRID, N_BOOT = 500, 24, 200


class ExactD(nn.Module):
    """A classifier whose logit is a known log-density ratio of the point: log P, or log P/Q."""

    def __init__(self, q=None):
        super().__init__()
        self.q = q

    def forward(self, images):
        points = to_points(images)
        logit = DATA.log_density(points) - (self.q.log_density(points) if self.q is not None else 0.0)
        return DOutput(logit=logit)


def exact_run(q=None, batch_size=64):
    """What run_energy needs of a run: D, GAN's energy -logit (so the energy is -log P, or log Q/P)."""
    return SimpleNamespace(config=SimpleNamespace(batch_size=batch_size), discriminator=ExactD(q),
                           method=make_method("gan", {}), run_id="exact")


def by_target(table):
    return table.set_index(["points", "target"])


def test_an_energy_that_is_exactly_minus_log_p_correlates_one_with_it():
    table = by_target(probe_energy(run_energy(exact_run()), FROZEN_Q, N, GRID, N_BOOT))
    for points in ("data", "plane"):
        row = table.loc[(points, "neg_log_p")]
        assert row["rho"] == pytest.approx(1.0) and row["ci_low"] == pytest.approx(1.0)
        assert row["n"] == (N if points == "data" else GRID * GRID)
    # inside the data's mass the other target ranks the points otherwise: Q covers 4 of P's 8 modes
    assert table.loc[("data", "log_q_over_p"), "rho"] < 0.6


def test_an_energy_that_is_exactly_log_q_over_p_correlates_one_with_it():
    table = by_target(probe_energy(run_energy(exact_run(FROZEN_Q)), FROZEN_Q, N, GRID, N_BOOT))
    for points in ("data", "plane"):
        assert table.loc[(points, "log_q_over_p"), "rho"] == pytest.approx(1.0)
        assert table.loc[(points, "log_q_over_p"), "ci_high"] == pytest.approx(1.0)
    data = table.loc[("data", "neg_log_p")]
    assert data["rho"] < 0.6 and data["ci_low"] < data["rho"] < data["ci_high"]
    targets = density_targets(probe_points(N, GRID)["data"], FROZEN_Q)
    assert data["rho"] == pytest.approx(spearman(targets["neg_log_p"], targets["log_q_over_p"]))


def test_without_a_known_q_log_q_over_p_is_left_out():
    table = by_target(probe_energy(run_energy(exact_run()), None, N, GRID, N_BOOT))
    assert table.loc[("data", "log_q_over_p"), ["rho", "ci_low", "ci_high"]].isna().all()
    assert table.loc[("data", "neg_log_p"), "rho"] == pytest.approx(1.0)


def test_every_point_is_scored_in_whole_batches():
    points = probe_points(100, 2)["data"]  # 100 = one batch of 64 and 36 more
    images = to_images(points)
    assert torch.allclose(run_energy(exact_run())(images), -DATA.log_density(points))
    with pytest.raises(ConfigError, match="scores 100 points, fewer than exact's batch of 128"):
        run_energy(exact_run(batch_size=128))(images)


def test_the_summary_averages_runs_inside_minus_one_to_one():
    rows = [{"method": "ebgan", "generator": "frozen Q", "points": "data", "target": "neg_log_p", "rho": rho,
             "ci_low": rho - 0.1, "ci_high": rho + 0.05} for rho in (0.9, 0.95, 0.99)]
    rows.append(rows[0] | {"method": "gan", "rho": 0.5})
    summary = summarise(pd.DataFrame(rows)).set_index("method")
    ebgan = summary.loc["ebgan"]
    assert ebgan["runs"] == 3 and ebgan["rho"] == pytest.approx(2.84 / 3)
    assert -1 <= ebgan["ci_low"] < ebgan["rho"] < ebgan["ci_high"] <= 1
    assert summary.loc["gan", "runs"] == 1 and summary.loc["gan", ["ci_low", "ci_high"]].isna().all()
    markdown = summary_markdown(summary.reset_index())
    assert "| ebgan | frozen Q | 3 | 0.95 [" in markdown and "| gan | frozen Q | 1 | 0.50 | n/a |" in markdown


# -- trained runs --------------------------------------------------------------------------------------------------
SMALL = MLPConfig(n_layer_g=3, size_g=16, n_layer_d=2, size_d=16)


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory) -> Path:
    """Two finished gaussians-2d runs of 20 steps: EBGAN against the frozen Q, GAN with a trained G."""
    out = tmp_path_factory.mktemp("toy-runs") / "runs"
    for method, arch, options in (("ebgan", "toy-fixed-q", {"margin": 1.0}), ("gan", "toy", {})):
        config = RunConfig(method=method, dataset="gaussians-2d", arch=arch, budget=Budget("steps", 20),
                           batch_size=32, z_dim=4, mlp=SMALL, holdout=100, out=str(out), log_every=10,
                           n_samples=16, method_options=options, data_root=str(out.parent), download=False)
        assert train_one(config).status == "finished"
    return out


def test_trained_runs_are_probed_from_their_folders(toy_runs):
    table = density_probe_runs(sorted(toy_runs.iterdir()), n=N, grid=GRID, n_boot=N_BOOT)
    assert len(table) == 2 * 2 * 2  # runs x point sets x targets
    frozen, trained = table[table["method"] == "ebgan"], table[table["method"] == "gan"]
    assert set(frozen["generator"]) == {"frozen Q"} and set(frozen["arch"]) == {"toy-fixed-q"}
    assert frozen["rho"].between(-1, 1).all() and (frozen["ci_low"] <= frozen["ci_high"]).all()
    assert set(trained["generator"]) == {"trained"}
    assert trained.loc[trained["target"] == "log_q_over_p", "rho"].isna().all()
    assert trained.loc[trained["target"] == "neg_log_p", "rho"].notna().all()


def test_the_command_probes_and_re_renders(toy_runs, tmp_path, capsys):
    csv, first, second = tmp_path / "density.csv", tmp_path / "first", tmp_path / "second"
    args = ["--n", str(N), "--grid", str(GRID), "--n-boot", str(N_BOOT)]
    assert main(["density-probe", str(toy_runs), "--out", str(csv), "--summary", str(first), *args]) == 0
    assert "density.csv: 8 rows from 2 run(s)" in capsys.readouterr().out
    assert main(["density-probe", "--table", str(csv), "--summary", str(second)]) == 0
    assert (first / "summary.md").read_text() == (second / "summary.md").read_text()
    assert "| ebgan | frozen Q | 1 |" in (first / "summary.md").read_text()


def test_bad_inputs_get_one_line(toy_runs, tmp_path, capsys):
    mnist_run = tmp_path / "runs" / "gan-on-mnist"
    shutil.copytree(next(toy_runs.glob("gan-*")), mnist_run)
    config = json.loads((mnist_run / "config.json").read_text())
    (mnist_run / "config.json").write_text(json.dumps(config | {"dataset": "mnist"}))
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("a,b\n1,2\n")
    cases = [
        ([str(mnist_run)], "the density probe needs runs on gaussians-2d, whose density is known; gan-on-mnist "
                           "trained on mnist"),
        (["--table", str(garbage)], "is not a density-probe table: it lacks the column(s) method, generator"),
        ([], "density-probe takes run folders, or --table"),
        ([str(toy_runs), "--grid", "1"], "--grid 1 is too small; use 2 or more"),
    ]
    for args, message in cases:
        assert main(["density-probe", *args, "--out", str(tmp_path / "x.csv")]) == 2
        err = capsys.readouterr().err
        assert message in " ".join(err.split()) and "Traceback" not in err
