"""The post hoc experiment specs of the committed leaderboards (issue 23) declare exactly their committed records,
and their tests are the ones computed from those records directly."""

from pathlib import Path

import numpy as np
import pytest

from ebm_bench import stats
from ebm_bench.experiment.analysis import analyse
from ebm_bench.experiment.spec import load_experiment
from ebm_bench.record import load_records

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"


def analysed(name: str, n_runs: int):
    folder = ROOT / name
    records = load_records([folder / "records"])
    analysis = analyse(load_experiment(folder / "experiment.toml"), records)
    assert len(analysis.matched.runs) == len(analysis.matched.recorded) == n_runs and analysis.matched.undeclared == 0
    return analysis, records


def test_mnist_mlp_4ep_spec_holm_corrects_the_36_comparisons_of_compare_md():
    analysis, records = analysed("mnist-mlp-4ep", 25)
    assert len(analysis.confirmatory) == 36 and all(r.hypothesis.exploratory for r in analysis.exploratory)
    i_prime = records.groupby("method")["evaluation.i_prime"]
    ebgan, gan = i_prime.get_group("ebgan").to_numpy(), i_prime.get_group("gan").to_numpy()
    _, p = stats.welch_t_test(ebgan.mean(), ebgan.std(ddof=1), 5, gan.mean(), gan.std(ddof=1), 5)
    h1 = next(r for r in analysis.confirmatory if r.hypothesis.id == "H1")  # EBGAN vs GAN on I'
    family = np.array([r.p for r in analysis.confirmatory])
    assert h1.p == pytest.approx(p, rel=1e-9) and p == pytest.approx(0.0085, abs=5e-5)
    assert h1.p_adjusted == pytest.approx(stats.holm(family)[0], rel=1e-9)
    assert h1.p_adjusted == pytest.approx(0.27, abs=5e-3) and min(r.p_adjusted for r in analysis.confirmatory) > 0.05


def test_mnist_grid_reliability_spec_counts_the_shares_it_tests():
    analysis, records = analysed("mnist-grid-reliability", 128)
    by_method = records.groupby("method")["evaluation.i_prime"]
    assert (by_method.get_group("ebgan") >= 2).sum() == 59 and (by_method.get_group("gan") >= 2).sum() == 0
    h1 = next(r for r in analysis.confirmatory if r.hypothesis.id == "H1")
    assert h1.effect == pytest.approx(59 / 64) and h1.p_adjusted < 0.05
