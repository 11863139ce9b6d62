"""64x64 datasets on tiny synthetic data in the real on-disk formats: splits, crops, seeded and resumable order,
clear errors, and every method training a few steps on every dataset through the public API."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from ebm_bench import Budget, RunConfig
from ebm_bench.api import train_one
from ebm_bench.datasets import get_dataset
from ebm_bench.errors import ConfigError, DataNotFoundError
from ebm_bench.methods import METHODS as METHODS_REGISTRY
from ebm_bench.datasets.celeba import load_celeba
from ebm_bench.datasets.folder import list_images, load_folder
from ebm_bench.datasets.images import CorruptImageError, FileImages, MissingDependencyError, RandomPatch, square_resize
from ebm_bench.datasets.loading import LoaderBatches, num_workers
from ebm_bench.datasets.lsun import KeyTable, lmdb_keys, load_lsun_bedroom, load_lsun_bedroom_patches

CPU = torch.device("cpu")
METHODS = sorted(name for name, cls in METHODS_REGISTRY.all().items()  # built-ins that train without labels
                 if not name.startswith("test-") and not cls.needs_labels)
DATASET_NAMES = ["celeba", "lsun-bedroom", "lsun-bedroom-patches", "folder"]


@pytest.fixture(autouse=True)
def small_cpu_footprint(monkeypatch):
    """Two shared CPU cores: decode in the main process unless a test is about workers, and one intra-op thread
    (with the other core busy, a second OpenMP thread makes every small conv wait for it: ~10x slower)."""
    monkeypatch.setenv("EBM_BENCH_WORKERS", "0")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def roots(celeba_root, lsun_root, folder_root):
    return {"celeba": celeba_root, "lsun-bedroom": lsun_root, "lsun-bedroom-patches": lsun_root,
            "folder": folder_root}


def epoch_batches(batches, n):
    return [batches.next() for _ in range(n)]


def same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


# -- loading, splits, shapes -------------------------------------------------------------------------------------
def test_celeba_trains_on_the_official_train_split_and_holds_out_valid(celeba_root):
    data = load_celeba(celeba_root, 64, batch_size=4, seed=0, holdout=100, device=CPU)
    assert data.n_train == 14 and data.batches.batches_per_epoch == 3
    assert data.holdout.shape == (6, 3, 64, 64)  # all 6 valid images: holdout is capped by the split's size
    assert load_celeba(celeba_root, 64, 4, 0, holdout=2, device=CPU).holdout.shape == (2, 3, 64, 64)
    batch = data.batches.next()
    assert batch.shape == (4, 3, 64, 64) and batch.dtype == torch.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0 and batch.std() > 0.1
    # the white bands above and below the 178x178 centre square are cropped away; the square holds 0..200
    assert torch.cat([batch, data.holdout]).max() <= 200 / 127.5 - 1 + 0.02
    assert len(data.sha256) == 64


def test_lsun_holds_out_the_last_keys_when_there_is_no_val_lmdb(lsun_root):
    data = load_lsun_bedroom(lsun_root, 64, batch_size=4, seed=0, holdout=4, device=CPU)
    assert data.n_train == 12 and data.holdout.shape == (4, 3, 64, 64)
    keys = lmdb_keys(lsun_root / "lsun" / "bedroom_train_lmdb")
    assert len(keys) == 16 and [keys[i] for i in range(16)] == sorted(keys[i] for i in range(16))
    assert data.batches.dataset.stop == 12 and data.batches.dataset.keys[15] == keys[15]
    batch = data.batches.next()
    assert batch.shape == (4, 3, 64, 64) and batch.min() >= -1 and batch.max() <= 1


def test_lsun_uses_the_official_val_lmdb_when_present(tmp_path, lsun_root, synthetic):
    shutil.copytree(lsun_root / "lsun" / "bedroom_train_lmdb", tmp_path / "lsun" / "bedroom_train_lmdb")
    synthetic.write_lmdb(tmp_path / "lsun" / "bedroom_val_lmdb", synthetic.lsun_images(3, seed=1), seed=1)
    data = load_lsun_bedroom(tmp_path, 64, batch_size=4, seed=0, holdout=10, device=CPU)
    assert data.n_train == 16 and data.holdout.shape == (3, 3, 64, 64)
    assert data.sha256 != load_lsun_bedroom(lsun_root, 64, 4, 0, 4, CPU).sha256


def test_lsun_key_list_is_cached_beside_the_lmdb_and_reused(tmp_path, lsun_root, monkeypatch):
    lmdb_dir = tmp_path / "lsun" / "bedroom_train_lmdb"
    shutil.copytree(lsun_root / "lsun" / "bedroom_train_lmdb", lmdb_dir)
    first = lmdb_keys(lmdb_dir)
    assert (tmp_path / "lsun" / "bedroom_train_lmdb.ebm-bench-keys.npz").is_file()
    monkeypatch.setattr(KeyTable, "from_keys", lambda keys: pytest.fail("the key cache was not used"))
    again = lmdb_keys(lmdb_dir)
    assert [again[i] for i in range(len(again))] == [first[i] for i in range(len(first))]


def test_lsun_patches_are_seeded_random_crops_of_the_96x96_image(lsun_root):
    data = load_lsun_bedroom_patches(lsun_root, 64, batch_size=4, seed=3, holdout=4, device=CPU)
    dataset = data.batches.dataset
    patch = dataset.transform
    assert isinstance(patch, RandomPatch) and (patch.source, patch.size, patch.seed) == (96, 64, 3)
    image, error = dataset[(5, 0)]
    whole = square_resize(dataset.read(5), 96)
    x, y = patch.offset(5, 0)
    expected = torch.from_numpy(np.array(whole.crop((x, y, x + 64, y + 64)))).permute(2, 0, 1)
    assert error == "" and torch.equal(image, expected)
    offsets = {patch.offset(i, epoch) for i in range(12) for epoch in range(3)}
    assert len(offsets) > 20 and all(0 <= v <= 32 for xy in offsets for v in xy)
    assert patch.offset(5, 0) == RandomPatch(96, 64, 3).offset(5, 0) != RandomPatch(96, 64, 4).offset(5, 0)
    assert data.holdout.shape == (4, 3, 64, 64)


def test_folder_finds_images_recursively_and_holds_out_the_last_files(folder_root):
    names = list_images(folder_root / "folder")
    assert len(names) == 12 and names == sorted(names) and "a/img00.png" in names and "img05.PNG" not in names
    assert "b/c/img05.PNG" in names and not any(n.endswith((".txt",)) or "/._" in n or n.startswith("._")
                                                 for n in names)
    data = load_folder(folder_root, 64, batch_size=4, seed=0, holdout=4, device=CPU)
    assert data.n_train == 8 and data.holdout.shape == (4, 3, 64, 64)
    assert list(data.batches.dataset.names) == names[:8]
    assert data.batches.next().shape == (4, 3, 64, 64)


# -- order: seeded, worker-independent, resumable ----------------------------------------------------------------
def test_same_seed_same_order_different_seed_different_order(celeba_root):
    a = epoch_batches(load_celeba(celeba_root, 64, 4, seed=0, holdout=0, device=CPU).batches, 7)
    b = epoch_batches(load_celeba(celeba_root, 64, 4, seed=0, holdout=0, device=CPU).batches, 7)
    c = epoch_batches(load_celeba(celeba_root, 64, 4, seed=1, holdout=0, device=CPU).batches, 7)
    assert same(a, b) and not same(a, c)
    first_epoch = torch.cat(a[:3]).flatten(1)
    assert len({tuple(row[:16].tolist()) for row in first_epoch}) == 12  # without replacement, last 2 dropped


def test_worker_processes_give_the_same_batches_and_resume_exactly(folder_root, monkeypatch):
    reference = load_folder(folder_root, 64, 4, seed=5, holdout=4, device=CPU).batches
    expected = epoch_batches(reference, 7)  # 2 batches per epoch: crosses three epoch boundaries
    monkeypatch.setenv("EBM_BENCH_WORKERS", "2")
    assert num_workers() == 2
    batches = load_folder(folder_root, 64, 4, seed=5, holdout=4, device=CPU).batches
    got = epoch_batches(batches, 3)
    state = batches.state_dict()
    got += epoch_batches(batches, 4)
    assert same(got, expected)
    batches.load_state_dict(state)  # rewinds a loader whose workers have prefetched ahead
    assert same(epoch_batches(batches, 4), expected[3:])


def test_the_loader_is_set_up_to_keep_a_gpu_fed(folder_root):
    """Checked on the DataLoader's settings: this machine has no GPU to run it on."""
    dataset = load_folder(folder_root, 64, 4, 0, 4, CPU).batches.dataset
    loader = LoaderBatches(dataset, 4, 0, torch.device("cuda"), workers=2).loader  # no CUDA call until next()
    assert loader.num_workers == 2 and loader.persistent_workers and loader.pin_memory
    assert loader.prefetch_factor == 4 and len(loader) == 2  # whole batches only: 8 images, batch 4
    on_cpu = LoaderBatches(dataset, 3, 0, CPU, workers=0)
    assert not on_cpu.loader.pin_memory and not on_cpu.loader.persistent_workers and on_cpu.batches_per_epoch == 2


@pytest.mark.parametrize("at", [1, 3, 6])  # mid-epoch, first batch of an epoch, and the end of an epoch
def test_batch_stream_resumes_from_its_state_dict(celeba_root, at):
    batches = load_celeba(celeba_root, 64, 4, seed=2, holdout=0, device=CPU).batches
    epoch_batches(batches, at)
    state = batches.state_dict()
    expected = epoch_batches(batches, 5)
    fresh = load_celeba(celeba_root, 64, 4, seed=2, holdout=0, device=CPU).batches
    fresh.load_state_dict(state)
    assert (fresh.epoch, fresh.position) == (state["epoch"], state["position"])
    assert same(epoch_batches(fresh, 5), expected)


def test_a_training_run_resumes_to_the_same_trajectory(folder_root, tmp_path):
    config = run_config("folder", folder_root, tmp_path / "whole", "ebgan", steps=5, checkpoint_every=3)
    whole = train_one(config)

    def interrupt(row):
        if row["step"] == 4:  # after the checkpoint at step 3, in the middle of the second epoch (2 batches each)
            raise KeyboardInterrupt

    resumed_config = dataclasses.replace(config, out=str(tmp_path / "resumed"))
    with pytest.raises(KeyboardInterrupt):
        train_one(resumed_config, on_log=interrupt)
    resumed = train_one(resumed_config)
    assert resumed.status == "finished" and resumed.steps == 5
    pd.testing.assert_frame_equal(trajectory(whole).drop(columns="wall_s"), trajectory(resumed).drop(columns="wall_s"))


# -- errors ------------------------------------------------------------------------------------------------------
def test_missing_celeba_names_the_missing_path_and_the_fix(tmp_path, synthetic):
    with pytest.raises(DataNotFoundError, match="celeba.*does not exist.*list_eval_partition.txt") as info:
        load_celeba(tmp_path, 64, 4, 0, 4, CPU)
    assert str(tmp_path / "celeba") in str(info.value) and "--data-root" in str(info.value)
    synthetic.write_celeba(tmp_path, splits=[0] * 6 + [1] * 2)
    (tmp_path / "celeba" / "list_eval_partition.txt").unlink()
    with pytest.raises(DataNotFoundError, match="list_eval_partition.txt does not exist"):
        load_celeba(tmp_path, 64, 4, 0, 4, CPU)


def test_celeba_image_listed_but_missing_is_named(tmp_path, synthetic):
    synthetic.write_celeba(tmp_path, splits=[0] * 6 + [1] * 2)
    (tmp_path / "celeba" / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.raises(DataNotFoundError, match="1 of the 8 .* missing .*first: 000003.jpg"):
        load_celeba(tmp_path, 64, 4, 0, 4, CPU)


def test_missing_lsun_and_folder_name_the_path(tmp_path):
    with pytest.raises(DataNotFoundError, match="bedroom_train_lmdb|lsun does not exist") as info:
        load_lsun_bedroom(tmp_path, 64, 4, 0, 4, CPU)
    assert "download.py -c bedroom" in str(info.value)
    with pytest.raises(DataNotFoundError, match=f"{tmp_path / 'folder'} does not exist"):
        load_folder(tmp_path, 64, 4, 0, 4, CPU)
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataNotFoundError, match="no images in"):
        load_folder(tmp_path, 64, 4, 0, 4, CPU)


def test_missing_lmdb_package_says_what_to_install(lsun_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lmdb", None)  # `import lmdb` now raises ImportError
    with pytest.raises(MissingDependencyError, match='pip install "ebm-bench\\[lsun\\]"'):
        load_lsun_bedroom_patches(lsun_root, 64, 4, 0, 4, CPU)
    with pytest.raises(ConfigError, match="lmdb"):
        train_one(run_config("lsun-bedroom", lsun_root, tmp_path, "ebgan"))


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_corrupt_image_is_named_in_a_clean_error(tmp_path, synthetic, monkeypatch, workers):
    synthetic.write_folder(tmp_path)
    bad = tmp_path / "folder" / "b" / "c" / "img06.png"  # in the training part
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    monkeypatch.setenv("EBM_BENCH_WORKERS", workers)
    data = load_folder(tmp_path, 64, 4, 0, 4, CPU)
    with pytest.raises(CorruptImageError, match=f"cannot decode image {bad}.*delete or replace") as info:
        epoch_batches(data.batches, 2)
    assert "Traceback" not in str(info.value)


def test_corrupt_held_out_jpeg_and_lmdb_value_are_named(tmp_path, synthetic, lsun_root):
    synthetic.write_celeba(tmp_path, splits=[0] * 6 + [1] * 2)
    jpeg = tmp_path / "celeba" / "img_align_celeba" / "000008.jpg"  # a valid-split image: fails at load
    jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    with pytest.raises(CorruptImageError, match="000008.jpg"):
        load_celeba(tmp_path, 64, 4, 0, 4, CPU)
    images = synthetic.lsun_images(8)
    images[2] = b"RIFF\x00\x00garbage"
    keys = synthetic.write_lmdb(tmp_path / "lsun" / "bedroom_train_lmdb", images)
    data = load_lsun_bedroom(tmp_path, 64, 4, 0, 0, CPU)
    with pytest.raises(CorruptImageError, match="cannot decode image key '[0-9a-f]{40}' in .*bedroom_train_lmdb"):
        epoch_batches(data.batches, 2)
    assert len(keys) == 8


def test_bad_worker_count_and_holdout_are_config_errors(folder_root, monkeypatch):
    monkeypatch.setenv("EBM_BENCH_WORKERS", "many")
    with pytest.raises(ConfigError, match="EBM_BENCH_WORKERS"):
        num_workers()
    monkeypatch.setenv("EBM_BENCH_WORKERS", "0")
    with pytest.raises(ConfigError, match="holdout"):
        load_folder(folder_root, 64, 4, 0, 10, CPU)
    with pytest.raises(ConfigError, match="batch size 16"):
        LoaderBatches(FileImages(folder_root, ["x.png"] * 8, None), 16, 0, CPU, 0)


# -- training through the API ------------------------------------------------------------------------------------
def run_config(dataset, root, tmp_path, method, steps=3, **overrides):
    values = dict(method=method, dataset=dataset, budget=Budget("steps", steps), batch_size=4, holdout=4,
                  data_root=str(root), out=str(tmp_path / "runs"), log_every=1, checkpoint_every=1000, n_samples=4,
                  download=False)
    return RunConfig(**(values | overrides))


def trajectory(result):
    return pd.read_csv(f"{result.run_dir}/trajectory.csv")


@pytest.mark.parametrize("dataset", DATASET_NAMES)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_on_every_64x64_dataset(roots, tmp_path, dataset, method):
    result = train_one(run_config(dataset, roots[dataset], tmp_path, method))
    assert result.status == "finished" and result.steps == 3 and result.images == 12
    frame = trajectory(result)
    assert frame["step"].tolist() == [1, 2, 3] and frame["energy_real_mean"].notna().all()
    config = json.loads((tmp_path / "runs" / result.run_id / "config.json").read_text())
    assert config["arch"] == "dcgan" and config["image_size"] == 64
    expected = {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5} | METHODS_REGISTRY.get(method).optim_defaults  # dcgan-64's
    assert {name: config["optim"][name] for name in expected} == expected
    if method in ("ebgan", "ebgan-pt"):
        assert frame["margin"].iloc[-1] == get_dataset(dataset).option_defaults["margin"]
    manifest = json.loads((tmp_path / "runs" / result.run_id / "manifest.json").read_text())
    assert len(manifest["data_sha256"]) == 64 and manifest["samples"]["holdout"] == 4
    assert 0.0 <= result.evaluation["energy_auroc"] <= 1.0


def test_default_margins_follow_the_paper():
    assert {name: get_dataset(name).option_defaults["margin"] for name in DATASET_NAMES} == {
        "celeba": 20.0, "lsun-bedroom": 80.0, "lsun-bedroom-patches": 80.0, "folder": 20.0}
    assert all(get_dataset(name).default_arch == "dcgan" for name in DATASET_NAMES)


@pytest.mark.parametrize("method", ["ebgan-pt", "began"])
def test_the_began_architecture_trains_auto_encoder_methods(folder_root, tmp_path, method):
    result = train_one(run_config("folder", folder_root, tmp_path, method, steps=2, arch="began"))
    assert result.status == "finished" and trajectory(result)["loss_d"].notna().all()


def test_the_began_architecture_refuses_a_classifier_d(folder_root, tmp_path):
    with pytest.raises(ConfigError, match="only an auto-encoder D"):
        train_one(run_config("folder", folder_root, tmp_path, "gan", arch="began"))
