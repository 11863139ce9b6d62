"""Every committed leaderboard is reproduced exactly from its committed run records, and its make.sh re-renders
everything from them without training."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ebm_bench.cli import main

pytestmark = pytest.mark.slow  # re-renders every committed leaderboard from its records (a minute or more)

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"
FOLDERS = sorted(p for p in ROOT.iterdir() if p.is_dir())
WITH_RECORDS = [p for p in FOLDERS if (p / "records").is_dir() and (p / "table.csv").is_file()]


@pytest.mark.parametrize("folder", WITH_RECORDS, ids=[p.name for p in WITH_RECORDS])
def test_table_csv_is_reproduced_from_the_records(folder, mnist_root, tmp_path):
    out = tmp_path / "table.csv"
    assert main(["leaderboard", str(folder / "records"), "--format", "csv", "--rank-by", "i_prime",
                 "--data-root", str(mnist_root), "--output", str(out)]) == 0
    assert out.read_text() == (folder / "table.csv").read_text()
    assert "--rank-by i_prime" in (folder / "make.sh").read_text()


RENDERED = [p for p in FOLDERS if "--render" in (p / "make.sh").read_text()]


@pytest.mark.parametrize("folder", RENDERED, ids=[p.name for p in RENDERED])
def test_make_sh_renders_from_the_records_alone(folder, mnist_root, tmp_path):
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    env = os.environ | {"EBM_BENCH_DATA": str(mnist_root), "RUNS": str(tmp_path / "no-runs")}
    done = subprocess.run(["bash", str(copy / "make.sh"), "--render"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "no-runs").exists()  # nothing trained
    for table in ("table.csv", "table.md", "compare.md", "reliability.csv", "convergence/convergence.csv",
                  "2ep/summary.csv", "4ep/summary.csv", "summary/summary.csv", "analysis.md"):
        if (folder / table).exists():
            assert (copy / table).read_text() == (folder / table).read_text(), table
