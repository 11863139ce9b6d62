"""End-of-run evaluation of a pack: K runs evaluated together (one classifier pass, one reference) against the
same K runs evaluated one after another, in one process on the same machine; the median of `--repeats` each.

The networks are untrained (the cost of scoring does not depend on what G learned); every registered metric a
CPU run supplies is scored (I', MNIST-IS, classes covered, class KL, FID-MNIST, precision, recall, density,
coverage, the energy diagnostics) on `--eval-n` samples against the MNIST test set.

    python benchmarks/bench_eval.py --k 1,4,8 --eval-n 10000 --data-root DIR
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from ebm_bench import Budget, RunConfig
from ebm_bench.datasets import default_data_root
from ebm_bench.evaluate import evaluate_runs
from ebm_bench.train import prepare


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", default="1,4,8", help="runs per pack (comma-separated)")
    parser.add_argument("--eval-n", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    root = args.data_root or str(default_data_root())
    print("| K | eval_n | one at a time (s) | together (s) | ratio |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as out:
        for k in (int(x) for x in args.k.split(",")):
            runs = [prepare(RunConfig(method="ebgan", seed=seed, budget=Budget("steps", 1), data_root=root, out=out,
                                      download=False, eval_n=args.eval_n)) for seed in range(k)]
            alone, together = [], []
            for _ in range(args.repeats):  # alternate, so drift in the machine's load hits both
                alone.append(timed(lambda: [evaluate_runs([run])[0] for run in runs]))
                together.append(timed(lambda: evaluate_runs(runs)))
            a, t = statistics.median(alone), statistics.median(together)
            print(f"| {k} | {args.eval_n} | {a:.1f} | {t:.1f} | {a / t:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
