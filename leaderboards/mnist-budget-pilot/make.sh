#!/usr/bin/env bash
# The budget pilot for Table 1's grid (README.md, declared before the runs): 32 EBGAN + 36 GAN configurations x
# seeds 100-102, 20 epochs, scored every 500 steps. A GPU experiment: run it in windows.
# Usage: bash make.sh --campaign [FLAGS...]   the sweeps into $RUNS with FLAGS (benchmarks/gpu.sh campaign passes
#                                             --time-limit @DEADLINE --device D --data-root R --no-plots)
#        bash make.sh --render                 render from records/ only
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-/tmp/ebm-bench-mnist-budget-pilot}
common=(--seeds 100,101,102 --steps 18750 --eval-every 500 --out "$runs")
if [[ "${1:-}" == "--campaign" ]]; then
    extra=("${@:2}")
    ebm-bench sweep --preset ebgan-paper-grid --sample 32 --sample-seed 1 --name ebgan "${common[@]}" "${extra[@]}"
    sample_seed=10
    for optim_d in adam sgd; do
        for optim_g in adam sgd; do
            for lr in 1e-2 1e-3 1e-4; do
                sample_seed=$((sample_seed + 1))
                ebm-bench sweep --preset gan-paper-grid --grid optimizer_d=$optim_d --grid optimizer_g=$optim_g \
                    --grid lr=$lr --sample 3 --sample-seed $sample_seed --name "gan-$optim_d-$optim_g-$lr" \
                    "${common[@]}" "${extra[@]}"
            done
        done
    done
    exit 0
fi
cd "$here"
[[ -d records ]] || { echo "no records yet: run GPU windows first (README.md)"; exit 0; }
ebm-bench leaderboard records --format markdown --rank-by quality.fid_mnist.best --output table.md
ebm-bench plot records --out plots
