"""Run-steps/s of packed training (ebm_bench.pack) for K = 1 ... 64, against K sequential solo runs and a plain
PyTorch loop, on one machine in one process.

- plain: benchmarks/bench_harness.py's hand-written loop (one run), steps/s.
- solo: one ebm-bench run's training step (Trainer.step); K solo runs one after another do K x the steps in K x
  the time, so their run-steps/s is solo's steps/s at every K.
- packed K: K runs of one shape (different seeds) as one PackedTrainer step; run-steps/s = K x steps/s. On a GPU
  `packed` launches every step eagerly and `graphs` replays it as a CUDA graph (the default there).
- conc N (GPU): N processes, each training its own pack of K with graphs, at once on the one GPU: their summed
  run-steps/s (how a sweep with --workers N uses a GPU whose packs are small).
Each cell times whole steps (the device synchronised before and after), after warm-up steps (and the capture), for
about --seconds. Shapes: the paper's best EBGAN MLP, one small grid shape, and GAN on the paper's MLP.

    python benchmarks/bench_pack.py --data-root DIR [--ks 1,2,4,8,16,32,64] [--device cuda] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_harness import plain_step, PLAIN_LOSSES, Z_DIM  # noqa: E402

from ebm_bench import Budget, MLPConfig, RunConfig  # noqa: E402
from ebm_bench.datasets import default_data_root, to_unit_range  # noqa: E402
from ebm_bench.datasets.mnist import load_mnist  # noqa: E402
from ebm_bench.device import resolve_device  # noqa: E402
from ebm_bench.nets import build_networks  # noqa: E402
from ebm_bench.pack import PackedTrainer  # noqa: E402
from ebm_bench.train import Trainer, prepare  # noqa: E402

SHAPES = {
    "ebgan best (G 5x800, D 2x1024)": ("ebgan", MLPConfig()),
    "ebgan grid (G 2x400, D 2x128)": ("ebgan", MLPConfig(n_layer_g=2, size_g=400, n_layer_d=2, size_d=128)),
    "gan best (G 5x800, D 2x1024)": ("gan", MLPConfig()),
}


def _timed(step, device: torch.device, seconds: float) -> float:
    """Steps/s of `step(i)`: two warm-up steps, then as many as fill about `seconds`."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for i in range(4):  # a replayed step is captured on its third occurrence (StepGraphs.WARM_STEPS)
        step(i)
    sync()
    start = time.perf_counter()
    step(4)
    sync()
    once = time.perf_counter() - start
    steps = max(3, min(2000, int(seconds / max(once, 1e-6))))
    start = time.perf_counter()
    for i in range(steps):
        step(5 + i)
    sync()
    return steps / (time.perf_counter() - start)


def plain(method: str, mlp: MLPConfig, images: torch.Tensor, batch: int, device: torch.device,
          seconds: float) -> float:
    energy_model, energy, loss_d_fn, loss_g_fn = PLAIN_LOSSES[method]
    torch.manual_seed(0)
    g, d = (net.to(device) for net in build_networks("mlp", energy_model, tuple(images.shape[1:]), Z_DIM, mlp))
    opt_g, opt_d = torch.optim.Adam(g.parameters(), lr=1e-3), torch.optim.Adam(d.parameters(), lr=1e-3)
    order = torch.randperm(len(images), device=device)

    def step(i):
        real = to_unit_range(images[order[i * batch % (len(images) - batch):][:batch]])
        plain_step(g, d, opt_g, opt_d, real, energy, loss_d_fn, loss_g_fn)
    return _timed(step, device, seconds)


def configs(method: str, mlp: MLPConfig, k: int, args, out: str) -> list[RunConfig]:
    base = RunConfig(method=method, budget=Budget("steps", 10**6), mlp=mlp, device=args.device,
                     data_root=args.data_root, out=out, holdout=args.batch_size, batch_size=args.batch_size)
    return [dataclasses.replace(base, seed=seed) for seed in range(k)]


def solo(method: str, mlp: MLPConfig, args, device: torch.device, out: str) -> float:
    trainer = Trainer(prepare(configs(method, mlp, 1, args, out)[0]))
    return _timed(lambda i: trainer.step(i, check_contract=False), device, args.seconds)


def packed(runs, graphs: bool, args, device: torch.device) -> float:
    """Run-steps/s of one pack of these prepared runs (the runs are only read: stacking copies them)."""
    runs = [dataclasses.replace(r, config=dataclasses.replace(r.config, cuda_graphs=graphs)) for r in runs]
    trainer = PackedTrainer(runs)
    return len(runs) * _timed(lambda i: trainer.step(i, check_contract=False), device, args.seconds)


def _concurrent_worker(method, mlp, k, args, barrier, rates) -> None:
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as out:
        trainer = PackedTrainer([prepare(c) for c in configs(method, mlp, k, args, out)])
        for i in range(4):
            trainer.step(i, check_contract=False)
        torch.cuda.synchronize()
        barrier.wait()  # every process times the same stretch of wall time
        rates.put(k * _timed(lambda i: trainer.step(4 + i, check_contract=False), device, args.seconds))


def concurrent(method: str, mlp: MLPConfig, k: int, processes: int, args) -> float:
    """Summed run-steps/s of `processes` packs of k training at once, each in its own process, on one GPU."""
    context = multiprocessing.get_context("spawn")
    barrier, rates = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_concurrent_worker, args=(method, mlp, k, args, barrier, rates))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    total = sum(rates.get(timeout=600) for _ in workers)
    for worker in workers:
        worker.join()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", default="1,2,4,8,16,32,64")
    parser.add_argument("--shapes", default=",".join(str(i) for i in range(len(SHAPES))),
                        help="indices into the shape list (default: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per cell (about)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-root", default=str(default_data_root()))
    parser.add_argument("--concurrent", default="2,4", help="GPU: processes sharing it, one pack each ('' for none)")
    parser.add_argument("--concurrent-ks", default="1,2,8", help="GPU: the K rows that get the concurrent columns")
    parser.add_argument("--out", help="also append the table to this file")
    args = parser.parse_args()
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    images = load_mnist(args.data_root, "train", 32).images.to(device)
    ks = [int(k) for k in args.ks.split(",")]
    processes = [int(n) for n in args.concurrent.split(",") if n] if gpu else []
    concurrent_ks = {int(k) for k in args.concurrent_ks.split(",") if k}
    header = f"{'shape':<32} {'K':>3} {'plain':>8} {'solo':>8} {'packed':>9} {'vs K solo':>10} {'vs plain':>9}"
    if gpu:
        header += f" {'graphs':>9} {'vs K solo':>10} {'vs K=1':>7}" + "".join(f" {f'conc {n}':>9}" for n in processes)
    lines = [f"device {device} ({torch.cuda.get_device_name(device) if gpu else 'cpu'}), torch "
             f"{torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch_size}; run-steps/s"
             + ("; packed: eager launches, graphs: CUDA graphs (vs K=1: against graphs at K=1), conc N: N "
                "processes with a pack of K each (graphs), summed" if gpu else ""), header]
    print(*lines, sep="\n", flush=True)
    names = list(SHAPES)
    with tempfile.TemporaryDirectory() as out:
        for index in (int(i) for i in args.shapes.split(",")):
            name = names[index]
            method, mlp = SHAPES[name]
            plain_rate = plain(method, mlp, images, args.batch_size, device, args.seconds)
            solo_rate = solo(method, mlp, args, device, out)
            graphs_k1 = None
            for k in ks:
                runs = [prepare(c) for c in configs(method, mlp, k, args, out)]
                rate = packed(runs, False, args, device)
                line = (f"{name:<32} {k:>3} {plain_rate:>8.1f} {solo_rate:>8.1f} {rate:>9.1f} "
                        f"{rate / solo_rate:>10.2f} {rate / plain_rate:>9.2f}")
                if gpu:
                    graphs_rate = packed(runs, True, args, device)
                    graphs_k1 = graphs_k1 or graphs_rate / k
                    line += f" {graphs_rate:>9.1f} {graphs_rate / solo_rate:>10.2f} {graphs_rate / graphs_k1:>7.1f}"
                    for n in processes:
                        line += f" {concurrent(method, mlp, k, n, args):>9.1f}" if k in concurrent_ks else f" {'':>9}"
                del runs
                print(line, flush=True)
                lines.append(line)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
