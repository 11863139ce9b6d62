"""`ebm-bench score` (score images from anywhere) and `ebm-bench classifier train` (the pinned classifier)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ebm_bench.errors import ConfigError

NPZ_KEY = "images"  # the array read from an .npz; without it, the first array in the file
PNG_SUFFIXES = (".png",)
FORMATS = "a folder of .png files or an .npz of uint8 images"  # what --images and --reference read


# ----------------------------------------------------------------------------------------------------------------
# Loading images from disk


def load_images(path: str | Path, option: str = "--images") -> torch.Tensor:
    """uint8 N x C x H x W from a folder of PNGs (sorted by name) or an .npz holding uint8 images.

    .npz: the array named "images", else the first array; N x H x W (grayscale) or N x C x H x W with C = 1 or 3.
    PNGs: grayscale files give C = 1, anything else is converted to RGB (C = 3); all must share one size and kind.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        return _load_png_folder(path)
    if path.is_file() and path.suffix.lower() == ".npz":
        return _load_npz(path)
    if not path.exists():
        raise ConfigError(f"{option} {path} does not exist; pass {FORMATS}")
    raise ConfigError(f"cannot read {option} {path}: ebm-bench reads {FORMATS}")


def _load_npz(path: Path) -> torch.Tensor:
    with path.open("rb") as handle:
        magic = handle.read(6)
    if not magic.startswith(b"PK") and magic != b"\x93NUMPY":  # np.load would try it as a pickle
        raise ConfigError(f"{path} is not an .npz file (no zip archive of arrays inside); ebm-bench reads {FORMATS}, "
                          "saved with np.savez(path, images=array)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a .npy under an .npz name: the images themselves
            return _check_uint8_array(loaded, str(path))
        with loaded as archive:
            if not archive.files:
                raise ConfigError(f"{path} holds no arrays; save the images with np.savez(path, images=array)")
            key = NPZ_KEY if NPZ_KEY in archive.files else archive.files[0]
            array = archive[key]
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 (not a zip, truncated, object arrays: all need the same fix)
        reason = (str(err).splitlines() or [""])[0].split(". ")[0][:80] or type(err).__name__
        raise ConfigError(f"cannot read {path} as an .npz file ({reason}); ebm-bench reads {FORMATS}, saved "
                          "with np.savez(path, images=array)") from None
    return _check_uint8_array(array, f"{path} (array {key!r})")


def _check_uint8_array(array: np.ndarray, where: str) -> torch.Tensor:
    if array.dtype != np.uint8:
        raise ConfigError(f"{where} has dtype {array.dtype}; ebm-bench reads uint8 images (0..255). Convert "
                          "[-1, 1] floats with np.round((x + 1) * 127.5).clip(0, 255).astype(np.uint8)")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] not in (1, 3) or array.shape[0] == 0:
        hint = " (channels last? transpose to N x C x H x W)" if array.ndim == 4 and array.shape[-1] in (1, 3) else ""
        raise ConfigError(f"{where} has shape {array.shape}; expected N x H x W or N x C x H x W with C = 1 or 3 "
                          f"and N >= 1{hint}")
    return torch.from_numpy(np.ascontiguousarray(array))


def _load_png_folder(folder: Path) -> torch.Tensor:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PNG_SUFFIXES and p.is_file())
    if not files:
        raise ConfigError(f"no .png files in {folder}; pass a folder of PNG images or an .npz file")
    arrays = []
    for file in files:
        try:
            with Image.open(file) as image:
                grayscale = image.mode in ("1", "L", "LA", "I", "I;16")
                arrays.append(np.asarray(image.convert("L" if grayscale else "RGB")))
        except Exception as err:  # noqa: BLE001 (not an image, truncated, broken chunks: PIL raises many kinds)
            raise ConfigError(f"cannot read {file} as a PNG image ({type(err).__name__}); ebm-bench reads "
                              f"{FORMATS}: remove or re-save that file") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ConfigError(f"the PNGs in {folder} differ in size or colour mode ({sorted(shapes)}); "
                          "all images must share one size and be all grayscale or all colour")
    stacked = np.stack(arrays)
    return torch.from_numpy(stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2).copy())


# ----------------------------------------------------------------------------------------------------------------
# ebm-bench score


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ebm_bench.metrics import METRICS

    parser = subparsers.add_parser(
        "score", help="score generated images (I', MNIST-IS, class coverage, FID, KID, ...)",
        description="Score generated images against a reference set. Known metrics: " + ", ".join(METRICS.all()),
    )
    parser.add_argument("--images", required=True,
                        help=f"a folder of PNGs, or an .npz of uint8 images (array {NPZ_KEY!r}, else the first; "
                             "N x H x W or N x C x H x W)")
    parser.add_argument("--reference", default="mnist-test",
                        help="mnist-test (default), mnist-train, or a folder / .npz of reference images")
    parser.add_argument("--metrics", default="i_prime,mnist_is,classes_covered,class_kl,fid_mnist",
                        help="comma-separated metric names (default: the classifier metrics)")
    parser.add_argument("--n", type=int, default=None,
                        help="score the first N images (default: all) against N reference images")
    parser.add_argument("--json", action="store_true", help="print one JSON object: metric name -> value")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--inception-weights", default=None,
                        help="Inception-v3 2015-12-05 weights file (default: $EBM_BENCH_INCEPTION_WEIGHTS, else "
                             "torch-fidelity's download)")
    parser.add_argument("--data-root", default=None,
                        help="where MNIST lives (default: $EBM_BENCH_DATA, then ~/.cache/ebm-bench/data)")
    parser.add_argument("--cache-dir", default=None, help="reference statistics cache (default: ~/.cache/ebm-bench)")
    parser.set_defaults(func=run_score)
    return parser


def run_score(args: argparse.Namespace, out=None) -> int:
    """Load, score, print. Returns the exit code."""
    from ebm_bench.datasets import default_data_root, to_unit_range
    from ebm_bench.metrics import parse_metric_names, score

    names = parse_metric_names(args.metrics)  # fail on a typo before loading anything
    images = to_unit_range(load_images(args.images))
    reference = args.reference
    if reference not in ("mnist-test", "mnist-train"):
        reference = to_unit_range(load_images(reference, option="--reference"))
    data_root = Path(args.data_root).expanduser() if args.data_root else default_data_root()
    ((scores, record),) = score(names, images, reference, n=args.n, device=args.device,
                                inception_weights=args.inception_weights, data_root=data_root,
                                cache_dir=args.cache_dir)
    out = out if out is not None else sys.stdout
    if args.json:
        print(json.dumps(scores), file=out)
    else:
        _print_table(scores, record, args.reference, out)
    return 0


def _print_table(scores: dict[str, float], record: dict, reference: str, out) -> None:
    from rich.console import Console
    from rich.table import Table

    from ebm_bench.metrics import METRICS

    table = Table(title=f"{record['n']} images vs {reference}")
    for column in ("metric", "value", "better", "what"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for name, value in scores.items():
        text = str(int(value)) if name == "classes_covered" else f"{value:.4f}"
        table.add_row(name, text, METRICS[name].direction, METRICS[name].description)
    console = Console(file=out)
    console.print(table)
    console.print("provenance: " + json.dumps({k: v for k, v in record.items() if v is not None}))


# ----------------------------------------------------------------------------------------------------------------
# ebm-bench classifier train


def add_classifier_parser(subparsers) -> argparse.ArgumentParser:
    from ebm_bench.metrics.classifier import DEFAULT_EPOCHS, DEFAULT_SEED

    parser = subparsers.add_parser("classifier", help="the pinned MNIST classifier behind I' and MNIST-IS")
    commands = parser.add_subparsers(dest="classifier_command", required=True)
    train = commands.add_parser(
        "train", help="retrain the classifier reproducibly (the command that made the shipped weights)",
        description="Train the 3-layer convnet on the full MNIST training set and report its test accuracy and "
                    "sha256. The defaults reproduce the shipped weights.",
    )
    train.add_argument("--data-root", default=None,
                       help="where MNIST lives (default: $EBM_BENCH_DATA, then ~/.cache/ebm-bench/data)")
    train.add_argument("--out", default="mnist_classifier.pt", help="weights file to write (default: %(default)s)")
    train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="default: %(default)s")
    train.add_argument("--train-images", type=int, default=None, metavar="N",
                       help="train on the first N training images only, a quick check of the command (default: all "
                            "60000, as the shipped weights)")
    train.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default: %(default)s")
    train.add_argument("--device", default="cpu", help="cpu (default; the shipped weights), cuda or auto")
    train.set_defaults(func=run_classifier_train)
    return parser


def run_classifier_train(args: argparse.Namespace, out=None) -> int:
    from ebm_bench.datasets import default_data_root
    from ebm_bench.metrics import resolve_device
    from ebm_bench.metrics.classifier import CLASSIFIER_SHA256, train_classifier

    out = out if out is not None else sys.stdout
    data_root = Path(args.data_root).expanduser() if args.data_root else default_data_root()
    result = train_classifier(data_root, args.out, epochs=args.epochs, seed=args.seed,
                              device=resolve_device(args.device), log=lambda line: print(line, file=out, flush=True),
                              train_images=args.train_images)
    pinned = "yes" if result["sha256"] == CLASSIFIER_SHA256 else "no (weights differ from the shipped ones)"
    print(f"test accuracy: {100 * result['test_accuracy']:.2f}%", file=out)
    print(f"sha256: {result['sha256']}", file=out)
    print(f"matches the pinned sha256: {pinned}", file=out)
    print(f"wrote {result['path']} in {result['wall_seconds']:.0f} s", file=out)
    return 0
