"""`ebm-bench score` / `ebm-bench classifier train` logic (ebm_bench.scoring) on small npz files and PNG folders."""

from __future__ import annotations

import argparse
import io
import json

import numpy as np
import pytest
from PIL import Image

from ebm_bench.datasets import to_unit_range
from ebm_bench.datasets.mnist import load_mnist
from ebm_bench.errors import ConfigError
from ebm_bench.metrics import METRICS, score_images
from ebm_bench.cli.score import add_classifier_parser, load_images, run_classifier_train, run_score
from ebm_bench.cli.score import add_parser as add_score_parser

CLASSIFIER_METRICS = "i_prime,mnist_is,classes_covered,class_kl,fid_mnist"


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebm-bench")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_score_parser(subparsers)
    add_classifier_parser(subparsers)
    return parser


def _run(parser, *argv: str) -> str:
    args = parser.parse_args(list(argv))
    out = io.StringIO()
    assert args.func(args, out=out) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def test_digits(mnist_root) -> np.ndarray:
    """The first 200 MNIST test digits, uint8 200 x 32 x 32."""
    return load_mnist(mnist_root, "test", image_size=32).images[:200, 0].numpy()


def test_score_json_on_an_npz_matches_score_images(parser, mnist_root, test_digits, tmp_path):
    path = tmp_path / "samples.npz"
    np.savez(path, labels=np.zeros(3), images=test_digits)  # "images" is used even when it is not first
    printed = _run(parser, "score", "--images", str(path), "--metrics", CLASSIFIER_METRICS, "--json",
                   "--device", "cpu", "--data-root", str(mnist_root))
    scores = json.loads(printed)  # exactly one JSON object
    assert list(scores) == CLASSIFIER_METRICS.split(",")
    expected = score_images(to_unit_range(load_images(path)), CLASSIFIER_METRICS.split(","), data_root=mnist_root)
    assert scores == pytest.approx(expected, rel=1e-12)
    assert scores["classes_covered"] == 10 and scores["mnist_is"] > 9.0


def test_score_reads_the_first_array_of_an_npz_in_channel_layout(test_digits, tmp_path):
    path = tmp_path / "positional.npz"
    np.savez(path, test_digits[:, None], np.zeros(3))  # arr_0: N x 1 x H x W
    assert load_images(path).shape == (200, 1, 32, 32)


def test_score_on_a_png_folder_with_n(parser, mnist_root, test_digits, tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index, digit in enumerate(test_digits[:40, 2:30, 2:30]):  # back to 28 x 28
        Image.fromarray(digit, mode="L").save(folder / f"{index:03d}.png")
    printed = _run(parser, "score", "--images", str(folder), "--metrics", "classes_covered,fid_mnist", "--n", "30",
                   "--json", "--device", "cpu", "--data-root", str(mnist_root))
    scores = json.loads(printed)
    images = load_images(folder)
    assert images.shape == (40, 1, 28, 28)
    assert np.array_equal(images[:, 0].numpy(), test_digits[:40, 2:30, 2:30])  # PNG is lossless, order by name
    expected = score_images(to_unit_range(images), ["classes_covered", "fid_mnist"], n=30, data_root=mnist_root)
    assert scores == pytest.approx(expected, rel=1e-12)


def test_score_against_a_reference_file(parser, mnist_root, test_digits, tmp_path):
    path = tmp_path / "samples.npz"
    np.savez(path, images=test_digits[:100])
    printed = _run(parser, "score", "--images", str(path), "--reference", str(path), "--metrics", "fid_mnist",
                   "--json", "--device", "cpu")
    assert json.loads(printed)["fid_mnist"] == pytest.approx(0.0, abs=1e-6)


def test_score_prints_a_table_without_json(parser, mnist_root, test_digits, tmp_path):
    path = tmp_path / "samples.npz"
    np.savez(path, images=test_digits[:50])
    printed = _run(parser, "score", "--images", str(path), "--metrics", "mnist_is,class_kl", "--device", "cpu",
                   "--data-root", str(mnist_root))
    assert "mnist_is" in printed and "class_kl" in printed and "classifier_sha256" in printed


def test_unknown_metric_lists_the_known_ones(parser, tmp_path):
    args = parser.parse_args(["score", "--images", str(tmp_path), "--metrics", "i_prime,fidd"])
    with pytest.raises(ConfigError) as error:
        run_score(args)
    assert "fidd" in str(error.value)
    for name in METRICS:
        assert name in str(error.value)


def test_missing_images_path_is_a_config_error(parser, tmp_path):
    args = parser.parse_args(["score", "--images", str(tmp_path / "nope.npz"), "--metrics", "i_prime"])
    with pytest.raises(ConfigError, match="does not exist"):
        run_score(args)


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 32, 32, 3), dtype=np.uint8), "channels last"),
    (np.zeros((4, 32), dtype=np.uint8), "expected N x H x W"),
    (np.zeros((4, 32, 32), dtype=np.float32), "uint8"),
])
def test_wrong_arrays_are_config_errors(array, message, tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=array)
    with pytest.raises(ConfigError, match=message):
        load_images(path)


def test_empty_png_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no .png files"):
        load_images(tmp_path)


def test_classifier_train_parser_defaults_reproduce_the_shipped_weights(parser):
    from ebm_bench.metrics.classifier import CLASSIFIER_TRAINING

    args = parser.parse_args(["classifier", "train", "--out", "x.pt"])
    assert args.func is run_classifier_train
    assert (args.epochs, args.seed, args.device) == (CLASSIFIER_TRAINING["epochs"], CLASSIFIER_TRAINING["seed"], "cpu")
