#!/usr/bin/env bash
# The EBGAN paper's Figure 2 on a CPU: a seeded random sample of 64 of the 512 EBGAN configurations of Table 1 and
# 64 GAN configurations, 16 from each optimiser pair (optimD, optimG in {adam, sgd}; learning rate and
# architecture sampled), 500 steps each (batch 64; the budget the pilot in pilot/ chose, see README), I' on 5,000
# samples; two runs at a time, one CPU thread each.
# Usage: EBM_BENCH_DATA=<folder with MNIST/raw> bash make.sh     train (resumes), then render
#        bash make.sh --render                                   render from records/ only
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-/tmp/ebm-bench-leaderboard-mnist-grid-reliability}
common=(--seeds 0 --steps 500 --eval-n 5000 --workers 2 --out "$runs" --no-plots)
if [[ "${1:-}" != "--render" ]]; then
    ebm-bench sweep --preset ebgan-paper-grid --sample 64 --name ebgan-grid "${common[@]}"
    sample_seed=0
    for optim_d in adam sgd; do
        for optim_g in adam sgd; do  # a sample seed per pair: 64 different architecture and lr points in all
            sample_seed=$((sample_seed + 1))
            ebm-bench sweep --preset gan-paper-grid --grid optimizer_d=$optim_d --grid optimizer_g=$optim_g \
                --sample 16 --sample-seed $sample_seed --name "gan-grid-$optim_d-$optim_g" "${common[@]}"
        done
    done
    rm -rf "$here/records" && mkdir -p "$here/records"
    tar -C "$runs" --exclude=checkpoint.pt --exclude=.lock --exclude='plots-*' --exclude='sweep-*.json' -cf - . \
        | tar -C "$here/records" -xf -
fi
cd "$here"
rm -rf plots report
ebm-bench reliability records --out . --thresholds 2,4,6,8 --better ebgan --worse gan
ebm-bench leaderboard records --format csv --rank-by i_prime --output table.csv
ebm-bench plot records --out plots --metrics i_prime
ebm-bench report records --out report
