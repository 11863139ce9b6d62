#!/usr/bin/env bash
# The energy question on 2-D data with known densities: 5 methods x 10 seeds against a generator frozen at a known Q,
# 6,000 steps each (the declared budget), then density-probe and the declared analysis (README.md).
# Usage: bash make.sh            train (resumes), probe, render
#        bash make.sh --render   render from records/ and probe.csv only
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-/tmp/ebm-bench-gaussians-energy-question}
if [[ "${1:-}" != "--render" ]]; then
    OMP_NUM_THREADS=1 ebm-bench sweep --methods gan,ebgan,ae-logistic,clf-hinge,ae-real --dataset gaussians-2d \
        --arch toy-fixed-q --z-dim 4 --n-layer-g 3 --size-g 128 --n-layer-d 2 --size-d 128 --batch-size 256 \
        --margin 1 --steps 6000 --seeds 10,11,12,13,14,15,16,17,18,19 --threads 1 --inception-n 0 \
        --out "$runs" --name frozen-q --no-plots
    OMP_NUM_THREADS=1 ebm-bench density-probe "$runs" --out "$here/probe.csv"
    rm -rf "$here/records" && mkdir -p "$here/records"
    tar -C "$runs" --exclude=checkpoint.pt --exclude=.lock --exclude='.cost-*' -cf - . | tar -C "$here/records" -xf -
fi
cd "$here"
ebm-bench density-probe --table probe.csv --summary summary
python analyse.py probe.csv > analysis.md
