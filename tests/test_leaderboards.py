"""Every committed leaderboard is reproduced exactly from its committed run records."""

from pathlib import Path

import pytest

from ebm_bench.cli import main

LEADERBOARDS = sorted(p for p in (Path(__file__).resolve().parents[1] / "leaderboards").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", LEADERBOARDS, ids=[p.name for p in LEADERBOARDS])
def test_table_csv_is_reproduced_from_the_records(folder, mnist_root, tmp_path):
    out = tmp_path / "table.csv"
    assert main(["leaderboard", str(folder / "records"), "--format", "csv", "--rank-by", "i_prime",
                 "--data-root", str(mnist_root), "--output", str(out)]) == 0
    assert out.read_text() == (folder / "table.csv").read_text()
    assert "--rank-by i_prime" in (folder / "make.sh").read_text()
