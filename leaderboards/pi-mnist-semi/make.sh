#!/usr/bin/env bash
# pi-mnist-semi: the EBGAN paper's Table 2 (semi-supervised permutation-invariant MNIST), ladder against EBGAN-LN,
# as declared in README.md before any run.
# Usage: EBM_BENCH_DATA=<folder with MNIST/raw> bash make.sh --pilot     the CPU pilot (3 seeds, 1,000 labels; resumes)
#        bash make.sh --render                                           tables from the committed records only
#        RUNS=<dir> bash make.sh --campaign [sweep flags, e.g. --time-limit 9m]   the GPU Table 2 (resumes)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-/tmp/ebm-bench-pi-mnist-semi}
mode=${1:---render}
shift || true

# The paper's schedule (appendix D) at scale f of its step counts: ladder 120k steps, lr decayed from 80k;
# EBGAN-LN margin 16 -> 0 over 60k, G off from 60k, 180k steps, lr decayed from 120k.
ladder_flags() {  # $1 = total ladder steps
    echo "--steps $1 -o lr_decay_from=$(($1 * 2 / 3))"
}
ebgan_ln_flags() {  # $1 = total EBGAN-LN steps
    local third=$(($1 / 3))
    echo "--steps $1 -o margin_schedule=linear:16:0:$third -o generator_off_after=$third -o lr_decay_from=$((2 * third))"
}
gpu_seeds=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14
common="--dataset pi-mnist --batch-size 100 --pack 1 --no-cuda-graphs"

case "$mode" in
--pilot)  # f = 1/20: ladder 6,000 steps, EBGAN-LN 9,000; seeds 100-102, 1,000 labels; the two models side by side
    out="$runs/pilot"
    OMP_NUM_THREADS=1 ebm-bench run --methods ladder $common --labels 1000 --seeds 100,101,102 $(ladder_flags 6000) \
        --eval-every 500 --eval-every-n 1000 --eval-n 2000 --threads 1 --quiet --out "$out" &
    OMP_NUM_THREADS=1 ebm-bench run --methods ebgan-ln $common --labels 1000 --seeds 100,101,102 \
        $(ebgan_ln_flags 9000) --eval-every 500 --eval-every-n 1000 --eval-n 2000 --threads 1 --quiet --out "$out" &
    wait
    rm -rf "$here/pilot/records" && mkdir -p "$here/pilot/records"
    tar -C "$out" --exclude=checkpoint.pt --exclude=.lock -cf - . | tar -C "$here/pilot/records" -xf -
    ;;
--campaign)  # the GPU Table 2: 15 seeds x 100, 200, 1,000 labels, the paper's step counts (f = 1)
    ebm-bench sweep --methods ladder $common --grid labels=100,200,1000 --seeds $gpu_seeds $(ladder_flags 120000) \
        --eval-every 10000 --out "$runs" --name ladder --no-plots "$@"
    ebm-bench sweep --methods ebgan-ln $common --grid labels=100,200,1000 --seeds $gpu_seeds $(ebgan_ln_flags 180000) \
        --eval-every 10000 --out "$runs" --name ebgan-ln --no-plots "$@"
    exit 0
    ;;
--render) ;;
*) echo "usage: make.sh --pilot | --render | --campaign [sweep flags]" >&2; exit 2 ;;
esac

cd "$here"
if [[ -d pilot/records ]]; then
    ebm-bench leaderboard pilot/records --format markdown --rank-by test_error \
        --metrics test_error,test_error.best,test_error.last_k_mean,fid_mnist > pilot/table.md
    ebm-bench leaderboard pilot/records --format csv --rank-by test_error --output pilot/table.csv
    rm -rf pilot/plots && ebm-bench plot pilot/records --out pilot/plots --metrics test_error > /dev/null
fi
