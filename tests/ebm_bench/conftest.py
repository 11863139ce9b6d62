"""Tiny real run folders for the plot and report tests (test_plots.py, test_report.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ebm_bench.config import Budget, MLPConfig, RunConfig

# The small run of test_train.py, written out here: importing that module would register its test methods
# (test-explodes, ...) before collection, and every test parametrized over the registered methods would pick them up.
SMALL = MLPConfig(n_layer_g=3, size_g=64, n_layer_d=2, size_d=64)

# evaluation.csv of the EBGAN runs (the --eval-every contract) with hand-chosen numbers: held-out energy 2 at step 6
# and 5 at step 12, so that the reference energy at the logged step 8 is 3; precision and recall never scored
EVALUATION = {"step": [6, 12], "wall_s": [0.1, 0.2], "eval_s": [0.01, 0.01], "n": [64, 64],
              "i_prime": [1.0, 2.0], "classes_covered": [3.0, 5.0], "fid_mnist": [300.0, 200.0],
              "precision": [None, None], "recall": [None, None], "energy_heldout": [2.0, 5.0],
              "energy_generated": [3.0, 6.0], "energy_auroc": [0.6, 0.8]}


@pytest.fixture(scope="session")
def report_runs(mnist_root, tmp_path_factory) -> Path:
    """A folder of three finished runs on real MNIST (12 steps, logged every 4): EBGAN seeds 0 and 1 with the
    evaluation.csv above (seed 1's I' half a point higher), GAN seed 0 without one. Read only: copy to change."""
    from ebm_bench.api import train_one

    folder = tmp_path_factory.mktemp("report-runs")
    for method, seed in (("ebgan", 0), ("ebgan", 1), ("gan", 0)):
        config = RunConfig(method=method, seed=seed, budget=Budget("steps", 12), batch_size=16, mlp=SMALL, z_dim=16,
                           holdout=200, data_root=str(mnist_root), out=str(folder / "runs"), log_every=4,
                           checkpoint_every=8, n_samples=16, download=False, eval_n=100)
        result = train_one(config)
        assert result.status == "finished"
        if method == "ebgan":
            table = pd.DataFrame(EVALUATION)
            table["i_prime"] += 0.5 * seed
            table.to_csv(Path(result.run_dir) / "evaluation.csv", index=False)
    return folder / "runs"
