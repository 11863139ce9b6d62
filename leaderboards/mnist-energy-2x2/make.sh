#!/usr/bin/env bash
# The 2 x 2 of D against loss on MNIST plus the real-data control (README.md, declared before the runs): 25 runs at
# the 4-epoch budget, probed on 2,000 test digits, then the declared analysis.
# Usage: EBM_BENCH_DATA=<folder with MNIST/raw> bash make.sh     train (resumes), probe, render
#        bash make.sh --render                                   render from probe.csv and records/ only
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-/tmp/ebm-bench-mnist-energy-2x2}
seeds=20,21,22,23,24
if [[ "${1:-}" != "--render" ]]; then
    OMP_NUM_THREADS=1 ebm-bench sweep --methods gan,ebgan,ae-logistic,clf-hinge --seeds $seeds --steps 3436 \
        --threads 1 --workers 2 --out "$runs" --name mnist-energy-2x2 --no-plots
    # the control has no generator to score: --eval-n 0
    OMP_NUM_THREADS=1 ebm-bench run --methods ae-real --seeds $seeds --steps 3436 --threads 1 --eval-n 0 \
        --out "$runs"
    OMP_NUM_THREADS=2 ebm-bench probe "$runs" --out "$here/probe.csv" --n 2000
    rm -rf "$here/records" && mkdir -p "$here/records"
    tar -C "$runs" --exclude=checkpoint.pt --exclude=.lock --exclude='.cost-*' --exclude='plots-*' -cf - . \
        | tar -C "$here/records" -xf -
fi
cd "$here"
ebm-bench probe --table probe.csv --summary summary
python analyse.py probe.csv > analysis.md
