"""The energy view's normalisation (hand-computed), its panels, the quality figure, and `ebm-bench plot`."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from ebm_bench.cli import main
from ebm_bench.errors import ConfigError
from ebm_bench.plots import (
    energy_figure,
    normalise_energy,
    plot_all,
    plot_quality,
    plot_raw_trajectories,
    quality_figure,
    record_columns,
    reference_energy,
    samples_figure,
)
from ebm_bench.plots.common import plt, spread
from ebm_bench.plots.energy import run_energies
from ebm_bench.record import load_records


def test_energy_relative_to_the_reference_is_a_ratio_for_positive_energies_and_an_offset_for_signed_ones():
    # auto-encoder energies (R > 0): E / R
    assert normalise_energy([2.0, 5.0, 1.0], [2.0, 2.5, 4.0]).tolist() == [1.0, 2.0, 0.25]
    # GAN's energy is -logit: R = -4, so real data at -4 -> 1, generated at 4 -> 1 + 8/4 = 3 (above, not -1)
    assert normalise_energy([-4.0, 4.0, -2.0], -4.0).tolist() == [1.0, 3.0, 1.5]
    assert np.isnan(normalise_energy([1.0, 1.0], [0.0, np.nan])).all()


def test_the_reference_energy_prefers_evaluations_then_the_final_held_out_energy_then_the_last_batch():
    table = pd.DataFrame({"step": [6, 12], "energy_heldout": [2.0, 5.0]})
    values, source = reference_energy([4, 8, 12, 16], table, 7.0, 9.0)
    assert source == "evaluation" and values.tolist() == [2.0, 3.0, 5.0, 5.0]  # 2 + (8 - 6)/6 * 3 = 3
    no_energy = table.assign(energy_heldout=np.nan)
    assert reference_energy([4, 8], no_energy, 7.0, 9.0)[1] == "heldout"
    values, source = reference_energy([4, 8], None, float("nan"), 9.0)
    assert source == "batch" and values.tolist() == [9.0, 9.0]


def test_runs_of_one_method_share_a_mean_and_a_min_max_band_on_the_steps_all_of_them_reached():
    x, mean, low, high = spread([([1, 2, 3], [1.0, 2.0, 3.0]), ([1, 2, 3], [3.0, 4.0, 5.0])])
    assert x.tolist() == [1, 2, 3] and mean.tolist() == [2.0, 3.0, 4.0] and low.tolist() == [1.0, 2.0, 3.0]
    x, mean, _, high = spread([([0, 2, 4], [0.0, 2.0, 4.0]), ([0, 1, 2], [1.0, 1.0, 1.0])])  # one stopped at 2
    assert x.tolist() == [0, 1, 2] and mean.tolist() == [0.5, 1.0, 1.5] and high.tolist() == [1.0, 1.0, 2.0]


def test_a_run_is_normalised_by_its_held_out_energy_at_each_step(report_runs):
    records = load_records([report_runs])
    ebgan = records[(records["method"] == "ebgan") & (records["seed"] == 0)].iloc[0]
    energies = run_energies(ebgan)
    logged = pd.read_csv(f"{ebgan['run_dir']}/trajectory.csv")
    assert energies.source == "evaluation" and energies.steps.tolist() == [4, 8, 12]
    # R is 2 before the first evaluation (step 6), 3 at step 8 (between 2 at 6 and 5 at 12), 5 at 12
    np.testing.assert_allclose(energies.real, logged["energy_real_mean"] / [2.0, 3.0, 5.0])
    np.testing.assert_allclose(energies.margin, 10.0 / np.array([2.0, 3.0, 5.0]))  # EBGAN's m = 10
    assert energies.generated.tolist() == [1.5, 1.2] and energies.auroc.tolist() == [0.6, 0.8]
    gan = run_energies(records[records["method"] == "gan"].iloc[0])
    heldout = records.loc[records["method"] == "gan", "evaluation.energy_heldout_mean"].iloc[0]
    gan_logged = pd.read_csv(f"{records.loc[records['method'] == 'gan', 'run_dir'].iloc[0]}/trajectory.csv")
    assert gan.source == "heldout" and gan.margin is None and gan.auroc is None
    np.testing.assert_allclose(gan.real, 1 + (gan_logged["energy_real_mean"] - heldout) / abs(heldout))
    zero = records[records["method"] == "gan"].iloc[0].copy()
    zero["evaluation.energy_auroc"] = 0.0  # every generated sample below every real one: drawn, not dropped
    assert run_energies(zero).final_auroc == 0.0


def test_the_energy_view_has_a_column_per_method_and_no_empty_panel(report_runs):
    records = load_records([report_runs])
    fig = energy_figure(records)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t.split()[0] for t in titles] == ["ebgan", "gan"]
    assert "2 seeds" in titles[0] and "at each evaluation" in titles[0] and "final held-out" in titles[1]
    assert len(fig.axes) == 4  # energy and AUROC for both: GAN's AUROC is its end-of-run marker
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "margin m" in legend and any("band: min-max" in t for t in legend)
    plt.close(fig)
    records.loc[records["method"] == "gan", "evaluation.energy_auroc"] = np.nan
    fig = energy_figure(records)
    assert len(fig.axes) == 3  # GAN has no AUROC now: its panel is left out, not left empty
    plt.close(fig)
    fig = energy_figure(records[records["method"] == "gan"].drop(columns="evaluation.energy_auroc"))
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "step"  # no AUROC row at all
    plt.close(fig)


def test_quality_over_training_has_a_panel_per_score_the_runs_hold(report_runs, tmp_path):
    records = load_records([report_runs])
    fig = quality_figure(records)
    assert [ax.get_title().split()[0] for ax in fig.axes] == ["fid_mnist", "i_prime", "classes_covered"]
    line = fig.axes[1].get_lines()[0]
    assert line.get_xdata().tolist() == [6, 12] and line.get_ydata().tolist() == [1.25, 2.25]  # mean of 2 seeds
    plt.close(fig)
    assert quality_figure(records[records["method"] == "gan"]) is None
    with pytest.raises(ConfigError, match="--eval-every"):
        plot_quality(records[records["method"] == "gan"], tmp_path)


def test_plot_all_draws_the_energy_view_and_quality_only_where_the_data_allows(report_runs, tmp_path):
    names = {p.name for p in plot_all([report_runs], tmp_path / "all")}
    assert {"energy.png", "energy.svg", "quality.png", "samples.png"} <= names and "trajectories.png" not in names
    gan_only = tmp_path / "gan"
    for run in report_runs.glob("gan-*"):
        shutil.copytree(run, gan_only / run.name)
    names = {p.name for p in plot_all([gan_only], tmp_path / "gan-plots", raw=())}
    assert "energy.png" in names and "quality.png" not in names and "trajectories.png" in names


def test_raw_panels_draw_the_columns_asked_for_and_name_the_logged_ones_otherwise(report_runs, tmp_path):
    records = load_records([report_runs])
    assert (tmp_path / "trajectories.png") in plot_raw_trajectories(records, tmp_path, ["loss_d", "loss_g"])
    with pytest.raises(ConfigError, match="no run logged the trajectory column.*nope; choose from .*loss_d"):
        plot_raw_trajectories(records, tmp_path, ["nope"])


def test_the_plot_command_keeps_the_raw_panels_under_an_option(report_runs, tmp_path, capsys):
    assert main(["plot", str(report_runs), "--out", str(tmp_path), "--raw"]) == 0
    assert (tmp_path / "trajectories.png").exists() and (tmp_path / "energy.png").exists()
    assert main(["plot", str(report_runs), "--out", str(tmp_path), "--raw-columns", "k_tt"]) == 2
    err = capsys.readouterr().err
    assert "k_tt" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_samples_per_margin_take_the_first_seed_and_a_row_per_method(tmp_path):
    rows = []
    for method in ("ebgan", "ebgan-pt"):
        for margin in (1.0, 4.0):
            for seed in (1, 0):
                run_dir = tmp_path / f"{method}-{margin:g}-{seed}"
                run_dir.mkdir()
                plt.imsave(run_dir / "samples.png", np.eye(4 + seed), cmap="gray")  # seed 0: 4 x 4
                rows.append({"method": method, "seed": seed, "run_dir": str(run_dir),
                             "config.method_options.margin": margin})
    fig = samples_figure(pd.DataFrame(rows))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["ebgan m = 1", "ebgan m = 4", "ebgan-pt m = 1", "ebgan-pt m = 4"]
    one_method = samples_figure(pd.DataFrame(rows[:4]))
    assert [ax.get_title() for ax in one_method.axes if ax.get_title()] == ["m = 1", "m = 4"]
    assert all(img.get_array().shape[:2] == (4, 4) for ax in fig.axes for img in ax.get_images())  # seed 0's grids
    plt.close("all")


def test_plot_metrics_are_named_as_the_leaderboard_names_them():
    records = pd.DataFrame({"evaluation.i_prime": [1.0], "quality.i_prime.best": [2.0], "margin": [4.0]})
    assert record_columns(records, ["i_prime", "i_prime.best", "margin"]) == [
        "evaluation.i_prime", "quality.i_prime.best", "margin"]
    with pytest.raises(ConfigError, match="no score named fid_mnist, nope"):
        record_columns(records, ["i_prime", "fid_mnist", "nope"])


def _damaged_copy(report_runs, tmp_path, file: str, data: bytes | None):
    """A copy of the three runs with EBGAN seed 1's `file` replaced by `data` (None: deleted)."""
    runs = tmp_path / "runs"
    shutil.copytree(report_runs, runs)
    path = next(runs.glob("ebgan-mnist-seed1-*")) / file
    if data is None:
        path.unlink()
    else:
        path.write_bytes(data)
    return load_records([runs])


def test_a_run_without_a_readable_trajectory_is_named_and_not_counted(report_runs, tmp_path):
    records = _damaged_copy(report_runs, tmp_path, "trajectory.csv", bytes(range(256)))
    with pytest.warns(UserWarning, match="the energy view leaves out .*ebgan-mnist-seed1-.*trajectory.csv is unread"):
        fig = energy_figure(records)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0].startswith("ebgan  (1 run)")  # the run drawn, not "2 seeds"
    plt.close(fig)


def test_the_quality_legend_counts_the_runs_with_scores_over_training(report_runs, tmp_path):
    records = _damaged_copy(report_runs, tmp_path, "evaluation.csv", None)  # as a run without --eval-every
    fig = quality_figure(records)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["ebgan (1 run)"]
    plt.close(fig)


def test_energy_panel_titles_do_not_overlap(report_runs, tmp_path):
    # EBGAN seed 1 without evaluation.csv: its column's R has two sources, the longest title the figure makes
    records = _damaged_copy(report_runs, tmp_path, "evaluation.csv", None)
    records = pd.concat([records, records.assign(method="ebgan-pt"), records.assign(method="magan")])
    fig = energy_figure(records)
    fig.canvas.draw()
    boxes = [ax.title.get_window_extent() for ax in fig.axes if ax.get_title()]
    assert len(boxes) == 4 and "\n" in fig.axes[0].get_title()
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)


def test_a_truncated_samples_png_is_left_out_with_a_warning(report_runs, tmp_path):
    records = _damaged_copy(report_runs, tmp_path, "samples.png", b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.warns(UserWarning, match="the sample grid leaves out .*samples.png: not a readable PNG"):
        fig = samples_figure(records)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["m = 10"]  # seed 0's grid, drawn
    plt.close(fig)


def test_a_figure_saves_to_the_same_bytes_every_time():
    from ebm_bench.plots import figure_bytes

    def draw():
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        ax.set_title("one line")
        return fig

    for fmt in ("svg", "png"):
        first, second = figure_bytes(draw(), fmt), figure_bytes(draw(), fmt)
        assert first == second, fmt  # no date, no random ids: re-rendered committed plots stay byte-identical
    plt.close("all")
