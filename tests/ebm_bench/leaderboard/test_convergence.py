"""Does a logged quantity track quality? Spearman's rho on hand-made run folders."""

import pandas as pd
import pytest

from ebm_bench.cli import main
from ebm_bench.errors import ConfigError
from ebm_bench.leaderboard.convergence import convergence_table
from ebm_bench.plots import tracking_figure


def run_folder(root, name, m_global, fid):
    folder = root / name
    folder.mkdir()
    steps = [100 * (i + 1) for i in range(len(m_global))]
    pd.DataFrame({"step": steps, "m_global": m_global}).to_csv(folder / "trajectory.csv", index=False)
    pd.DataFrame({"step": steps, "fid_mnist": fid, "i_prime": [-f for f in fid]}).to_csv(
        folder / "evaluation.csv", index=False)
    return {"run_dir": str(folder), "run_id": name, "method": "began", "seed": 0}


def test_rho_per_run_and_pooled(tmp_path):
    records = pd.DataFrame([
        run_folder(tmp_path, "tracks", [0.4, 0.3, 0.2, 0.1], [400, 300, 200, 100]),
        # ranks (1, 2, 3, 4) against FID ranks (2, 1, 4, 3): 1 - 6 * 4 / (4 * 15) = 0.6
        run_folder(tmp_path, "loosely", [0.1, 0.2, 0.3, 0.4], [200, 100, 400, 300]),
    ])
    table = convergence_table(records, "m_global", ("fid_mnist", "i_prime")).set_index("run_id")
    assert table.loc["tracks", "rho_fid_mnist"] == pytest.approx(1.0)
    assert table.loc["tracks", "rho_i_prime"] == pytest.approx(-1.0)
    assert table.loc["tracks", "rho_step_fid_mnist"] == pytest.approx(-1.0)  # FID falls with time here
    assert table.loc["loosely", "rho_fid_mnist"] == pytest.approx(0.6)
    assert table.loc["all runs", "points"] == 8
    assert len(tracking_figure(records, "m_global", "fid_mnist").axes) == 4  # two panels, each with a twin axis


def test_runs_without_scores_over_training_are_named(tmp_path, capsys):
    folder = tmp_path / "r"
    folder.mkdir()
    pd.DataFrame({"step": [1, 2, 3], "m_global": [1, 2, 3]}).to_csv(folder / "trajectory.csv", index=False)
    records = pd.DataFrame([{"run_dir": str(folder), "run_id": "r", "method": "began", "seed": 0}])
    with pytest.raises(ConfigError, match="train with --eval-every"):
        convergence_table(records)
    assert main(["convergence", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err


@pytest.mark.parametrize("file", ["trajectory.csv", "evaluation.csv"])
def test_a_run_with_a_damaged_file_is_left_out_and_named(tmp_path, file):
    records = pd.DataFrame([run_folder(tmp_path, "good", [0.4, 0.3, 0.2], [400, 300, 200]),
                            run_folder(tmp_path, "damaged", [0.4, 0.3, 0.2], [400, 300, 200])])
    (tmp_path / "damaged" / file).write_bytes(bytes(range(256)))
    with pytest.warns(UserWarning, match=f"the convergence table leaves out .*damaged: .*{file} is corrupt"):
        table = convergence_table(records, "m_global", ("fid_mnist",))
    assert table["run_id"].tolist() == ["good", "all runs"]
    (tmp_path / "damaged" / file).write_text("step,m_global,fid_mnist\nten,abc,x\n")
    with pytest.warns(UserWarning, match=f"leaves out .*damaged: {file} is not a table of numbers by step"):
        assert convergence_table(records, "m_global", ("fid_mnist",))["run_id"].tolist() == ["good", "all runs"]
