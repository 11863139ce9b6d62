"""Throughput on Table 1's mix: a stratified sample of the EBGAN paper's MLP grid, packed as a sweep packs it.

The grid (ebm_bench/presets/*-paper-grid.toml) has 4 values each of nLayerG, nLayerD, sizeG and sizeD. The sample is
an orthogonal array of strength 2 over those four factors: 16 shapes in which every value of every factor appears 4
times and every pair of values of two factors once, so no factor's cost hides behind another's. Each shape trains
as one pack of K runs (seeds) per method, the way `ebm-bench sweep --pack auto` groups a grid point's runs.

Printed per shape and method: run-steps/s (K x steps/s of the pack) and useful TFLOP/s, from the matmul FLOPs of one
training step computed from the layer sizes (`step_flops`); then the projected wall time of the 512 EBGAN + 512
GAN configurations at 10 epochs, from a least-squares fit of seconds per run-step against FLOPs per run-step over
the sample (intercept: the per-step overhead no FLOP count sees). Run once per --matmul (float32, tf32).

    python benchmarks/bench_grid.py --device cuda --matmul tf32 --k 16 [--seconds 3] [--out FILE]
    python benchmarks/bench_grid.py --shapes 0,1 --k 2 --seconds 0.5      (a CPU smoke run)
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pack import _timed, configs  # noqa: E402

from ebm_bench import MLPConfig  # noqa: E402
from ebm_bench.datasets import default_data_root  # noqa: E402
from ebm_bench.device import resolve_device  # noqa: E402
from ebm_bench.pack import PackedTrainer  # noqa: E402
from ebm_bench.train import prepare  # noqa: E402

N_LAYER_G, N_LAYER_D = (2, 3, 4, 5), (2, 3, 4, 5)
SIZE_G, SIZE_D = (400, 800, 1600, 3200), (128, 256, 512, 1024)
PIXELS, Z_DIM, BATCH = 32 * 32, 100, 64  # the grid trains on zero-padded 32x32 MNIST (the dataset's default)
GRID_CONFIGS = {"ebgan": 512, "gan": 512}  # the EBGAN column, and the GAN column stratified to 512 (issue 22)
EPOCH_STEPS = 60_000 // BATCH


def orthogonal_array() -> list[tuple[int, int, int, int]]:
    """16 rows over 4 factors of 4 levels (strength 2): (i, j, i+j, i+2j) over GF(4), the levels as indices.

    GF(4) = {0, 1, a, a+1} with a^2 = a + 1, coded 0..3 (bit 0 the 1, bit 1 the a): addition is XOR, and
    multiplication by a (= 2) maps 1 -> a, a -> a+1, a+1 -> 1."""
    times_a = {0: 0, 1: 2, 2: 3, 3: 1}
    return [(i, j, i ^ j, i ^ times_a[j]) for i, j in itertools.product(range(4), repeat=2)]


def shapes() -> list[MLPConfig]:
    return [MLPConfig(n_layer_g=N_LAYER_G[a], n_layer_d=N_LAYER_D[b], size_g=SIZE_G[c], size_d=SIZE_D[d])
            for a, b, c, d in orthogonal_array()]


def layer_sizes(mlp: MLPConfig, method: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(G's linear layers, D's linear layers) as (in, out), as ebm_bench/nets/mlp.py builds them."""
    g = [(Z_DIM, mlp.size_g)] + [(mlp.size_g, mlp.size_g)] * (mlp.n_layer_g - 2) + [(mlp.size_g, PIXELS)]
    hidden = [(PIXELS, mlp.size_d)] + [(mlp.size_d, mlp.size_d)] * (mlp.n_layer_d - 2)
    d = hidden + [(mlp.size_d, PIXELS if method == "ebgan" else 1)]  # auto-encoder's decoder, or one logit
    return g, d


def step_flops(mlp: MLPConfig, method: str, batch: int = BATCH) -> float:
    """Matmul FLOPs of one training step of one run (elementwise work, BatchNorm and the optimiser left out).

    A linear layer's forward is 2 * batch * in * out; its backward twice that (input and weight gradients), or
    once when only the input gradient is needed (D's weights are frozen during G's update). With F_G, F_D one
    forward of G, D on a batch:
      D update: G forward (no grad) F_G, D forward on real and generated 2 F_D, D backward 2 x 2 F_D  = F_G + 6 F_D
      G update: G forward F_G, D forward F_D, D backward to the input F_D, G backward 2 F_G        = 3 F_G + 2 F_D
    """
    g, d = layer_sizes(mlp, method)
    forward_g = 2.0 * batch * sum(i * o for i, o in g)
    forward_d = 2.0 * batch * sum(i * o for i, o in d)
    return 4 * forward_g + 8 * forward_d


def measure(method: str, mlp: MLPConfig, args, out: str) -> float:
    """Run-steps/s of one pack of K runs of this shape."""
    runs = [prepare(c) for c in configs(method, mlp, args.k, args, out)]
    runs = [dataclasses.replace(r, config=dataclasses.replace(r.config, matmul=args.matmul)) for r in runs]
    trainer = PackedTrainer(runs)
    device = runs[0].device
    rate = args.k * _timed(lambda i: trainer.step(i, check_contract=False), device, args.seconds)
    del trainer, runs
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rate


def projected_hours(samples: list[tuple[str, MLPConfig, float]], epochs: int) -> tuple[float, float, float]:
    """(hours for the 512 + 512 grid at `epochs`, fit intercept s, fit slope s/FLOP) from seconds per run-step
    ~ a + b * FLOPs fitted over the measured shapes; every grid shape is projected, dropout on and off."""
    flops = np.array([step_flops(mlp, method) for method, mlp, _ in samples])
    seconds = np.array([1.0 / rate for _, _, rate in samples])
    b, a = np.polyfit(flops, seconds, 1) if len(samples) > 1 else (seconds[0] / flops[0], 0.0)
    total = 0.0
    for method, count in GRID_CONFIGS.items():
        every = [MLPConfig(n_layer_g=p, n_layer_d=q, size_g=r, size_d=s)
                 for p, q, r, s in itertools.product(N_LAYER_G, N_LAYER_D, SIZE_G, SIZE_D)]
        per_shape = np.array([a + b * step_flops(m, method) for m in every])  # 256 shapes x dropout on/off
        total += per_shape.mean() * count * epochs * EPOCH_STEPS
    return total / 3600, a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=16, help="runs per pack (seeds of one shape)")
    parser.add_argument("--shapes", default="", help="indices into the 16-shape sample (default: all)")
    parser.add_argument("--methods", default="ebgan,gan")
    parser.add_argument("--matmul", default="float32", choices=("float32", "tf32"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per cell (about)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-root", default=str(default_data_root()))
    parser.add_argument("--out", help="also append the table to this file")
    args = parser.parse_args()
    args.batch_size = BATCH
    device = resolve_device(args.device)
    sample = shapes()
    chosen = [int(i) for i in args.shapes.split(",")] if args.shapes else range(len(sample))
    lines = [f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), torch "
             f"{torch.__version__}, matmul {args.matmul}, K {args.k} runs per pack, batch {BATCH}",
             f"{'#':>2} {'method':<6} {'nLG':>3} {'sizeG':>5} {'nLD':>3} {'sizeD':>5} {'GFLOP/step':>10} "
             f"{'run-steps/s':>11} {'TFLOP/s':>8}"]
    print(*lines, sep="\n", flush=True)
    measured = []
    with tempfile.TemporaryDirectory() as out:
        for index in chosen:
            mlp = sample[index]
            for method in args.methods.split(","):
                rate = measure(method, mlp, args, out)
                flops = step_flops(mlp, method)
                measured.append((method, mlp, rate))
                line = (f"{index:>2} {method:<6} {mlp.n_layer_g:>3} {mlp.size_g:>5} {mlp.n_layer_d:>3} "
                        f"{mlp.size_d:>5} {flops / 1e9:>10.3f} {rate:>11.1f} {rate * flops / 1e12:>8.3f}")
                print(line, flush=True)
                lines.append(line)
    hours, a, b = projected_hours(measured, args.epochs)
    total_flops = sum(step_flops(m, meth) for meth, m, _ in measured)
    total_seconds = sum(1.0 / rate for _, _, rate in measured)
    summary = [f"mix: {total_flops / total_seconds / 1e12:.3f} useful TFLOP/s over the sample (one run-step of "
               f"each cell); fit s/run-step = {a * 1e6:.1f} us + {b * 1e12:.3f} ps/FLOP",
               f"projected: 512 EBGAN + 512 GAN configurations x {args.epochs} epochs ({EPOCH_STEPS * args.epochs} "
               f"steps each) = {hours:.2f} h on this device at K = {args.k}"]
    print(*summary, sep="\n", flush=True)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write("\n".join(lines + summary) + "\n")


if __name__ == "__main__":
    main()
