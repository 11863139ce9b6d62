"""IS / FID / KID through torch-fidelity: same numbers as calling it directly, and a reference cache that is
never read for the wrong weights or N. Inception runs at a few images per second on a CPU: keep sets tiny."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
import torch_fidelity
from torch.utils.data import Dataset

from ebm_bench.datasets import to_unit_range
from ebm_bench.datasets.mnist import load_mnist
from ebm_bench.errors import ConfigError
from ebm_bench.metrics import (
    InceptionReference,
    inception_metrics,
    kid_setting,
    reference_cache_key,
    score_images,
    score,
    to_uint8_rgb,
)
from ebm_bench.metrics.inception import WEIGHTS_ENV, cached_reference_files, resolve_weights_path, weights_sha256

N_COMPARE = 48  # per side: 4 x 48 Inception forward passes in the comparison test


class _TiledUint8(Dataset):
    """The plain way to hand torch-fidelity uint8 MNIST: channel tiled by repeat, no [-1, 1] round trip."""

    def __init__(self, images_uint8: torch.Tensor):
        self.images = images_uint8.repeat(1, 3, 1, 1)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]


@pytest.fixture(scope="session")
def mnist_train_uint8(mnist_root) -> torch.Tensor:
    return load_mnist(mnist_root, "train", image_size=32).images


def test_to_uint8_rgb_maps_the_unit_range_and_tiles_grayscale():
    images = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5]).view(1, 1, 2, 3)
    converted = to_uint8_rgb(images)
    assert converted.dtype == torch.uint8 and converted.shape == (1, 3, 2, 3)
    # round((x + 1) * 127.5): 0, round(0.1275) = 0, round(127.5) = 128 (half to even), round(191.25), 255, clamp
    assert converted[0, 0].flatten().tolist() == [0, 0, 128, 191, 255, 255]
    assert torch.equal(converted[0, 0], converted[0, 2])


def test_uint8_images_survive_the_round_trip_through_the_unit_range(mnist_train_uint8):
    original = mnist_train_uint8[:100]
    assert torch.equal(to_uint8_rgb(to_unit_range(original))[:, :1], original)


def test_to_uint8_rgb_rejects_other_shapes():
    with pytest.raises(ConfigError, match="N x 1 x H x W"):
        to_uint8_rgb(torch.zeros(2, 2, 8, 8))


@pytest.mark.slow  # Inception on the CPU: a minute or more on 2 cores
def test_score_images_fid_kid_is_equal_torch_fidelity_called_directly(mnist_root, mnist_train_uint8,
                                                                       inception_weights, tmp_path):
    generated = to_unit_range(mnist_train_uint8[: N_COMPARE + 5])  # n below keeps the first N_COMPARE
    ours = score_images(generated, ["fid", "kid", "is"], reference="mnist-test", n=N_COMPARE, device="cpu",
                        inception_weights=inception_weights, data_root=mnist_root, cache_dir=tmp_path)
    reference = load_mnist(mnist_root, "test", image_size=32).images[:N_COMPARE]
    direct = torch_fidelity.calculate_metrics(
        input1=_TiledUint8(mnist_train_uint8[:N_COMPARE]), input2=_TiledUint8(reference),
        isc=True, fid=True, kid=True, kid_subset_size=N_COMPARE, feature_extractor_weights_path=str(inception_weights),
        cuda=False, cache=False, verbose=False, save_cpu_ram=True,  # no worker processes on a 2-core CPU
    )
    assert ours["fid"] == pytest.approx(direct["frechet_inception_distance"], rel=1e-6)
    assert ours["kid"] == pytest.approx(direct["kernel_inception_distance_mean"], rel=1e-6, abs=1e-9)
    assert ours["fid"] > 1.0  # two different digit sets: a real distance, not a degenerate zero
    # The project's shared weights have a zeroed fc layer (IS exactly 1); torch-fidelity's own file gives a real IS.
    assert ours["is"] == pytest.approx(direct["inception_score_mean"], rel=1e-6)


def test_reference_cache_key_changes_with_everything_that_changes_the_statistics():
    base = dict(dataset="mnist", split="test", n=10000, image_size=32, weights_sha256="ab" * 32)
    key = reference_cache_key(**base)
    variants = [dict(base, dataset="cifar10"), dict(base, split="train"), dict(base, n=5000),
                dict(base, image_size=28), dict(base, weights_sha256="cd" * 32)]
    keys = {reference_cache_key(**variant) for variant in variants}
    assert key not in keys and len(keys) == len(variants)
    assert reference_cache_key(**base, fidelity_version="9.9.9") != key
    assert reference_cache_key(**base) == key  # and it is deterministic
    assert "/" not in reference_cache_key(**dict(base, dataset="a/b c"))


class _Recomputed(Exception):
    """Raised by a reference loader to prove that the cache was not used."""


def _reference(images: torch.Tensor, n: int, calls: list, fail: bool = False) -> InceptionReference:
    def load():
        calls.append(n)
        if fail:
            raise _Recomputed
        return images[:n]

    return InceptionReference("mnist", "test", n, 32, load)


@pytest.mark.slow  # Inception on the CPU: a minute or more on 2 cores
def test_reference_statistics_are_cached_and_recomputed_when_n_or_weights_change(
        mnist_train_uint8, inception_weights, tmp_path):
    generated = to_unit_range(mnist_train_uint8[:10])
    reference_images = mnist_train_uint8[100:112]
    sha = weights_sha256(inception_weights)
    cache = tmp_path / "cache"
    calls: list[int] = []

    first = inception_metrics(generated, ["fid"], _reference(reference_images, 10, calls), inception_weights,
                              cache_dir=cache)
    key_10 = reference_cache_key("mnist", "test", 10, 32, sha)
    assert calls == [10] and cached_reference_files(cache, key_10)

    # Same key: the reference statistics come from the cache, the loader is not called again.
    again = inception_metrics(generated, ["fid"], _reference(reference_images, 10, calls), inception_weights,
                              cache_dir=cache)
    assert calls == [10] and again["fid"] == pytest.approx(first["fid"], rel=1e-9)

    # Another N: another key, recomputed, stored beside the first.
    inception_metrics(generated, ["fid"], _reference(reference_images, 12, calls), inception_weights,
                      cache_dir=cache)
    assert calls == [10, 12] and cached_reference_files(cache, reference_cache_key("mnist", "test", 12, 32, sha))

    # Other weights (same tensors, different bytes, so a different sha256): the N=10 entry must not be read.
    other_weights = tmp_path / "other-inception.pth"
    shutil.copy(inception_weights, other_weights)
    with other_weights.open("ab") as handle:
        handle.write(b"\0")  # torch.load's zip reader ignores trailing bytes; sha256 does not
    assert weights_sha256(other_weights) != sha
    with pytest.raises(_Recomputed):
        inception_metrics(generated, ["fid"], _reference(reference_images, 10, calls, fail=True), other_weights,
                          cache_dir=cache)
    assert calls == [10, 12, 10]


def test_weights_come_from_the_environment_when_not_passed(inception_weights, monkeypatch, tmp_path):
    monkeypatch.setenv(WEIGHTS_ENV, str(inception_weights))
    assert resolve_weights_path(None) == inception_weights
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError, match=WEIGHTS_ENV):
        resolve_weights_path(None)


def test_fid_without_a_reference_is_a_config_error(inception_weights):
    with pytest.raises(ConfigError, match="reference"):
        inception_metrics(torch.zeros(10, 1, 32, 32), ["fid"], None, inception_weights)


@pytest.mark.cuda
def test_fid_on_the_gpu_equals_fid_on_the_cpu(mnist_root, mnist_train_uint8, inception_weights, tmp_path):
    generated = to_unit_range(mnist_train_uint8[:N_COMPARE])
    scores = {device: score_images(generated, ["fid", "kid"], reference="mnist-test", n=N_COMPARE, device=device,
                                   inception_weights=inception_weights, data_root=mnist_root,
                                   cache_dir=tmp_path / device)
              for device in ("cpu", "cuda")}
    # Inception in float32 with cuDNN's convolutions on one side and oneDNN's on the other: FID agrees to 1e-3
    assert scores["cuda"]["fid"] == pytest.approx(scores["cpu"]["fid"], rel=1e-3)
    assert scores["cuda"]["kid"] == pytest.approx(scores["cpu"]["kid"], rel=1e-2, abs=1e-5)


@pytest.mark.parametrize("content, problem", [
    (b"not weights at all\n", "torch.load cannot read it (UnpicklingError)"),
    (b"", "torch.load cannot read it (EOFError)"),
    ("tensor", "it holds a Tensor, not a state dict"),
    ("other-net", "its 1 entries lack Inception-v3's Conv2d_1a_3x3.conv.weight"),
])
def test_a_file_that_is_not_inception_weights_is_refused_in_one_line(content, problem, tmp_path):
    path = tmp_path / "weights.pth"
    if content == "tensor":
        torch.save(torch.zeros(3), path)
    elif content == "other-net":
        torch.save({"layer.weight": torch.zeros(3)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as error:
        resolve_weights_path(path)
    message = str(error.value)
    assert message.startswith(f"{path} (from --inception-weights) is not a readable Inception weights file: {problem}")
    assert "weights-inception-2015-12-05" in message and "\n" not in message


class _FakeFidelity:
    """torch_fidelity.calculate_metrics without Inception: records its arguments, returns a KID spread."""

    def __init__(self):
        self.kwargs = {}

    def __call__(self, **kwargs):
        self.kwargs = kwargs
        return {"kernel_inception_distance_mean": 0.125, "kernel_inception_distance_std": 2e-7,
                "frechet_inception_distance": 1.0}


@pytest.mark.parametrize("n, n_reference, spread", [(20, 20, False), (20, 40, True), (1500, 1500, True)])
def test_kid_std_is_nan_when_every_subset_is_the_whole_set(n, n_reference, spread, inception_weights, tmp_path,
                                                           monkeypatch):
    fake = _FakeFidelity()
    monkeypatch.setattr(torch_fidelity, "calculate_metrics", fake)
    reference = InceptionReference("mnist", "test", n_reference, 8, lambda: torch.zeros(n_reference, 1, 8, 8))
    scores = inception_metrics(torch.zeros(n, 1, 8, 8), ["kid", "kid_std"], reference, inception_weights,
                               cache_dir=tmp_path)
    subset = min(1000, n, n_reference)
    assert fake.kwargs["kid_subset_size"] == subset and fake.kwargs["kid_subsets"] == 100
    assert scores["kid"] == 0.125
    assert (scores["kid_std"] == 2e-7) if spread else math.isnan(scores["kid_std"])
    setting = kid_setting(n, n_reference)
    assert setting.spread_defined is spread and setting.provenance()["kid_subset_size"] == subset
    assert ("kid_std_note" in setting.provenance()) is not spread


def test_the_provenance_says_why_kid_std_is_nan(inception_weights, tmp_path, monkeypatch):
    monkeypatch.setattr(torch_fidelity, "calculate_metrics", _FakeFidelity())
    images = torch.rand(30, 1, 8, 8) * 2 - 1
    ((scores, record),) = score(["kid", "kid_std"], images, images, n=20, inception_weights=inception_weights,
                                cache_dir=tmp_path)
    assert math.isnan(scores["kid_std"]) and record["n"] == record["n_reference"] == 20
    assert record["kid_subset_size"] == 20 and record["kid_subsets"] == 100
    assert record["kid_std_note"].startswith("kid_std is NaN: the KID subsets of 20 images are the whole sets")
    ((_, fid_only),) = score(["fid"], images, images, n=20, inception_weights=inception_weights, cache_dir=tmp_path)
    assert "kid_subset_size" not in fid_only  # KID's settings only where KID was computed
