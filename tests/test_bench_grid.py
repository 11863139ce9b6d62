"""benchmarks/bench_grid.py's sample and FLOP count, by hand (the GPU figures it prints rest on both)."""

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_grid import orthogonal_array, shapes, step_flops  # noqa: E402

from ebm_bench import MLPConfig  # noqa: E402


def test_the_sample_is_an_orthogonal_array_covering_every_value_of_every_factor():
    rows = orthogonal_array()
    assert len(rows) == 16
    for first, second in itertools.combinations(range(4), 2):  # every pair of levels of two factors exactly once
        assert sorted((r[first], r[second]) for r in rows) == list(itertools.product(range(4), repeat=2))
    sample = shapes()
    for name, values in (("n_layer_g", (2, 3, 4, 5)), ("n_layer_d", (2, 3, 4, 5)), ("size_g", (400, 800, 1600, 3200)),
                         ("size_d", (128, 256, 512, 1024))):
        assert sorted(getattr(m, name) for m in sample) == sorted(values * 4), name


def test_step_flops_of_the_smallest_grid_shape_by_hand():
    mlp = MLPConfig(n_layer_g=2, size_g=400, n_layer_d=2, size_d=128)
    forward_g = 2 * 64 * (100 * 400 + 400 * 1024)  # z 100 -> 400 -> 32 x 32 pixels
    forward_d_autoencoder = 2 * 64 * (1024 * 128 + 128 * 1024)
    forward_d_classifier = 2 * 64 * (1024 * 128 + 128 * 1)
    assert step_flops(mlp, "ebgan") == 4 * forward_g + 8 * forward_d_autoencoder == 498_630_656
    assert step_flops(mlp, "gan") == 4 * forward_g + 8 * forward_d_classifier
