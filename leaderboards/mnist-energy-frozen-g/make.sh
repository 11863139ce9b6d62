#!/usr/bin/env bash
# D at its optimum for a frozen G on MNIST (README.md, declared before the runs): the 2 x 2 at the freeze and at the
# optimum, seeds 30-34, probed on 2,000 test digits, then the declared analysis.
# Usage: EBM_BENCH_DATA=<folder with MNIST/raw> bash make.sh     train (resumes), probe, render
#        bash make.sh --render                                   render from probe.csv and records/ only
# No --campaign mode: the probe reads the D's checkpoints, which stay on the machine that trained them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-/tmp/ebm-bench-mnist-energy-frozen-g}
seeds=30,31,32,33,34
freeze=3436
sweeps() {  # at the freeze, then at the optimum (D alone for as long again); extra flags: "$@"
    for steps in $freeze $((2 * freeze)); do
        ebm-bench sweep --methods gan,ebgan,ae-logistic,clf-hinge --seeds $seeds --steps $steps \
            -o generator_frozen_after=$freeze --eval-every $freeze --pack 1 --out "$runs" --name frozen-g-$steps \
            --no-plots "$@"
    done
}
if [[ "${1:-}" != "--render" ]]; then
    export OMP_NUM_THREADS=1
    sweeps --threads 1 --workers 2
    OMP_NUM_THREADS=2 ebm-bench probe "$runs" --out "$here/probe.csv" --n 2000
    rm -rf "$here/records" && mkdir -p "$here/records"
    tar -C "$runs" --exclude=checkpoint.pt --exclude=.lock --exclude='.cost-*' --exclude='plots-*' -cf - . \
        | tar -C "$here/records" -xf -
fi
cd "$here"
if [[ ! -f probe.csv ]]; then
    echo "mnist-energy-frozen-g: declared, not run yet (no probe.csv); EBM_BENCH_DATA=... bash make.sh trains it"
    exit 0
fi
python analyse.py probe.csv records > analysis.md
