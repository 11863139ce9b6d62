#!/usr/bin/env bash
# Everything GPU-side on a bare GPU machine with no network: install, CUDA tests, benchmarks, one figures file.
#
# The machine has torch, torchvision, numpy, scipy, pandas, rich, matplotlib and pytest; what else it needs travels
# with the working tree in .device/ (ignored by git), prepared on a machine with network:
#   .device/wheels/      pip download --no-deps -d .device/wheels torch-fidelity
#   .device/data/mnist/  the four MNIST archives (*.gz)
#   .device/weights/inception-2015-12-05-pool3.pth   the FID Inception weights; over a 64 MiB transfer they can
#                        come as .part-a and .part-b (in .device/weights/ or /tmp/ebm-bench-weights/), joined here
# Usage: bash benchmarks/gpu.sh [OUT_DIR] [STAGES]   STAGES: comma-separated of tests, bench, grid (default all)
#   figures in OUT_DIR/gpu-figures.txt (default $OUT, else .device/out); GRID_WORKERS (default 8) processes share
#   the GPU for the grid, GRID_TIMEOUT (default 540 s) bounds it: a sweep resumes, so a cut one reports its progress.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-.device/out}}
stages=${2:-tests,bench,grid}
mkdir -p "$out"
figures="$out/gpu-figures.txt"
log() { echo "$*" | tee -a "$figures"; }

# The image's python3 is the one that holds torch; its pip and scripts come first.
export PATH="$(dirname "$(python3 -c 'import sys; print(sys.executable)')"):$PATH" PYTHONUNBUFFERED=1
weights=.device/weights/inception-2015-12-05-pool3.pth
for dir in .device/weights /tmp/ebm-bench-weights; do
  if [ ! -f "$weights" ] && [ -f "$dir/inception-2015-12-05-pool3.pth.part-a" ] \
      && [ -f "$dir/inception-2015-12-05-pool3.pth.part-b" ]; then
    mkdir -p .device/weights
    cat "$dir"/inception-2015-12-05-pool3.pth.part-[ab] > "$weights"
  fi
done
if ! python3 -c 'import ebm_bench.methods' 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps .device/wheels/*.whl
  python3 -m pip install -q --no-deps --no-build-isolation -e .  # no network: the image's setuptools builds it
fi
export EBM_BENCH_SHARED=$PWD/.device
[ -f "$weights" ] && export EBM_BENCH_INCEPTION_WEIGHTS=$PWD/$weights
data=/tmp/ebm-bench-data
mkdir -p "$data/MNIST/raw" && cp -n .device/data/mnist/*.gz "$data/MNIST/raw/"

# Several processes share a GPU well only through MPS: without it their kernels time-slice (4 processes with a pack
# of 2 each: 1.09x one process; with MPS 2.3x, 8 processes 3.4x, H100 2026-11-22). Started here when the driver has it.
if command -v nvidia-cuda-mps-control > /dev/null && nvidia-cuda-mps-control -d 2>/dev/null; then
  trap 'echo quit | nvidia-cuda-mps-control' EXIT
  mps="MPS on"
else
  mps="no MPS"
fi

log "# ebm-bench GPU figures ($stages), $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
log "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
log "torch $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)'), $(nproc) CPU cores, $mps"

if [[ $stages == *tests* ]]; then
  log "## pytest -m cuda"
  [ -f "$weights" ] || log "(no Inception weights here: the FID test is skipped)"
  timeout 400 python3 -m pytest -q -m cuda -p no:cacheprovider 2>&1 | tail -15 | tee -a "$figures"
fi

if [[ $stages == *bench* ]]; then
  log "## bench_pack (run-steps/s; ratios against K sequential solo runs and the plain loop)"
  timeout 420 python3 benchmarks/bench_pack.py --device cuda --data-root "$data" --seconds "${BENCH_SECONDS:-1.5}" \
    --out "$figures" > "$out/bench.log" 2>&1 || { log "bench_pack stopped:"; tail -5 "$out/bench.log" | tee -a "$figures"; }
fi

if [[ $stages == *grid* ]]; then
  workers=${GRID_WORKERS:-8}
  log "## the EBGAN paper grid (preset ebgan-paper-grid, 2000 steps per run), packs of 2, $workers processes"
  start=$(date +%s)
  timeout "${GRID_TIMEOUT:-540}" ebm-bench sweep --preset ebgan-paper-grid --device cuda --workers "$workers" \
    --data-root "$data" --out "$out/grid" --no-plots > "$out/grid.log" 2>&1
  status=$?
  wall=$(( $(date +%s) - start ))
  finished=$(grep -lE '"status": "(finished|diverged)"' "$out"/grid/*/result.json 2>/dev/null | wc -l)
  log "$(grep -a '^sweep ' "$out/grid.log" | tail -1)"
  log "grid: $finished of 512 runs ended in ${wall} s (exit $status$([ $status = 124 ] && echo ', cut at the time limit'))"
  if [ "$finished" -gt 0 ]; then
    # by packs, not runs: the GAN grid's 6,144 runs pack 6 to a pack (3 lrs x dropout) in 1,024 packs, EBGAN's
    # 512 runs 2 to a pack in 256, and a small pack's step costs about the same at 2 or 6 runs on a GPU
    log "projection at this rate: 512 runs in $(( wall * 512 / finished )) s; the 6,656-run grid (1,280 packs of" \
        "2 or 6) in about $(( wall * 512 / finished * 1280 / 256 / 60 )) min"
  fi
fi
