#!/usr/bin/env bash
# Everything GPU-side on a bare GPU machine with no network: install, CUDA tests, benchmarks, one figures file.
#
# The machine has torch, torchvision, numpy, pandas, rich and matplotlib; what else it needs travels with the
# working tree in .device/ (ignored by git), prepared on a machine with network:
#   .device/wheels/   pip download --no-deps -d .device/wheels torch-fidelity scipy tqdm pytest pluggy iniconfig
#                     (for the GPU machine's Python: add --python-version X.Y --only-binary=:all: if it differs)
#   .device/data/mnist/*.gz                          the four MNIST archives
#   .device/weights/inception-2015-12-05-pool3.pth   the FID Inception weights (over 64 MiB: carried in two
#                                                    halves, .part-a and .part-b, joined here)
# Usage: bash benchmarks/gpu.sh [OUT_DIR]      (figures in OUT_DIR/gpu-figures.txt; default $OUT or .device/out)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-.device/out}}
mkdir -p "$out"
figures="$out/gpu-figures.txt"
log() { echo "$*" | tee -a "$figures"; }

weights=.device/weights/inception-2015-12-05-pool3.pth
if [ ! -f "$weights" ] && [ -f "$weights.part-a" ] && [ -f "$weights.part-b" ]; then
  cat "$weights.part-a" "$weights.part-b" > "$weights"
fi
pip install -q --no-index --find-links .device/wheels torch-fidelity pytest 2>&1 | tail -2 || true
pip install -q --no-deps -e .
export EBM_BENCH_SHARED=$PWD/.device EBM_BENCH_INCEPTION_WEIGHTS=$PWD/$weights
data=$PWD/.device/data-root
mkdir -p "$data/MNIST/raw" && cp -n .device/data/mnist/*.gz "$data/MNIST/raw/"

log "# ebm-bench GPU figures, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
log "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
log "torch $(python -c 'import torch; print(torch.__version__, torch.version.cuda)')"

log "## pytest -m cuda"
python -m pytest -q -m cuda 2>&1 | tail -15 | tee -a "$figures"

log "## bench_pack (run-steps/s; ratios against K sequential solo runs and the plain loop)"
python benchmarks/bench_pack.py --device cuda --data-root "$data" --out "$figures" > /dev/null

log "## the EBGAN paper grid (preset ebgan-paper-grid), packed, on this GPU"
start=$(date +%s)
ebm-bench sweep --preset ebgan-paper-grid --pack auto --device cuda --data-root "$data" --out "$out/grid" \
  --no-plots > "$out/grid.log" 2>&1 || true
wall=$(( $(date +%s) - start ))
log "$(tail -1 "$out/grid.log")"
log "grid wall time: ${wall} s"
