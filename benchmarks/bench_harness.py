"""Steps/s of the ebm-bench harness against a plain PyTorch loop of the same networks, losses and batch.

The plain loop is what a careful user would write by hand for the same algorithm: the batch drawn from a
device-resident tensor, one D step on a real and a generated batch, one G step on fresh noise with D frozen, no
logging. The harness adds everything a benchmark needs (per-step statistics accumulated on the device, a
trajectory row every --log-every steps, checkpoints every --checkpoint-every steps, method state updates). The
two alternate, `--repeats` times each, in one process; the median of each is reported.

    python benchmarks/bench_harness.py --methods gan,ebgan --steps 300 --data-root DIR
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from ebm_bench import Budget, RunConfig
from ebm_bench.api import train_one
from ebm_bench.device import resolve_device
from ebm_bench.datasets import default_data_root, to_unit_range
from ebm_bench.datasets.mnist import load_mnist
from ebm_bench.methods import ebgan_loss_d, ebgan_loss_g, gan_loss_d, gan_loss_g, l2_energy
from ebm_bench.config import MLPConfig
from ebm_bench.nets import build_networks

Z_DIM = 100
PLAIN_LOSSES = {
    "gan": ("classifier", lambda d, v: -d(v).logit, gan_loss_d, gan_loss_g),
    "ebgan": ("autoencoder", lambda d, v: l2_energy(v, d(v).reconstruction),
              lambda real, fake: ebgan_loss_d(real, fake, 10.0), ebgan_loss_g),
}


def plain_step(g, d, opt_g, opt_d, real: torch.Tensor, energy, loss_d_fn, loss_g_fn) -> None:
    """One hand-written step: D on a real and a generated batch, then G on fresh noise with D frozen."""
    batch = len(real)
    with torch.no_grad():
        fake = g(torch.randn(batch, Z_DIM, device=real.device))
    loss_d = loss_d_fn(energy(d, real), energy(d, fake))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    d.requires_grad_(False)
    loss_g = loss_g_fn(energy(d, g(torch.randn(batch, Z_DIM, device=real.device))))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    d.requires_grad_(True)


def plain_loop(method: str, images: torch.Tensor, steps: int, batch: int, mlp: MLPConfig,
               device: torch.device) -> float:
    """Steps/s of a hand-written loop for `method`."""
    energy_model, energy, loss_d_fn, loss_g_fn = PLAIN_LOSSES[method]
    torch.manual_seed(0)
    g, d = (net.to(device) for net in build_networks("mlp", energy_model, tuple(images.shape[1:]), Z_DIM, mlp))
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3)
    order = torch.randperm(len(images), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for step in range(steps):
        real = to_unit_range(images[order[step * batch % (len(images) - batch):][:batch]])
        plain_step(g, d, opt_g, opt_d, real, energy, loss_d_fn, loss_g_fn)
    sync()
    return steps / (time.perf_counter() - start)


def harness(method: str, steps: int, batch: int, mlp: MLPConfig, device: str, data_root: str,
            log_every: int, checkpoint_every: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        config = RunConfig(method=method, budget=Budget("steps", steps), batch_size=batch, mlp=mlp, device=device,
                           data_root=data_root, out=out, log_every=log_every, checkpoint_every=checkpoint_every)
        return train_one(config).steps_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="gan,ebgan")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-root", default=str(default_data_root()))
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    args = parser.parse_args()

    unknown = set(args.methods.split(",")) - set(PLAIN_LOSSES)
    if unknown:
        parser.error(f"no plain loop for {', '.join(sorted(unknown))}; choose from {', '.join(PLAIN_LOSSES)}")
    device = resolve_device(args.device)
    mlp = MLPConfig()  # the paper's best EBGAN MLP: nLayerG=5, sizeG=800, nLayerD=2, sizeD=1024
    images = load_mnist(args.data_root, "train", 32).images.to(device)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch_size}, "
          f"{args.steps} steps x {args.repeats} repeats, log every {args.log_every}, "
          f"checkpoint every {args.checkpoint_every}")
    print(f"{'method':<8} {'plain steps/s':>14} {'harness steps/s':>16} {'harness/plain':>14}")
    for method in args.methods.split(","):
        plain_loop(method, images, 20, args.batch_size, mlp, device)  # warm-up, both sides
        harness(method, 20, args.batch_size, mlp, args.device, args.data_root, args.log_every, args.checkpoint_every)
        plain, ours = [], []
        for _ in range(args.repeats):
            plain.append(plain_loop(method, images, args.steps, args.batch_size, mlp, device))
            ours.append(harness(method, args.steps, args.batch_size, mlp, args.device, args.data_root,
                                args.log_every, args.checkpoint_every))
        p, h = statistics.median(plain), statistics.median(ours)
        print(f"{method:<8} {p:>14.1f} {h:>16.1f} {h / p:>14.3f}")


if __name__ == "__main__":
    main()
