"""Leaderboards and comparisons on hand-made run records with known means and stds."""

import json
import math
from html.parser import HTMLParser

import pytest

from ebm_bench.cli import main
from ebm_bench.errors import ConfigError
from ebm_bench.leaderboard import compare_tables, leaderboard_table, render
from ebm_bench.record import load_records
from ebm_bench.leaderboard import load_table
from ebm_bench.stats import t_quantile


def write_run(root, name, method, seed, scores, status="finished", margin=None, steps=1000, eval_n=100,
              classifier="abc", schema=1, quality=None):
    run = root / name
    run.mkdir(parents=True)
    options = {} if margin is None else {"margin": margin}
    config = {"method": method, "dataset": "mnist", "seed": seed, "budget": {"kind": "steps", "amount": steps},
              "image_size": 32, "method_options": options, "mlp": {"size_g": 800}, "data_root": "/nowhere",
              "out": str(root)}
    result = {"schema_version": schema, "run_id": name, "run_dir": str(run), "method": method, "dataset": "mnist",
              "seed": seed, "status": status, "budget": config["budget"], "steps": steps, "wall_s": 10.0 + seed,
              "steps_per_s": steps / (10.0 + seed), "params_g": 1000, "params_d": 500,
              "evaluation": {"n": eval_n, **scores}, "evaluation_provenance": {"classifier_sha256": classifier,
                                                                              "reference": "mnist-test"},
              **({"quality": quality} if quality else {})}
    manifest = {"data_sha256": "d" * 64, "versions": {"torch": "2.14.1", "ebm-bench": "0.1.0"}}
    for file, data in (("config.json", config), ("result.json", result), ("manifest.json", manifest)):
        (run / file).write_text(json.dumps(data))


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "a"
    for seed, (ip, fid) in enumerate([(1.0, 30.0), (2.0, 20.0), (3.0, 10.0)]):
        write_run(root, f"ebgan-{seed}", "ebgan", seed, {"i_prime": ip, "fid_mnist": fid})
    write_run(root, "ebgan-3", "ebgan", 3, {"i_prime": float("nan"), "fid_mnist": float("nan")}, status="diverged")
    for seed, (ip, fid) in enumerate([(0.5, 40.0), (0.7, 45.0)]):
        write_run(root, f"gan-{seed}", "gan", seed, {"i_prime": ip, "fid_mnist": fid})
    return root


def row(table, method):
    return table[table["method"] == method].iloc[0]


def test_mean_std_ci_over_finished_seeds_and_diverged_runs_counted(runs):
    table = leaderboard_table(load_records([runs]), ["i_prime", "fid_mnist"])
    ebgan = row(table, "ebgan")
    assert (ebgan["n_runs"], ebgan["n_diverged"], ebgan["i_prime_n"]) == (4, 1, 3)
    assert ebgan["i_prime_mean"] == pytest.approx(2.0) and ebgan["i_prime_std"] == pytest.approx(1.0)
    assert ebgan["i_prime_ci95"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert ebgan["fid_mnist_std"] == pytest.approx(10.0) and ebgan["budget"] == "1000 steps"
    gan = row(table, "gan")
    assert gan["i_prime_mean"] == pytest.approx(0.6) and gan["i_prime_std"] == pytest.approx(math.sqrt(0.02), 1e-5)
    assert gan["wall_s"] == pytest.approx(10.5) and gan["params_g"] == 1000 and gan["classifier_sha256"] == "abc"


def test_ranking_follows_each_metrics_direction(runs):
    write_run(runs, "began-0", "began", 0, {"i_prime": 0.1, "fid_mnist": 5.0})
    records = load_records([runs])
    by_i_prime = leaderboard_table(records, ["i_prime", "fid_mnist"], rank_by="i_prime")  # higher is better
    assert list(by_i_prime["method"]) == ["ebgan", "gan", "began"] and list(by_i_prime["rank"]) == ["1", "2", "3"]
    by_fid = leaderboard_table(records, ["i_prime", "fid_mnist"], rank_by="fid_mnist")  # lower is better
    assert list(by_fid["method"]) == ["began", "ebgan", "gan"]


def test_scores_over_training_rank_in_their_own_direction(tmp_path):
    def summary(best, final):
        return {"fid_mnist": {"best": best, "best_step": 500, "final": final, "drop": final - best,
                              "near_best_share": 1.0 if final <= 1.1 * best else 0.5}}

    # ebgan peaks best (10) and collapses (drop 30); gan peaks at 15 and stays there
    write_run(tmp_path, "ebgan-0", "ebgan", 0, {"fid_mnist": 40.0}, quality=summary(10.0, 40.0))
    write_run(tmp_path, "gan-0", "gan", 0, {"fid_mnist": 15.0}, quality=summary(15.0, 15.0))
    records = load_records([tmp_path])
    by_best = leaderboard_table(records, ["fid_mnist"], rank_by="fid_mnist.best")  # lower FID is better
    assert list(by_best["method"]) == ["ebgan", "gan"] and by_best["fid_mnist.best_mean"].tolist() == [10.0, 15.0]
    by_drop = leaderboard_table(records, ["fid_mnist"], rank_by="fid_mnist.drop")  # a smaller drop is better
    assert list(by_drop["method"]) == ["gan", "ebgan"]
    by_share = leaderboard_table(records, ["fid_mnist"], rank_by="fid_mnist.near_best_share")  # higher: steadier
    assert list(by_share["method"]) == ["gan", "ebgan"]
    with pytest.raises(ConfigError, match="they hold: fid_mnist, fid_mnist.best"):
        leaderboard_table(records, ["i_prime.best"])


def test_whole_curve_statistics_rank_in_the_metrics_direction_and_old_records_get_them(tmp_path):
    # A record written before last_k_mean and auc (its result.json lacks them) gets them from its evaluation.csv
    old = {"fid_mnist": {"best": 10.0, "best_step": 100, "final": 40.0, "drop": 30.0, "near_best_share": 0.5}}
    write_run(tmp_path, "ebgan-0", "ebgan", 0, {"fid_mnist": 40.0}, quality=old)
    (tmp_path / "ebgan-0" / "evaluation.csv").write_text("step,fid_mnist\n100,10.0\n200,12.0\n300,20.0\n400,40.0\n")
    # a record that has them keeps its own (the evaluation.csv would give other values)
    new = {"fid_mnist": {"best": 15.0, "best_step": 100, "final": 15.0, "drop": 0.0, "near_best_share": 1.0,
                         "last_k_mean": 15.0, "auc": 15.0}}
    write_run(tmp_path, "gan-0", "gan", 0, {"fid_mnist": 15.0}, quality=new)
    (tmp_path / "gan-0" / "evaluation.csv").write_text("step,fid_mnist\n100,99.0\n200,99.0\n")
    records = load_records([tmp_path])
    ebgan = records[records["method"] == "ebgan"].iloc[0]
    # last three (12 + 20 + 40) / 3 = 24; area 100 * (11 + 16 + 30) = 5700 over 300 steps = 19; recorded best kept
    assert ebgan["quality.fid_mnist.last_k_mean"] == pytest.approx(24.0)
    assert ebgan["quality.fid_mnist.auc"] == pytest.approx(19.0) and ebgan["quality.fid_mnist.drop"] == 30.0
    gan = records[records["method"] == "gan"].iloc[0]
    assert gan["quality.fid_mnist.last_k_mean"] == 15.0 and gan["quality.fid_mnist.auc"] == 15.0
    by_last = leaderboard_table(records, ["fid_mnist.last_k_mean"], rank_by="fid_mnist.last_k_mean")  # lower: better
    assert list(by_last["method"]) == ["gan", "ebgan"] and by_last["fid_mnist.last_k_mean_mean"].tolist() == [15, 24]
    by_auc = leaderboard_table(records, ["fid_mnist.auc"], rank_by="fid_mnist.auc")
    assert list(by_auc["method"]) == ["gan", "ebgan"]
    by_best = leaderboard_table(records, ["fid_mnist.best"], rank_by="fid_mnist.best")
    assert list(by_best["method"]) == ["ebgan", "gan"]


def test_a_garbled_evaluation_csv_leaves_the_record_readable_with_a_warning(tmp_path):
    write_run(tmp_path, "ebgan-0", "ebgan", 0, {"fid_mnist": 40.0})
    (tmp_path / "ebgan-0" / "evaluation.csv").write_text("step,fid_mnist\n200,10.0\n100,12.0\n")  # steps unsorted
    with pytest.warns(UserWarning, match="evaluation.csv: unreadable .*sort the curve by step"):
        records = load_records([tmp_path])
    assert records["evaluation.fid_mnist"].tolist() == [40.0]
    assert not any(column.startswith("quality.") for column in records)


def test_the_cli_ranks_by_the_mean_of_the_last_three_evaluations(tmp_path, capsys):
    # ebgan ends better (15 < 20) but its last three average worse ((30 + 30 + 15) / 3 = 25 > 20)
    for name, method, curve in (("ebgan-0", "ebgan", (10.0, 30.0, 30.0, 15.0)), ("gan-0", "gan", (50.0, 20, 20, 20))):
        write_run(tmp_path, name, method, 0, {"fid_mnist": curve[-1]})
        (tmp_path / name / "evaluation.csv").write_text(
            "step,fid_mnist\n" + "".join(f"{100 * (k + 1)},{v}\n" for k, v in enumerate(curve)))
    assert main(["leaderboard", str(tmp_path), "--format", "csv", "--metrics", "fid_mnist.last_k_mean",
                 "--rank-by", "fid_mnist.last_k_mean", "--reference", "none"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("1,mnist,1000 steps,gan,") and lines[2].startswith("2,mnist,1000 steps,ebgan,")


def test_reference_row_is_kept_apart_from_the_ranking(runs):
    table = leaderboard_table(load_records([runs]), ["i_prime"], reference={"i_prime": 2.3}, reference_label="real")
    real = row(table, "real")
    assert real["i_prime_mean"] == 2.3 and real["rank"] == "" and real["n_runs"] == 0


def test_configs_that_differ_beyond_the_seed_are_separate_variants(tmp_path):
    for margin in (2, 8):
        for seed in (0, 1):
            write_run(tmp_path, f"m{margin}-{seed}", "ebgan", seed, {"i_prime": margin + seed}, margin=margin)
    table = leaderboard_table(load_records([tmp_path]))
    assert sorted(table["variant"]) == ["margin=2", "margin=8"]
    assert list(table["i_prime_mean"]) == [8.5, 2.5]


def test_every_format_renders(runs):
    table = leaderboard_table(load_records([runs]), ["i_prime", "fid_mnist"], rank_by="i_prime")
    markdown = render(table, "markdown")
    assert "| 1 | mnist | 1000 steps | ebgan |" in markdown and "2 ± 1 [-0.4841, 4.484]" in markdown
    assert "i_prime ↑" in markdown and "fid_mnist ↓" in markdown
    latex = render(table, "latex")
    assert latex.startswith("\\begin{tabular}") and "$\\pm$" in latex and latex.count("\\\\") == 3
    csv = render(table, "csv")
    assert csv.splitlines()[0].startswith("rank,dataset,budget,method,variant,n_runs,n_diverged,i_prime_mean")
    page = render(table, "html")

    class Checker(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.cells = [], 0

        def handle_starttag(self, tag, attrs):
            if tag not in ("meta",):
                self.stack.append(tag)
            self.cells += tag == "td"

        def handle_endtag(self, tag):
            assert self.stack.pop() == tag

    checker = Checker()
    checker.feed(page)
    assert page.startswith("<!DOCTYPE html>") and checker.stack == [] and checker.cells == 2 * 13  # 7 + 2 metrics + 4 columns


def test_csv_round_trip_and_cli_formats(runs, tmp_path, capsys):
    out = tmp_path / "table.csv"
    assert main(["leaderboard", str(runs), "--format", "csv", "--metrics", "i_prime", "--reference", "none",
                 "--output", str(out)]) == 0
    table = load_table(str(out))
    assert list(table["method"]) == ["ebgan", "gan"] and table["i_prime_mean"].tolist() == [2.0, 0.6]
    for fmt in ("markdown", "latex", "html", "rich"):
        assert main(["leaderboard", str(runs), "--format", fmt, "--reference", "none"]) == 0
        assert "ebgan" in capsys.readouterr().out


def test_compare_detects_a_setup_mismatch_and_tests_differences(runs, tmp_path):
    other = tmp_path / "b"
    for seed, ip in enumerate([5.0, 6.0, 7.0]):
        write_run(other, f"ebgan-{seed}", "ebgan", seed, {"i_prime": ip, "fid_mnist": 1.0}, steps=2000)
    a = leaderboard_table(load_records([runs]), ["i_prime"])
    b = leaderboard_table(load_records([other]), ["i_prime"])
    with pytest.raises(ConfigError, match="(?s)budget differs .*--force"):
        compare_tables(a, b)
    comparison, differences = compare_tables(a, b, force=True)
    assert any(d.startswith("budget differs") for d in differences)
    ebgan = comparison[comparison["method"] == "ebgan"].iloc[0]
    # Welch: means 2 vs 6, std 1 and 1, n 3 each: t = -4 / sqrt(2/3), df = 4
    assert ebgan["welch_t"] == pytest.approx(4 / math.sqrt(2 / 3), rel=1e-5)
    assert ebgan["p_value"] == pytest.approx(0.00805, abs=2e-4) and ebgan["better"] == "B"
    assert len(comparison) == 1  # gan is only in A


def test_compare_cli_refuses_different_classifiers(runs, tmp_path, capsys):
    other = tmp_path / "c"
    write_run(other, "ebgan-0", "ebgan", 0, {"i_prime": 2.0}, classifier="xyz")
    assert main(["compare", str(runs), str(other)]) == 2
    assert "classifier_sha256 differs" in capsys.readouterr().err


def test_old_schema_records_fail_with_a_clear_message(tmp_path):
    write_run(tmp_path, "old", "gan", 0, {"i_prime": 1.0}, schema=0)
    with pytest.raises(ConfigError, match="schema version 0; this ebm-bench reads version 1"):
        load_records([tmp_path])


def test_t_quantiles():
    assert t_quantile(0.975, 2) == pytest.approx(4.302653, rel=1e-6)
    assert t_quantile(0.975, 30) == pytest.approx(2.042272, rel=1e-6)


def test_counts_stay_exact_and_floats_keep_six_digits(tmp_path):
    write_run(tmp_path, "a", "gan", 0, {"i_prime": 1.23456789})
    records = load_records([tmp_path])
    records["params_g"] = 2829824
    table = leaderboard_table(records)
    assert table["params_g"].iloc[0] == 2829824 and table["i_prime_mean"].iloc[0] == 1.23457


def test_one_method_against_the_others_of_one_table(capsys):
    # the committed 2-epoch table: EBGAN I' 4.0 +- 1.1 against GAN 1.3 +- 0.8 over 3 seeds, Welch p = 0.035 (as its
    # README says); EBGAN against itself is not a row
    from pathlib import Path

    from ebm_bench.leaderboard import compare_methods

    table = load_table(str(Path(__file__).parents[3] / "leaderboards" / "mnist-mlp-2ep" / "table.csv"))
    rows = compare_methods(table, "ebgan").set_index(["method", "metric"])
    assert set(rows.index.get_level_values("method")) == {"gan", "ebgan-pt", "began", "magan"}
    gan = rows.loc[("gan", "i_prime")]
    assert gan["mean_ebgan"] == pytest.approx(3.99974) and gan["mean_method"] == pytest.approx(1.34535)
    assert gan["p_value"] == pytest.approx(0.0347, abs=5e-4) and gan["better"] == "A"
    with pytest.raises(ConfigError, match="--against wgan: no finished runs"):
        compare_methods(table, "wgan")
    assert main(["compare", "a.csv"]) == 2
    assert "or one with --against METHOD" in capsys.readouterr().err
