#!/usr/bin/env bash
# Is a trained D's energy an energy of the data? The trained runs of ../mnist-mlp-4ep (4 epochs, 5 seeds) and of
# ../mnist-mlp-2ep (2 epochs, 3 seeds): their checkpoints, which records leave out, come from re-running those
# leaderboards' training (finished runs are skipped, so pointing RUNS_* at their scratch folders reuses them).
# Usage: EBM_BENCH_DATA=<folder with MNIST/raw> bash make.sh       probe the trained runs, then render
#        bash make.sh --render                                     render from probe-*.csv only (seconds)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs_4ep=${RUNS_4EP:-/tmp/ebm-bench-leaderboard-mnist-mlp-4ep}
runs_2ep=${RUNS_2EP:-/tmp/ebm-bench-leaderboard-mnist-mlp-2ep}
if [[ "${1:-}" != "--render" ]]; then
    [[ -d "$runs_4ep" ]] || RUNS="$runs_4ep" bash "$here/../mnist-mlp-4ep/make.sh"
    [[ -d "$runs_2ep" ]] || RUNS="$runs_2ep" bash "$here/../mnist-mlp-2ep/make.sh"
    ebm-bench probe "$runs_4ep" --out "$here/probe-4ep.csv" --n 2000
    ebm-bench probe "$runs_2ep" --out "$here/probe-2ep.csv" --n 2000
fi
cd "$here"
ebm-bench probe --table probe-4ep.csv --summary 4ep
ebm-bench probe --table probe-2ep.csv --summary 2ep
