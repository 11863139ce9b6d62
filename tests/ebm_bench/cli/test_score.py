"""`ebm-bench score` / `ebm-bench classifier train` (ebm_bench.cli.score) on small npz files and PNG folders."""

from __future__ import annotations

import argparse
import io
import json
import re

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


def test_classifier_train_writes_the_weights_it_reports(parser, mnist_root, tmp_path, monkeypatch):
    """The command that made the shipped weights, on 256 training images for one epoch (scoring the 10k test
    images is left out: the slow test below runs it whole)."""
    import hashlib

    import torch

    import ebm_bench.metrics.classifier as classifier_module
    from ebm_bench.files import sha256_file
    from ebm_bench.metrics.classifier import WEIGHTS_PATH, MnistClassifier

    shipped = sha256_file(WEIGHTS_PATH)
    monkeypatch.setattr(classifier_module, "accuracy", lambda model, images, labels: 0.5)
    out = tmp_path / "weights" / "mine.pt"
    printed = _run(parser, "classifier", "train", "--data-root", str(mnist_root), "--out", str(out),
                   "--epochs", "1", "--train-images", "256")
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert printed.splitlines()[0].startswith("epoch 1/1: mean training loss ")
    assert f"sha256: {sha}" in printed and "test accuracy: 50.00%" in printed
    assert "matches the pinned sha256: no" in printed and f"wrote {out}" in printed
    MnistClassifier().load_state_dict(torch.load(out, weights_only=True))  # a classifier's weights
    assert sha256_file(WEIGHTS_PATH) == shipped


@pytest.mark.slow
def test_classifier_train_through_the_cli_reports_its_test_accuracy(mnist_root, tmp_path, capsys):
    """Whole: 256 training images, one epoch, scored on the 10k test images (~20 s on a loaded 2-core CPU)."""
    from ebm_bench.cli import main

    out = tmp_path / "mine.pt"
    assert main(["classifier", "train", "--data-root", str(mnist_root), "--out", str(out), "--epochs", "1",
                 "--train-images", "256"]) == 0
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", capsys.readouterr().out).group(1))
    assert 5.0 < accuracy < 100.0 and out.is_file()


def test_classifier_train_on_less_than_a_batch_is_a_config_error(parser, mnist_root, tmp_path):
    args = parser.parse_args(["classifier", "train", "--data-root", str(mnist_root), "--out", str(tmp_path / "x.pt"),
                              "--train-images", "5"])
    with pytest.raises(ConfigError, match="--train-images must be at least one batch"):
        run_classifier_train(args)


def _bad_inputs(tmp_path):
    """(name, --images path) of files ebm-bench cannot read as images."""
    folder = tmp_path / "pngs"
    folder.mkdir()
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8), mode="L").save(folder / "000.png")
    (folder / "001.png").write_text("a text file under an image's name")
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, images=np.zeros((4, 32, 32), dtype=np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:200])
    (tmp_path / "text.npz").write_text("not an archive")
    (tmp_path / "notes.txt").write_text("hello")
    return {"a text file among the PNGs": (folder, f"cannot read {folder / '001.png'} as a PNG image"),
            "a truncated .npz": (truncated, f"cannot read {truncated} as an .npz file (File is not a zip file)"),
            "a text file named .npz": (tmp_path / "text.npz", f"{tmp_path / 'text.npz'} is not an .npz file"),
            "a text file": (tmp_path / "notes.txt", f"cannot read --images {tmp_path / 'notes.txt'}")}


@pytest.mark.parametrize("case", ["a text file among the PNGs", "a truncated .npz", "a text file named .npz",
                                  "a text file"])
def test_a_file_that_is_not_images_is_one_line_naming_it_and_the_formats(case, tmp_path, capsys):
    from ebm_bench.cli import main

    path, phrase = _bad_inputs(tmp_path)[case]
    assert main(["score", "--images", str(path), "--metrics", "i_prime", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert phrase in err and "a folder of .png files or an .npz of uint8 images" in err, err


def test_garbage_inception_weights_are_one_line_saying_where_to_get_them(test_digits, tmp_path, capsys):
    from ebm_bench.cli import main

    images, weights = tmp_path / "samples.npz", tmp_path / "inception.pth"
    np.savez(images, images=test_digits[:20])
    weights.write_text("garbage")
    assert main(["score", "--images", str(images), "--metrics", "fid", "--device", "cpu",
                 "--inception-weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"{weights} (from --inception-weights) is not a readable Inception weights file" in err
    assert "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05" in err
