"""What the terminal shows: tables that fit its width with no cell cut, the headline columns first, and one default
ranking for leaderboard, compare and report."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from ebm_bench.cli import main
from ebm_bench.cli.leaderboard import fit_widths
from ebm_bench.leaderboard import HEADLINE_SCORES, default_rank_by, headline_metrics
from ebm_bench.metrics import headline_order, ranking_order
from ebm_bench.report import write_report

_spec = importlib.util.spec_from_file_location("lb", Path(__file__).with_name("test_leaderboard.py"))
_lb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lb)
write_run = _lb.write_run
COMMITTED = Path(__file__).resolve().parents[3] / "leaderboards" / "mnist-mlp-4ep"


def printed(capsys, monkeypatch, width: int, argv: list[str]) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(width))  # what rich reads for the width of a terminal
    assert main(argv) == 0
    out = capsys.readouterr().out
    return out.splitlines()


def fits(lines: list[str], width: int) -> bool:
    return all(len(line.rstrip()) <= width for line in lines) and not any("…" in line for line in lines)


@pytest.mark.parametrize("width", [80, 160])
def test_the_headline_leaderboard_fits_the_terminal_with_no_cell_cut(width, capsys, monkeypatch):
    lines = printed(capsys, monkeypatch, width, ["leaderboard", str(COMMITTED / "records")])
    assert fits(lines, width), "\n".join(lines)
    text = " ".join(lines)
    assert "left out" not in text  # every headline column is there
    for method in ("magan", "ebgan", "ebgan-pt", "began", "gan"):
        assert f" {method} " in f" {text} "
    table = pd.read_csv(COMMITTED / "table.csv")
    gan = table[table["method"] == "gan"].iloc[0]
    headline = [m for m in headline_order() if f"{m}_mean" in table][:HEADLINE_SCORES]
    for metric in headline:  # each headline score's mean, whole (4 significant digits, as displayed)
        assert f"{gan[f'{metric}_mean']:.4g}" in text.split(), metric
    assert "class_kl" not in text and "--columns all" in text  # the rest on request


def test_every_column_on_request_and_what_does_not_fit_is_named(capsys, monkeypatch):
    lines = printed(capsys, monkeypatch, 160, ["leaderboard", str(COMMITTED / "records"), "--columns", "all"])
    assert fits(lines, 160), "\n".join(lines)
    text = " ".join(line.strip() for line in lines)
    assert "class_kl" in text and "left out to fit 160 columns:" in text and "steps/s" in text
    lines = printed(capsys, monkeypatch, 80, ["leaderboard", str(COMMITTED / "records"), "--metrics",
                                                "i_prime,mnist_is", "--reference", "none"])
    assert fits(lines, 80) and "mnist_is" in " ".join(lines) and "fid_mnist" not in " ".join(lines)


@pytest.mark.parametrize("width", [80, 160])
def test_compare_shows_the_headline_metrics_and_fits(width, capsys, monkeypatch):
    table = str(COMMITTED / "table.csv")
    lines = printed(capsys, monkeypatch, width, ["compare", table, "--against", "ebgan"])
    assert fits(lines, width), "\n".join(lines)
    rows = [line.split() for line in lines if line.split() and line.split()[0] in ("gan", "began", "magan")]
    assert [r[1] for r in rows][:3] == ["fid_mnist"] * 3  # the default ranking's metric first
    held = pd.read_csv(table)
    assert {r[1] for r in rows} == set([m for m in headline_order() if f"{m}_mean" in held][:HEADLINE_SCORES])
    everything = printed(capsys, monkeypatch, width, ["compare", table, "--against", "ebgan", "--columns", "all"])
    assert any("class_kl" in line for line in everything)


def test_columns_never_narrower_than_their_longest_word():
    header = ["method", "classes_covered ↑", "score"]
    rows = [["ebgan-pt", "8.4 ± 0.89\n[7.289, 9.511]", "0.0003333 ± 0.00058"]]
    shown, widths = fit_widths(header, rows, 40)
    assert shown == [0, 1, 2] and widths[1] >= len("covered") and widths[2] >= len("0.0003333")
    assert sum(widths) + 2 * (len(widths) - 1) <= 40
    shown, _ = fit_widths(header, rows, 20)  # 8 + 2 + 8 fits, the third column does not: left out, never cut
    assert shown == [0, 1]


def test_one_default_ranking_for_leaderboard_compare_and_report(tmp_path, capsys, monkeypatch):
    # gan has the better FID-MNIST, ebgan the better I' (as a collapsed, confident G would): the default decides
    for seed in range(2):
        write_run(tmp_path / "runs", f"ebgan-{seed}", "ebgan", seed,
                  {"i_prime": 5.0 + seed, "fid_mnist": 200.0 + seed, "classes_covered": 3.0})
        write_run(tmp_path / "runs", f"gan-{seed}", "gan", seed,
                  {"i_prime": 2.0 + seed, "fid_mnist": 50.0 + seed, "classes_covered": 9.0})
    assert default_rank_by(["i_prime", "classes_covered", "fid_mnist"]) == "fid_mnist"
    assert [m for m in ranking_order() if m in ("i_prime", "classes_covered", "fid_mnist")][0] == "fid_mnist"
    runs = str(tmp_path / "runs")
    assert main(["leaderboard", runs, "--reference", "none", "--format", "csv", "--output",
                 str(tmp_path / "table.csv")]) == 0
    assert pd.read_csv(tmp_path / "table.csv")["method"].tolist() == ["gan", "ebgan"]
    with pytest.warns(UserWarning, match="the energy view leaves out .*: no trajectory.csv"):  # hand-made runs
        page = write_report([tmp_path / "runs"], tmp_path / "report", reference="none").read_text()
    assert "ranked by fid_mnist" in page
    assert page.index('<td class="text">gan</td>') < page.index('<td class="text">ebgan</td>')
    lines = printed(capsys, monkeypatch, 160, ["compare", runs, runs])
    metrics = [line.split()[1] for line in lines if line.split()[:1] in (["ebgan"], ["gan"])]
    assert metrics[0] == "fid_mnist"
    assert headline_metrics(["class_kl", "recall", "i_prime"], "class_kl") == ["class_kl", "i_prime", "recall"]


def test_list_fits_80_columns(capsys, monkeypatch):
    lines = printed(capsys, monkeypatch, 80, ["list"])
    assert len(lines) > 40 and fits(lines, 80), "\n".join(line for line in lines if len(line.rstrip()) > 80)
    assert any(line.startswith("  ebgan-pt") for line in lines)
