#!/usr/bin/env bash
# The five methods x 5 seeds on real MNIST with the paper's best EBGAN MLP (nLayerG=5, sizeG=800, nLayerD=2,
# sizeD=1024, Adam 1e-3, batch 64) for 4 epochs (3436 steps), scored every 500 steps; two runs at a time with one CPU
# thread each. Then the records (checkpoints left out), tables, the pairwise comparison, BEGAN's M_global against
# quality, plots and the page.
# Usage: EBM_BENCH_DATA=<folder with MNIST/raw> bash make.sh            train (resumes), then render
#        bash make.sh --render                                          render from records/ only (under a minute)
# RUNS=<scratch folder> chooses where the runs (with checkpoints) go; ../mnist-energy-question probes them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-/tmp/ebm-bench-leaderboard-mnist-mlp-4ep}
if [[ "${1:-}" != "--render" ]]; then
    ebm-bench sweep --methods gan,ebgan,ebgan-pt,began,magan --seeds 0,1,2,3,4 --steps 3436 --eval-every 500 \
        --workers 2 --out "$runs" --name mnist-mlp-4ep --no-plots
    rm -rf "$here/records" && mkdir -p "$here/records"
    tar -C "$runs" --exclude=checkpoint.pt --exclude=.lock --exclude='plots-*' --exclude='sweep-*.json' -cf - . \
        | tar -C "$here/records" -xf -
fi
cd "$here"
rm -rf plots report convergence
ebm-bench leaderboard records --format csv --rank-by i_prime --output table.csv
ebm-bench leaderboard records --format markdown --rank-by i_prime --output table.md
ebm-bench compare table.csv --against ebgan --format markdown > compare.md
ebm-bench convergence records --methods began --measure m_global --out convergence
ebm-bench plot records --out plots
ebm-bench report records --out report
