"""Issue 10's leaderboard defects, each reproduced: budgets in compare, numbers read back from CSV, a seed
counted twice, corrupt records, compare --force, and the stored reference row."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import ebm_bench.leaderboard.reference as reference_module
from ebm_bench.cli import main
from ebm_bench.leaderboard import compare_tables, leaderboard_from_runs, load_table

_spec = importlib.util.spec_from_file_location("lb", Path(__file__).with_name("test_leaderboard.py"))
_lb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lb)
write_run = _lb.write_run
COMMITTED = Path(__file__).resolve().parents[3] / "leaderboards" / "mnist-mlp-2ep"


def two_budgets(root, shift):
    for steps in (1000, 2000):
        for seed in range(3):
            write_run(root, f"ebgan-{steps}-{seed}", "ebgan", seed, {"i_prime": steps / 1000 + seed + shift},
                      steps=steps)


def test_compare_pairs_rows_of_the_same_budget_only(tmp_path):
    two_budgets(tmp_path / "a", 0.0)
    two_budgets(tmp_path / "b", 0.5)
    comparison, _ = compare_tables(load_table(str(tmp_path / "a")), load_table(str(tmp_path / "b")))
    assert sorted(comparison["budget"]) == ["1000 steps", "2000 steps"]  # two pairs, not four
    assert (comparison["diff_b_minus_a"] == 0.5).all()


def test_a_table_compares_with_the_records_it_was_made_from(capsys):
    assert main(["compare", str(COMMITTED / "table.csv"), str(COMMITTED / "records"), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "eval_n" not in err and len(out.splitlines()) > 1  # no setup difference read from 10000.0 vs 10000
    assert set(pd.read_csv(COMMITTED / "table.csv")["eval_n"].dropna()) == {10000}


def test_the_same_run_in_two_folders_counts_once(tmp_path):
    write_run(tmp_path / "a", "ebgan-0", "ebgan", 0, {"i_prime": 2.0}, margin=10)
    write_run(tmp_path / "b", "ebgan-0", "ebgan", 0, {"i_prime": 2.0}, margin=10.0)  # -o margin=10 vs a preset
    write_run(tmp_path / "b", "ebgan-1", "ebgan", 1, {"i_prime": 4.0}, margin=10.0)
    with pytest.warns(UserWarning, match="the same run as"):
        table = leaderboard_from_runs([str(tmp_path)], reference="none")
    assert table.iloc[0]["n_runs"] == 2 and table.iloc[0]["i_prime_mean"] == 3.0 and table.iloc[0]["variant"] == ""


@pytest.mark.parametrize("damage", ["truncate result", "truncate config", "remove config"])
def test_a_corrupt_record_is_skipped_named_and_counted(tmp_path, damage):
    for seed in range(3):
        write_run(tmp_path, f"gan-{seed}", "gan", seed, {"i_prime": float(seed)})
    name = "result.json" if "result" in damage else "config.json"
    path = tmp_path / "gan-2" / name
    if damage.startswith("remove"):
        path.unlink()
    else:
        path.write_text(path.read_text()[:30])
    with pytest.warns(UserWarning, match=f"gan-2/{name}: unreadable"):
        table = leaderboard_from_runs([str(tmp_path)], reference="none")
    assert table.iloc[0]["n_runs"] == 2 and table.iloc[0]["n_unreadable"] == 1


def test_compare_force_compares_what_both_tables_have(tmp_path):
    write_run(tmp_path / "a", "gan-0", "gan", 0, {"i_prime": 1.0, "fid_mnist": 3.0}, eval_n=100)
    write_run(tmp_path / "b", "gan-0", "gan", 0, {"i_prime": 2.0}, eval_n=200)
    write_run(tmp_path / "b", "ebgan-0", "ebgan", 0, {"i_prime": 2.0}, eval_n=200)
    a, b = load_table(str(tmp_path / "a")), load_table(str(tmp_path / "b"))
    comparison, differences = compare_tables(a, b, force=True)
    assert any(d.startswith("eval_n differs") for d in differences)
    assert comparison[["method", "metric", "diff_b_minus_a"]].values.tolist() == [["gan", "i_prime", 1.0]]
    empty, _ = compare_tables(a, b.assign(method="other"), force=True)  # nothing in common: an empty table
    assert empty.empty and "metric" in empty.columns


@pytest.mark.slow  # scores 10,000 real digits for the reference row
def test_the_reference_row_is_stored_and_the_leaderboard_renders_without_data(tmp_path, mnist_root, monkeypatch):
    records = tmp_path / "records"
    shutil.copytree(COMMITTED / "records", records, ignore=shutil.ignore_patterns("reference.json"))
    table = leaderboard_from_runs([str(records)], rank_by="i_prime", data_root=str(mnist_root))
    stored = json.loads((records / "reference.json").read_text())["entries"]
    (key, entry), = stored.items()
    assert "n=10000" in key and "classifier=6dc4876e" in key and entry["scores"]["classes_covered"] == 10

    def no_data(*args, **kwargs):
        raise AssertionError("MNIST was read although the reference row is stored")

    monkeypatch.setattr(reference_module, "load_mnist", no_data)
    again = leaderboard_from_runs([str(records)], rank_by="i_prime", data_root="/nowhere")
    pd.testing.assert_frame_equal(table, again)
    assert table.to_csv(index=False, lineterminator="\n") == (COMMITTED / "table.csv").read_text()


def test_without_data_or_a_stored_row_the_table_comes_without_it(tmp_path, monkeypatch):
    records = tmp_path / "records"
    shutil.copytree(COMMITTED / "records", records, ignore=shutil.ignore_patterns("reference.json"))
    monkeypatch.setenv("EBM_BENCH_DATA", str(tmp_path / "no-data"))
    with pytest.warns(UserWarning, match="no real-data reference row: MNIST not found"):
        table = leaderboard_from_runs([str(records)], data_root=str(tmp_path / "no-data"))
    assert not table["method"].str.startswith("real data").any() and len(table) == 5
