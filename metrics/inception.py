"""IS, FID and KID with Inception-v3 (2015-12-05 weights), computed by torch-fidelity.

torch-fidelity is the reference implementation for GAN-era papers (TF1-exact resize to 299 x 299); this module
only prepares its inputs and caches reference statistics, it never re-implements a metric.

Input conversion: images are float N x C x H x W in [-1, 1]; they become uint8 by round((x + 1) * 127.5)
(torch.round: half to even), clamped to 0..255, so -1 -> 0 and 1 -> 255 and uint8 MNIST round-trips exactly.
Grayscale images are tiled to 3 channels.

Weights: the `weights_path` argument, else the environment variable EBM_BENCH_INCEPTION_WEIGHTS, else the
genuine file torch-fidelity publishes, downloaded once into torch's hub cache (hash-checked). The weights the
project ships in shared/weights have a ZEROED fc layer: their pool3 features (FID, KID) are genuine, but their
logits are all 0, so the Inception Score computed with them is always exactly 1.0 and means nothing.

Reference statistics (the Inception features of e.g. the MNIST test set) are slow on a CPU (a few images per
second), so they are cached with torch-fidelity's own file cache, under a name that includes everything that
changes them: dataset, split, N, image size, the weights' sha256 and the torch-fidelity version (torch-fidelity's
own names for registered datasets ignore the weights file and N). A change of any of these gives a new name, so
a stale entry is never read.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset

from ebm_bench.errors import ConfigError
from ebm_bench.files import sha256_file

from .base import Metric

WEIGHTS_ENV = "EBM_BENCH_INCEPTION_WEIGHTS"
TORCH_FIDELITY_VERSION = version("torch-fidelity")  # imported when used: it pulls in torchvision's models, 1.6 s
GENUINE_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
GENUINE_WEIGHTS_HASH_PREFIX = "6726825d"
KID_SUBSET_SIZE = 1000  # torch-fidelity's default; lowered to N when fewer images are scored
KID_SUBSETS = 100  # torch-fidelity's default
DEFAULT_BATCH_SIZE = 50
PRDC_K = 5  # nearest neighbours for precision/recall/density/coverage (metrics/prdc.py)
# Names this module computes; a _std is the spread over IS's splits or KID's subsets, as torch-fidelity reports it
INCEPTION_METRICS = ("is", "is_std", "fid", "kid", "kid_std", "inception_precision", "inception_recall",
                     "inception_density", "inception_coverage")
_FIDELITY_KEYS = {
    "is": "inception_score_mean",
    "is_std": "inception_score_std",
    "fid": "frechet_inception_distance",
    "kid": "kernel_inception_distance_mean",
    "kid_std": "kernel_inception_distance_std",
    "inception_precision": "precision",
    "inception_recall": "recall",
}
BINARY_INCEPTION_METRICS = ("fid", "kid", "kid_std", "inception_precision", "inception_recall",
                            "inception_density", "inception_coverage")


# ----------------------------------------------------------------------------------------------------------------
# Inputs


def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] (or uint8 already) -> uint8 N x 3 x H x W, grayscale tiled to 3 channels."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ConfigError(f"Inception metrics take N x 1 x H x W or N x 3 x H x W images, got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        if not images.is_floating_point():
            raise ConfigError(f"Inception metrics take float images in [-1, 1] or uint8, got {images.dtype}")
        images = torch.round((images.detach().float().cpu() + 1.0) * 127.5).clamp_(0, 255).to(torch.uint8)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images.cpu().contiguous()


class Uint8Images(Dataset):
    """uint8 3 x H x W tensors, as torch-fidelity wants them; `load` runs on first access only.

    Laziness lets a reference set whose statistics are cached skip loading (and converting) its images.
    """

    def __init__(self, load: Callable[[], torch.Tensor]):
        self._load = load
        self._images: torch.Tensor | None = None

    @property
    def images(self) -> torch.Tensor:
        if self._images is None:
            self._images = to_uint8_rgb(self._load())
        return self._images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


@dataclass(frozen=True)
class InceptionReference:
    """A reference image set for FID and KID, described by everything that changes its Inception statistics.

    `load` returns the N images (float in [-1, 1] or uint8, N x C x image_size x image_size); it is only called
    when the statistics are not cached yet.
    """

    dataset: str  # e.g. "mnist", or "file-<sha256 prefix of the images>"
    split: str  # e.g. "test"
    n: int
    image_size: int
    load: Callable[[], torch.Tensor]

    def cache_key(self, weights_sha256: str) -> str:
        return reference_cache_key(self.dataset, self.split, self.n, self.image_size, weights_sha256)


def reference_cache_key(dataset: str, split: str, n: int, image_size: int, weights_sha256: str,
                        fidelity_version: str = TORCH_FIDELITY_VERSION) -> str:
    """A file-name-safe cache name that changes whenever any input that changes the statistics changes."""
    parts = [dataset, split, f"n{n}", f"{image_size}px", f"inception-{weights_sha256[:16]}",
             f"torch-fidelity-{fidelity_version}"]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/ebm-bench/inception, else ~/.cache/ebm-bench/inception."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "ebm-bench" / "inception"


@dataclass(frozen=True)
class KidSetting:
    """How KID was computed: `subsets` random subsets of `subset_size` images from each side, KID their mean and
    kid_std their spread.

    When the subset size is the whole set on both sides (N <= 1000 images against as many reference images, the
    CPU setting), every subset holds the same images, so the subsets' KIDs are equal and their spread is float
    round-off (2e-7): kid_std is then NaN, and the provenance says why. A smaller subset would give a spread, but
    it would describe a different estimator than the KID reported beside it, and would change KID itself for
    every run scored on N <= 1000, which records made before could then not be compared with."""

    subset_size: int
    n: int
    n_reference: int
    subsets: int = KID_SUBSETS

    @property
    def spread_defined(self) -> bool:
        return self.subset_size < max(self.n, self.n_reference)

    def provenance(self) -> dict:
        record = {"kid_subset_size": self.subset_size, "kid_subsets": self.subsets}
        if not self.spread_defined:
            record["kid_std_note"] = (f"kid_std is NaN: the KID subsets of {self.subset_size} images are the whole "
                                      f"sets ({self.n} generated, {self.n_reference} reference), so every subset "
                                      "is the same; score more than 1000 images for a spread")
        return record


def kid_setting(n: int, n_reference: int, subset_size: int | None = None) -> KidSetting:
    """The KID subsets for N generated against N_reference images: min(1000, N, N_reference) images each."""
    return KidSetting(subset_size or min(KID_SUBSET_SIZE, n, n_reference), n, n_reference)


# ----------------------------------------------------------------------------------------------------------------
# Weights


def resolve_weights_path(weights_path: str | Path | None = None, download: bool = True) -> Path:
    """The Inception weights file: argument, else $EBM_BENCH_INCEPTION_WEIGHTS, else the genuine download.

    Resolving to a file (instead of letting torch-fidelity download it silently) lets every score record the
    sha256 of the weights that produced it.
    """
    chosen = weights_path or os.environ.get(WEIGHTS_ENV)
    if chosen:
        path = Path(chosen).expanduser()
        source = "--inception-weights" if weights_path else f"${WEIGHTS_ENV}"
        if not path.is_file():
            raise ConfigError(f"Inception weights not found at {path} (from {source}); point it at the "
                              "2015-12-05 pool3 weights file, or unset it to download the genuine file")
        stat = path.stat()
        problem = _weights_problem(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if problem:
            raise ConfigError(f"{path} (from {source}) is not a readable Inception weights file: {problem}. Fix: "
                              f"pass the 2015-12-05 Inception-v3 weights ({GENUINE_WEIGHTS_URL}), or unset it to "
                              "download them")
        return path
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(GENUINE_WEIGHTS_URL).name
    if not path.is_file():
        if not download:
            raise ConfigError(f"Inception weights not found at {path}; pass --inception-weights FILE or set "
                              f"{WEIGHTS_ENV}")
        _download_genuine_weights(path)
    return path


# Layers torch-fidelity's Inception-v3 loads: a state dict without them is some other network's
INCEPTION_KEYS = ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.conv.weight", "fc.weight")


@lru_cache(maxsize=8)
def _weights_problem(path: str, size: int, mtime_ns: int) -> str | None:
    """Why a weights file cannot be torch-fidelity's Inception (None if it can), memoised on (path, size, mtime):
    checked before a run trains, so a wrong file fails in one line, not in a traceback after training."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (text, an archive of something else, truncated: one advice)
        return f"torch.load cannot read it ({type(err).__name__})"
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a state dict"
    missing = [key for key in INCEPTION_KEYS if key not in state]
    if missing:
        return f"its {len(state)} entries lack Inception-v3's {missing[0]}"
    return None


def _download_genuine_weights(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(GENUINE_WEIGHTS_URL, str(path), hash_prefix=GENUINE_WEIGHTS_HASH_PREFIX)
    except Exception as err:  # no network, proxy, hash mismatch: all need the same fix
        raise ConfigError(f"could not download the Inception weights from {GENUINE_WEIGHTS_URL} ({err}). Fix: "
                          f"pass --inception-weights FILE or set {WEIGHTS_ENV} to a local copy") from err


def weights_sha256(path: str | Path) -> str:
    """sha256 of a weights file, memoised on (path, size, mtime): hashing ~100 MB takes a moment."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


# ----------------------------------------------------------------------------------------------------------------
# Metrics


@contextmanager
def _full_float32() -> Iterator[None]:
    """Inception's convolutions in float32 on a GPU too: PyTorch lets cuDNN use TF32 for them by default, and FID's
    reference statistics (and the CPU's scores) are float32 ones."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def inception_metrics(images: torch.Tensor, metrics: tuple[str, ...] | list[str],
                      reference: InceptionReference | None = None, weights_path: str | Path | None = None,
                      device: str | torch.device = "cpu", batch_size: int = DEFAULT_BATCH_SIZE,
                      cache_dir: str | Path | None = None, kid_subset_size: int | None = None,
                      verbose: bool = False) -> dict[str, float]:
    """Any of INCEPTION_METRICS for float images in [-1, 1], through one torch-fidelity call.

    FID, KID and precision/recall compare against `reference` (its features cached, see the module docstring).
    KID uses subsets of min(1000, N, N_reference) images, torch-fidelity's 100 subsets; IS uses its 10 splits
    (N >= 10); `is_std` and `kid_std` are torch-fidelity's spreads over those, except that kid_std is NaN when
    the subsets are the whole sets (KidSetting). Precision and recall use k =
    PRDC_K neighbours; density and coverage read the same pool3 features through torch-fidelity's feature cache
    and are computed by metrics/prdc.py.
    """
    metrics = tuple(metrics)
    unknown = [name for name in metrics if name not in INCEPTION_METRICS]
    if unknown or not metrics:
        raise ConfigError(f"unknown Inception metric(s) {unknown}; known: {', '.join(INCEPTION_METRICS)}")
    needs_reference = any(name in BINARY_INCEPTION_METRICS for name in metrics)
    if needs_reference and reference is None:
        raise ConfigError("FID, KID and precision/recall/density/coverage need a reference image set")
    generated = to_uint8_rgb(images)
    if {"is", "is_std"} & set(metrics) and len(generated) < 10:
        raise ConfigError(f"the Inception Score uses 10 splits and needs at least 10 images, got {len(generated)}")
    weights = resolve_weights_path(weights_path)
    kwargs = dict(
        input1=Uint8Images(lambda: generated),
        isc=bool({"is", "is_std"} & set(metrics)), fid="fid" in metrics, kid=bool({"kid", "kid_std"} & set(metrics)),
        prc=bool({"inception_precision", "inception_recall"} & set(metrics)), prc_neighborhood=PRDC_K,
        # torch-fidelity's precision/recall default to VGG-16 features (Kynkaanniemi et al.'s choice); here all
        # Inception metrics share one network and its pool3 layer, the one FID reads
        feature_extractor="inception-v3-compat", feature_layer_prc="2048",
        feature_extractor_weights_path=str(weights),
        cuda=torch.device(device).type == "cuda",
        batch_size=batch_size,
        save_cpu_ram=True,  # no DataLoader worker processes: the images are already in memory
        verbose=verbose,
        cache=False,
    )
    kid = kid_setting(len(generated), reference.n, kid_subset_size) if needs_reference else None
    if kid is not None:
        kwargs.update(_reference_kwargs(reference, weights, cache_dir))
        kwargs.update(kid_subset_size=kid.subset_size, kid_subsets=kid.subsets)
    import torch_fidelity

    with _full_float32():
        result = {}
        if any(name in _FIDELITY_KEYS for name in metrics):
            result = torch_fidelity.calculate_metrics(**kwargs)
        if {"inception_density", "inception_coverage"} & set(metrics):
            result |= _density_coverage(kwargs)
    scores = {name: float(result[_FIDELITY_KEYS.get(name, name)]) for name in metrics}
    if "kid_std" in scores and not kid.spread_defined:
        scores["kid_std"] = math.nan
    return scores


def _density_coverage(kwargs: dict) -> dict[str, float]:
    """Density and coverage on the pool3 features torch-fidelity extracts (the reference's from its cache)."""
    from torch_fidelity.utils import create_feature_extractor, extract_featuresdict_from_input_id_cached

    from .prdc import density_coverage

    extractor = create_feature_extractor("inception-v3-compat", ["2048"], **kwargs)
    generated = extract_featuresdict_from_input_id_cached(1, extractor, **kwargs)["2048"]
    real = extract_featuresdict_from_input_id_cached(2, extractor, **kwargs)["2048"]
    density, coverage = density_coverage(generated.cpu(), real.cpu(), PRDC_K)
    return {"inception_density": density, "inception_coverage": coverage}


def _reference_kwargs(reference: InceptionReference, weights: Path, cache_dir: str | Path | None) -> dict:
    """torch-fidelity arguments for input2: a lazy dataset, cached under our own complete key."""
    key = reference.cache_key(weights_sha256(weights))
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_root.mkdir(parents=True, exist_ok=True)

    def load_checked() -> torch.Tensor:
        images = reference.load()
        if len(images) != reference.n or tuple(images.shape[-2:]) != (reference.image_size,) * 2:
            raise ConfigError(f"reference {reference.dataset}/{reference.split} should hold {reference.n} images of "
                              f"{reference.image_size}x{reference.image_size}, got {tuple(images.shape)}")
        _write_manifest(cache_root, key, reference, weights)
        return images

    return dict(input2=Uint8Images(load_checked), input2_cache_name=key, cache=True, cache_root=str(cache_root))


def _write_manifest(cache_root: Path, key: str, reference: InceptionReference, weights: Path) -> None:
    """A readable note of what a cache entry was computed from (torch-fidelity's files are opaque)."""
    manifest = {"dataset": reference.dataset, "split": reference.split, "n": reference.n,
                "image_size": reference.image_size, "inception_weights": str(weights),
                "inception_weights_sha256": weights_sha256(weights), "torch_fidelity_version": TORCH_FIDELITY_VERSION}
    (cache_root / f"{key}.json").write_text(json.dumps(manifest, indent=1) + "\n")


def cached_reference_files(cache_dir: str | Path, key: str) -> list[Path]:
    """The torch-fidelity cache files stored under `key` (features and statistics), sorted."""
    return sorted(path for path in Path(cache_dir).glob(f"{key}-*.pt"))


INCEPTION_METRIC_OBJECTS = (
    Metric("is", "higher", "inception", lambda inputs: inputs.inception("is"),
           "Inception Score, torch-fidelity (always 1.0 with zeroed-fc weights)"),
    Metric("fid", "lower", "inception", lambda inputs: inputs.inception("fid"),
           "Frechet Inception Distance to the reference, torch-fidelity", headline=6, ranking=2, label="FID"),
    Metric("kid", "lower", "inception", lambda inputs: inputs.inception("kid"),
           "Kernel Inception Distance to the reference (mean of subsets), torch-fidelity",
           provenance=("kid",)),
    Metric("is_std", None, "inception", lambda inputs: inputs.inception("is_std"),
           "standard deviation of the Inception Score over its 10 splits, torch-fidelity"),
    Metric("kid_std", None, "inception", lambda inputs: inputs.inception("kid_std"),
           "standard deviation of KID over its subsets, torch-fidelity", provenance=("kid",)),
    *(Metric(f"inception_{name}", "higher", "inception", lambda inputs, name=name: inputs.inception(
        f"inception_{name}"), f"{name} (k={PRDC_K}) on Inception pool3 features", provenance=("prdc_k",)) for name in
      ("precision", "recall", "density", "coverage")),
)
