#!/usr/bin/env bash
# Re-creates this leaderboard: the five methods x 3 seeds on real MNIST with the paper's best EBGAN MLP
# (nLayerG=5, sizeG=800, nLayerD=2, sizeD=1024, Adam 1e-3, batch 64) for 2 epochs (1718 steps), two runs at a
# time with one CPU thread each; then the records (checkpoints left out) and the rendered tables.
# Usage: EBM_BENCH_DATA=<folder with MNIST/raw> bash make.sh   (RUNS=<scratch folder> to choose where runs go)
#        bash make.sh --render                                 render from records/ only
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-/tmp/ebm-bench-leaderboard-mnist-mlp-2ep}
if [[ "${1:-}" != "--render" ]]; then
    ebm-bench sweep --methods gan,ebgan,ebgan-pt,began,magan --seeds 0,1,2 --steps 1718 --eval-every 500 \
        --workers 2 --out "$runs" --name mnist-mlp-2ep
    rm -rf "$here/records" && mkdir -p "$here/records"
    tar -C "$runs" --exclude=checkpoint.pt --exclude=.lock --exclude='plots-*' --exclude='sweep-*.json' -cf - . \
        | tar -C "$here/records" -xf -
fi
rm -rf "$here/plots" "$here/report"
ebm-bench plot "$here/records" --out "$here/plots"
ebm-bench leaderboard "$here/records" --format csv --rank-by i_prime --output "$here/table.csv"
ebm-bench leaderboard "$here/records" --format markdown --rank-by i_prime --output "$here/table.md"  # pasted into README.md
ebm-bench report "$here/records" --out "$here/report"  # the page: table, samples, energy view, quality curves, setup
