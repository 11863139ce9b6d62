"""Reliability over a grid: shares, intervals, the rank test and the histograms on a hand-made grid."""

import math

import numpy as np
import pandas as pd
import pytest

from ebm_bench.cli import main
from ebm_bench.leaderboard.reliability import (optimiser_panels, reliability_markdown, reliability_table,
                                               reliability_test, subset)
from ebm_bench.plots import reliability_figure


def grid() -> pd.DataFrame:
    """Four EBGAN and four GAN runs; one of each diverged (no score). GAN uses two optimiser pairs."""
    rows = [("ebgan", 1.0, 2, "adam", "adam"), ("ebgan", 5.0, 3, "adam", "adam"), ("ebgan", 7.0, 4, "adam", "adam"),
            ("ebgan", None, 5, "adam", "adam"), ("gan", 0.5, 2, "adam", "adam"), ("gan", 3.0, 3, "sgd", "sgd"),
            ("gan", None, 4, "adam", "adam"), ("gan", 9.0, 5, "sgd", "sgd")]
    return pd.DataFrame([{"method": m, "status": "finished" if s is not None else "diverged", "evaluation.i_prime": s,
                          "config.mlp.n_layer_g": n, "config.mlp.n_layer_d": n, "config.optim.optimizer_d": d,
                          "config.optim.optimizer_g": g} for m, s, n, d, g in rows])


def test_shares_count_diverged_runs_as_failures():
    table = reliability_table(grid(), thresholds=(4.0,)).set_index(["subset", "group"])
    ebgan = table.loc[("all", "ebgan")]
    assert ebgan["runs"] == 4 and ebgan["diverged"] == 0.25 and ebgan["median_i_prime"] == 5.0
    assert ebgan["share_i_prime>=4"] == 0.5  # 5 and 7 of 1, 5, 7, diverged
    # Wilson's 95% interval of 2 of 4, by hand: (0.5 -+ 1.96 sqrt(0.0625 + 0.0600)) / 1.9604 around 0.5
    assert (ebgan["share_i_prime>=4_low"], ebgan["share_i_prime>=4_high"]) == pytest.approx((0.1500, 0.8500), abs=1e-4)
    assert table.loc[("nLayer<=3", "ebgan"), "runs"] == 2  # the 2- and 3-layer runs: scores 1 and 5
    assert table.loc[("nLayer<=3", "ebgan"), "share_i_prime>=4"] == 0.5
    assert table.loc[("all", "gan D:sgd G:sgd"), "share_i_prime>=4"] == 0.5  # 3 and 9
    assert table.loc[("all", "gan D:adam G:adam"), "diverged"] == 0.5
    assert ("all", "ebgan D:adam G:adam") not in table.index  # one optimiser pair: no sub-rows


def test_rank_test_by_hand():
    # diverged runs score below every run (and tie with each other): EBGAN (1, 5, 7, d) against GAN (0.5, 3, d, 9)
    # wins 2 + 3 + 3 pairs and ties one: U = 8.5 of 16
    tests = reliability_test(grid(), "ebgan", "gan").set_index("subset")
    assert tests.loc["all", "auc"] == pytest.approx(8.5 / 16)
    assert 0.0 < tests.loc["all", "p_greater"] < 1.0
    assert tests.loc["nLayer<=3", "auc"] == 0.75  # (1, 5) against (0.5, 3): 3 of 4 pairs


def test_markdown_and_figure():
    records = grid()
    table = reliability_table(records, thresholds=(4.0,))
    text = reliability_markdown(table, reliability_test(records, "ebgan", "gan"))
    assert "| all | ebgan | 4 | 0.25 [" in text and "ebgan > gan (Mann-Whitney)" in text
    fig = reliability_figure({"all": records, "nLayer<=3": subset(records, "nLayer<=3")}, "i_prime", (4.0,))
    assert len(fig.axes) == 2
    bars = [p for p in fig.axes[0].patches if p.get_x() < 0.25]  # diverged: left of the lowest score (0.5)
    assert sorted(round(b.get_height()) for b in bars) == [25, 25]


def test_figure_3_panels_put_each_optimiser_pair_beside_every_reference_run():
    panels = optimiser_panels(grid(), "ebgan")
    assert list(panels) == ["gan D:adam G:adam", "gan D:sgd G:sgd"]
    counts = {name: runs["method"].value_counts().to_dict() for name, runs in panels.items()}
    assert counts == {"gan D:adam G:adam": {"ebgan": 4, "gan": 2}, "gan D:sgd G:sgd": {"ebgan": 4, "gan": 2}}
    assert optimiser_panels(grid()[grid()["method"] == "ebgan"], "ebgan") == {}  # one optimiser pair: no figure
    fig = reliability_figure(panels, "i_prime")
    assert [ax.get_title() for ax in fig.axes] == list(panels)


def test_bad_thresholds_are_one_line(tmp_path, capsys):
    assert main(["reliability", str(tmp_path), "--thresholds", "two,four"]) == 2
    assert "--thresholds takes numbers" in capsys.readouterr().err


def test_no_metric_is_named():
    with pytest.raises(Exception, match="no run holds the metric 'fid'"):
        reliability_table(grid(), "fid")
    assert math.isnan(reliability_table(grid().assign(status="diverged"))["median_i_prime"].iloc[0])
    assert np.isfinite(reliability_table(grid())["diverged_high"]).all()
