"""64x64 conv EBGAN: harness steps/s against a plain PyTorch loop, and images/s of each 64x64 loader.

Part 1, steps/s. The plain loop is what a careful user would write by hand: the paper's networks (DCGAN G, the
appendix-C auto-encoder D), EBGAN's losses with m = 20, Adam 2e-4 / beta1 0.5, batches drawn from a pre-decoded
uint8 tensor on the device, no logging. The harness runs the same through `train_one` on the synthetic CelebA
folder, so it also decodes JPEGs (in EBM_BENCH_WORKERS worker processes, or in the main process with 0) and
accumulates its per-step statistics. The two alternate, `--repeats` times each; medians are reported.

Part 2, images/s of each loader (celeba, lsun-bedroom, lsun-bedroom-patches, folder) over `--load-batches`
batches, for each worker count in `--workers`: decoding, crop/resize and collation only, no training.

Synthetic data, generated once into a temporary folder: `--images` CelebA-sized JPEGs (178x218) with a partition
file (the folder dataset reads the same JPEGs), and an LMDB of as many LSUN-sized images (webp, short side 256).

    python benchmarks/bench_conv.py --steps 20 --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ebm_bench import Budget, OptimConfig, RunConfig
from ebm_bench.api import train_one
from ebm_bench.device import resolve_device
from ebm_bench.datasets import get_dataset, to_unit_range
from ebm_bench.methods import ebgan_loss_d, ebgan_loss_g, l2_energy
from ebm_bench.nets import build_networks

from bench_harness import plain_step  # the same hand-written step as the MLP benchmark (benchmarks/ is on sys.path)

Z_DIM = 100
MARGIN = 20.0
OPTIM = OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999)
LOADERS = ("celeba", "lsun-bedroom", "lsun-bedroom-patches", "folder")


# -- synthetic data ----------------------------------------------------------------------------------------------
def photo_like(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Smooth colour blobs plus noise: encodes to photo-like sizes (noise alone would not compress)."""
    coarse = rng.integers(0, 256, size=(height // 16, width // 16, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)).astype(int)
    return Image.fromarray(np.clip(image + rng.integers(-8, 9, size=image.shape), 0, 255).astype(np.uint8))


def write_synthetic(root: Path, n: int) -> None:
    """<root>/celeba (JPEGs + partition, 90% train), <root>/folder (the same JPEGs), <root>/lsun (webp LMDB)."""
    import lmdb

    rng = np.random.default_rng(0)
    images = root / "celeba" / "img_align_celeba"
    images.mkdir(parents=True)
    lines = []
    for i in range(1, n + 1):
        photo_like(rng, 178, 218).save(images / f"{i:06d}.jpg", quality=90)
        lines.append(f"{i:06d}.jpg {0 if i <= 0.9 * n else 1}")
    (root / "celeba" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    (root / "folder").symlink_to(images)
    (root / "lsun").mkdir()
    env = lmdb.open(str(root / "lsun" / "bedroom_train_lmdb"), map_size=1 << 30)
    with env.begin(write=True) as txn:
        for i in range(n):
            width = int(rng.integers(256, 400))
            buffer = io.BytesIO()
            photo_like(rng, width, 256).save(buffer, format="WEBP", quality=75)
            txn.put(hashlib.sha1(str(i).encode()).hexdigest().encode(), buffer.getvalue())
    env.close()


@contextlib.contextmanager
def workers_env(workers: int | None):
    old = os.environ.get("EBM_BENCH_WORKERS")
    if workers is not None:
        os.environ["EBM_BENCH_WORKERS"] = str(workers)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("EBM_BENCH_WORKERS", None)
        else:
            os.environ["EBM_BENCH_WORKERS"] = old


# -- part 1: steps/s ---------------------------------------------------------------------------------------------
def decoded_celeba(root: Path, device: torch.device) -> torch.Tensor:
    """The synthetic CelebA training images as one uint8 tensor on the device (the plain loop's data)."""
    with workers_env(0):
        data = get_dataset("celeba").load(root, 64, 64, 0, 0, device, False)
    dataset = data.batches.dataset
    return torch.stack([dataset[(i, 0)][0] for i in range(len(dataset))]).to(device)


def plain_loop(images: torch.Tensor, steps: int, batch: int, device: torch.device) -> float:
    """Steps/s of a hand-written conv EBGAN loop."""
    torch.manual_seed(0)
    g, d = (net.to(device) for net in build_networks("dcgan", "autoencoder", tuple(images.shape[1:]), Z_DIM))
    betas = (OPTIM.beta1, OPTIM.beta2)
    opt_g = torch.optim.Adam(g.parameters(), lr=OPTIM.lr_g, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=OPTIM.lr_d, betas=betas)
    order = torch.randperm(len(images), device=device)
    per_epoch = len(images) // batch

    def energy(net, v):
        return l2_energy(v, net(v).reconstruction)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for step in range(steps):
        real = to_unit_range(images[order[(step % per_epoch) * batch:][:batch]])
        plain_step(g, d, opt_g, opt_d, real, energy, lambda real_e, fake_e: ebgan_loss_d(real_e, fake_e, MARGIN),
                   ebgan_loss_g)
    sync()
    return steps / (time.perf_counter() - start)


def harness(root: Path, steps: int, batch: int, device: str, workers: int | None) -> float:
    with tempfile.TemporaryDirectory() as out, workers_env(workers):
        config = RunConfig(method="ebgan", dataset="celeba", budget=Budget("steps", steps), batch_size=batch,
                           device=device, data_root=str(root), out=out, holdout=64, n_samples=16, log_every=100,
                           checkpoint_every=1000, download=False)
        return train_one(config).steps_per_s


# -- part 2: images/s --------------------------------------------------------------------------------------------
def loader_rate(root: Path, name: str, batch: int, n_batches: int, workers: int, device: torch.device) -> float:
    """Images/s of `name`'s batch stream, after its first batch (which pays for starting the workers)."""
    with workers_env(workers):
        data = get_dataset(name).load(root, 64, batch, 0, 0, device, False)
    batches = data.batches
    batches.next()
    start = time.perf_counter()
    for _ in range(n_batches):
        batches.next()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    rate = n_batches * batch / (time.perf_counter() - start)
    del data, batches  # shuts the persistent workers down before the next loader starts its own
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=400, help="synthetic images per dataset")
    parser.add_argument("--load-batches", type=int, default=20)
    parser.add_argument("--workers", default="0,2", help="worker counts for the loader benchmark")
    parser.add_argument("--harness-workers", type=int, default=None,
                        help="EBM_BENCH_WORKERS for the harness runs (default: the loader's default)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: steps, loaders")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        write_synthetic(root, args.images)
        print(f"synthetic data: {args.images} images per dataset in {time.perf_counter() - started:.1f}s; "
              f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
              f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPUs {os.cpu_count()}, "
              f"load average {os.getloadavg()[0]:.1f}")
        if "steps" not in skip:
            images = decoded_celeba(root, device)
            print(f"\nconv EBGAN (dcgan G + the paper's auto-encoder D), batch {args.batch_size}, {args.steps} steps "
                  f"x {args.repeats} repeats, harness EBM_BENCH_WORKERS={args.harness_workers}")
            plain_loop(images, 2, args.batch_size, device)  # warm-up, both sides
            harness(root, 2, args.batch_size, args.device, args.harness_workers)
            plain, ours = [], []
            for _ in range(args.repeats):
                plain.append(plain_loop(images, args.steps, args.batch_size, device))
                ours.append(harness(root, args.steps, args.batch_size, args.device, args.harness_workers))
            p, h = statistics.median(plain), statistics.median(ours)
            print(f"{'plain steps/s':>14} {'harness steps/s':>16} {'harness/plain':>14}")
            print(f"{p:>14.3f} {h:>16.3f} {h / p:>14.3f}")
        if "loaders" not in skip:
            counts = [int(w) for w in args.workers.split(",")]
            print(f"\nloaders: images/s over {args.load_batches} batches of {args.batch_size} (after the first)")
            print(f"{'dataset':<22}" + "".join(f"{f'{w} workers':>12}" for w in counts))
            for name in LOADERS:
                rates = [loader_rate(root, name, args.batch_size, args.load_batches, w, device) for w in counts]
                print(f"{name:<22}" + "".join(f"{r:>12.0f}" for r in rates))


if __name__ == "__main__":
    main()
