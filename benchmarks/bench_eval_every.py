"""What `--eval-every` costs: the same run trained without scores over training and with them, in one process on
the same machine, `--repeats` times each, alternating (so drift in the machine's load hits both); the median wall
time of each and the ratio. End-of-run scoring is switched off in both (it is the same either way): the
difference is the evaluations during training alone.

    python benchmarks/bench_eval_every.py --methods ebgan,gan --steps 1000 --eval-every 500 --data-root DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import torch

from ebm_bench import Budget, RunConfig
from ebm_bench.api import train_one
from ebm_bench.datasets import default_data_root


def timed_run(config: RunConfig) -> float:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = train_one(dataclasses.replace(config, out=out))
        assert result.status == "finished", result.status
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="ebgan,gan")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--eval-every-n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a sweep's worker uses one)")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.data_root or str(default_data_root())
    print(f"| method | steps | evaluations | without (s) | with --eval-every {args.eval_every} (s) | cost |\n"
          "|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        # metrics=["energy_auroc"] keeps the end-of-run scoring to D's energies: the same small cost in both
        base = RunConfig(method=method, budget=Budget("steps", args.steps), data_root=root, download=False,
                         checkpoint_every=args.steps, metrics=["energy_auroc"], eval_every_n=args.eval_every_n)
        scored = dataclasses.replace(base, eval_every=args.eval_every)
        without, with_scores = [], []
        for _ in range(args.repeats):
            without.append(timed_run(base))
            with_scores.append(timed_run(scored))
        a, b = statistics.median(without), statistics.median(with_scores)
        evaluations = -(-args.steps // args.eval_every)  # every N steps and at the last
        print(f"| {method} | {args.steps} | {evaluations} | {a:.1f} | {b:.1f} | {100 * (b - a) / a:+.1f}% "
              f"({(b - a) / evaluations:.2f} s per evaluation) |", flush=True)


if __name__ == "__main__":
    main()
