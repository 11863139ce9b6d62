#!/usr/bin/env bash
# The EBGAN paper's Figure 2 on a CPU: a seeded random sample of 64 of the 512 EBGAN configurations of Table 1 and
# 64 GAN configurations, 16 from each optimiser pair (optimD, optimG in {adam, sgd}; learning rate and
# architecture sampled), 500 steps each (batch 64; the budget the pilot in pilot/ chose, see README), I' on 5,000
# samples; two runs at a time, one CPU thread each.
# Usage: EBM_BENCH_DATA=<folder with MNIST/raw> bash make.sh     train (resumes), then render
#        bash make.sh --pilot                                    the pilot that chose the budget (pilot/)
#        bash make.sh --render                                   render from records/ only
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-/tmp/ebm-bench-leaderboard-mnist-grid-reliability}
if [[ "${1:-}" == "--pilot" ]]; then  # quality over training on 6 EBGAN and 10 GAN points, past the budget
    pilot=(--seeds 0 --workers 2 --out "$runs-pilot" --no-plots)
    ebm-bench sweep --preset ebgan-paper-grid --sample 6 --steps 1718 --eval-every 200 --name pilot-ebgan "${pilot[@]}"
    ebm-bench sweep --preset gan-paper-grid --sample 10 --steps 1000 --eval-every 100 --name pilot-gan "${pilot[@]}"
    rm -rf "$here/pilot/records" && mkdir -p "$here/pilot/records"
    tar -C "$runs-pilot" --exclude=checkpoint.pt --exclude=.lock --exclude='sweep-*.json' -cf - . \
        | tar -C "$here/pilot/records" -xf -
    rm -rf "$here/pilot/plots" && ebm-bench plot "$here/pilot/records" --out "$here/pilot/plots"
    exit 0
fi
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
rm -rf plots report classes
ebm-bench reliability records --out . --thresholds 2,4,6,8 --better ebgan --worse gan
# I' is a confidence score that a G collapsed onto 2 confidently drawn digits maxes out: coverage beside it
ebm-bench reliability records --out classes --metric classes_covered --thresholds 5,8,10 --better ebgan --worse gan
ebm-bench leaderboard records --format csv --rank-by i_prime --output table.csv
ebm-bench leaderboard records --format markdown --rank-by i_prime --output table.md \
    --metrics i_prime,classes_covered,fid_mnist,precision,recall
ebm-bench plot records --out plots --metrics i_prime
ebm-bench report records --out report
