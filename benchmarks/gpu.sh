#!/usr/bin/env bash
# Everything GPU-side on a bare GPU machine with no network: install, CUDA tests, benchmarks, one figures file; and
# the next window of a committed experiment (campaign).
#
# The machine has torch, torchvision, numpy, scipy, pandas, rich, matplotlib and pytest; what else it needs travels
# with the working tree in .device/ (ignored by git), prepared on a machine with network:
#   .device/wheels/      pip download --no-deps -d .device/wheels torch-fidelity
#   .device/data/mnist/  the four MNIST archives (*.gz)
#   .device/weights/inception-2015-12-05-pool3.pth   the FID Inception weights; over a 64 MiB transfer they can
#                        come as .part-a and .part-b (in .device/weights/ or /tmp/ebm-bench-weights/), joined here
#
# Usage: bash benchmarks/gpu.sh [OUT_DIR] [STAGES]   STAGES: comma-separated of tests, bench, benchgrid, grid
#   (default tests,bench,grid; benchgrid: benchmarks/bench_grid.py at float32 and tf32, about 5 minutes)
#   figures in OUT_DIR/gpu-figures.txt (default $OUT, else .device/out); GRID_WORKERS (default 8) processes share
#   the GPU for the grid, GRID_TIMEOUT (default 540 s) bounds it: a sweep resumes, so a cut one reports its progress.
#
# Usage: bash benchmarks/gpu.sh campaign NAME [--time-limit 7m] [--device cuda] [--out DIR]
#   The next window of the committed experiment leaderboards/NAME (NAME may also be a path to an experiment folder):
#   1. installs the project from this working tree (pip install --no-deps -e ., no network);
#   2. starts a work folder from the experiment's committed records (leaderboards/NAME/records: their runs are
#      skipped) and its kept shape timings (leaderboards/NAME/campaign/.cost-<device>.json: not timed again), and
#      runs `RUNS=<work> bash leaderboards/NAME/make.sh --campaign --time-limit @<deadline> --device D
#      --data-root <data> --no-plots`: the experiment's sweeps, each given those flags, so that every sweep of the
#      window shares one deadline (a make.sh declares its sweeps for this with a --campaign mode: run them into
#      $RUNS with the extra flags it is given, "${@:2}", and nothing else; they set no --device or --data-root);
#   3. writes to --out (default $OUT): records-<k>-of-<n>.tar.gz, the records of the runs this window ended
#      (`ebm-bench records export --max-file 15M --max-files 7`), and campaign-NAME.tar.gz (one file slot): this
#      window's log, figures and sweep summaries under window-<UTC time>/, with the device's shape timings
#      (.cost-<device>.json) beside them. The figures are printed last too.
#   The time limit counts from this script's start, install included; the sweeps start no pack predicted to end
#   after it, and a pack overrunning it by more than a minute is stopped (its runs stay resumable on this machine
#   only: checkpoints do not travel). Training ends CAMPAIGN_RESERVE_S (default 45 s) before CAMPAIGN_COMMAND_S
#   (default 600 s, a device command's limit) at the latest, leaving time for the export.
#   On the device machine (carry .device; it gives back at most 8 files of 16 MiB):
#       bash benchmarks/gpu.sh campaign mnist-budget-pilot --time-limit 7m
#   Then, here, importing and committing is one step ($files_at: where the run's files landed):
#       ebm-bench records import $files_at/records-*.tar.gz --into leaderboards/NAME/records \
#         && mkdir -p leaderboards/NAME/campaign \
#         && tar -xzf $files_at/campaign-NAME.tar.gz -C leaderboards/NAME/campaign \
#         && bash leaderboards/NAME/make.sh --render && git add leaderboards/NAME && git commit -m "NAME: a GPU window"
#   Without a GPU, the same campaign runs on the CPU as a dry run of the whole path (tiny experiments only):
#       EBM_BENCH_DATA=<folder with MNIST/raw> bash benchmarks/gpu.sh campaign path/to/experiment --device cpu \
#         --time-limit 20s --out /tmp/campaign-out
set -uo pipefail
cd "$(dirname "$0")/.."

# The image's python3 is the one that holds torch; its pip and scripts come first.
export PATH="$(dirname "$(python3 -c 'import sys; print(sys.executable)')"):$PATH" PYTHONUNBUFFERED=1
weights=.device/weights/inception-2015-12-05-pool3.pth
data=${EBM_BENCH_DATA:-/tmp/ebm-bench-data}

setup() {  # install what is missing, join the weights, put MNIST where the runs read it
  for dir in .device/weights /tmp/ebm-bench-weights; do
    if [ ! -f "$weights" ] && [ -f "$dir/inception-2015-12-05-pool3.pth.part-a" ] \
        && [ -f "$dir/inception-2015-12-05-pool3.pth.part-b" ]; then
      mkdir -p .device/weights
      cat "$dir"/inception-2015-12-05-pool3.pth.part-[ab] > "$weights"
    fi
  done
  if ! python3 -c 'import ebm_bench.methods' 2>/dev/null; then
    if compgen -G '.device/wheels/*.whl' > /dev/null; then
      python3 -m pip install -q --no-index --no-deps .device/wheels/*.whl
    fi
    python3 -m pip install -q --no-deps --no-build-isolation -e .  # no network: the image's setuptools builds it
  fi
  export EBM_BENCH_SHARED=$PWD/.device
  [ -f "$weights" ] && export EBM_BENCH_INCEPTION_WEIGHTS=$PWD/$weights
  if compgen -G '.device/data/mnist/*.gz' > /dev/null; then
    mkdir -p "$data/MNIST/raw" && cp -n .device/data/mnist/*.gz "$data/MNIST/raw/"
  fi
}

start_mps() {
  # Several processes share a GPU well only through MPS: without it their kernels time-slice (4 processes with a
  # pack of 2 each: 1.09x one process; with MPS 2.3x, 8 processes 3.4x, H100 2026-11-22). Started when the driver
  # has it.
  if command -v nvidia-cuda-mps-control > /dev/null && nvidia-cuda-mps-control -d 2>/dev/null; then
    trap 'echo quit | nvidia-cuda-mps-control' EXIT
    mps="MPS on"
  else
    mps="no MPS"
  fi
}

seconds_of() {  # 9m -> 540, 90s / 90 -> 90, 1h -> 3600; nothing for anything else
  if [[ $1 =~ ^([0-9]+)(s|m|h)?$ ]]; then
    case ${BASH_REMATCH[2]} in m) echo $((BASH_REMATCH[1] * 60));; h) echo $((BASH_REMATCH[1] * 3600));;
      *) echo "${BASH_REMATCH[1]}";; esac
  fi
}

campaign() {
  local began name limit=7m device=cuda out=${OUT:-.device/out}
  began=$(date +%s)
  name=${1:-}
  if [ -z "$name" ]; then
    echo "error: campaign needs the experiment's name: bash benchmarks/gpu.sh campaign NAME [--time-limit 7m]" \
      "[--device cuda] [--out DIR]" >&2
    return 2
  fi
  shift
  while (($#)); do
    case $1 in
      --time-limit|--device|--out)
        [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; return 2; }
        case $1 in --time-limit) limit=$2;; --device) device=$2;; --out) out=$2;; esac
        shift 2;;
      *) echo "error: unknown campaign option $1; use --time-limit 7m, --device cuda or --out DIR" >&2; return 2;;
    esac
  done
  local exp=$name
  [[ $name == */* ]] || exp=leaderboards/$name
  name=$(basename "$exp")
  local limit_s
  limit_s=$(seconds_of "$limit")
  if [ -z "$limit_s" ] || [ "$limit_s" -le 0 ]; then
    echo "error: --time-limit $limit is not a duration; give whole seconds, minutes or hours, e.g. 7m, 420s, 1h" >&2
    return 2
  fi
  if [ ! -f "$exp/make.sh" ]; then
    echo "error: $exp/make.sh not found; name a committed experiment (ls leaderboards) or its folder" >&2; return 2
  fi
  if ! grep -q -- '--campaign' "$exp/make.sh"; then
    echo "error: $exp/make.sh has no --campaign mode; add one that runs its sweeps into \$RUNS with the flags it is" \
      "given (see the top of benchmarks/gpu.sh)" >&2
    return 2
  fi
  local command_s=${CAMPAIGN_COMMAND_S:-600} reserve_s=${CAMPAIGN_RESERVE_S:-45}
  local deadline=$((began + limit_s)) hard=$((began + command_s - reserve_s))
  [ $((deadline + 60)) -lt "$hard" ] && hard=$((deadline + 60))
  if [ "$deadline" -gt $((hard - 15)) ]; then
    deadline=$((hard - 15))
    echo "note: --time-limit $limit leaves too little of a ${command_s} s command for the export: training ends" \
      "$((deadline - began)) s after the start" >&2
  fi
  mkdir -p "$out" || return 2
  local stamp work exported logs window
  stamp=$(date -u +%Y-%m-%dT%H%MZ)
  work=${CAMPAIGN_WORK:-/tmp/ebm-bench-campaign}/$name
  exported=$work-new
  logs=$work-logs
  window=$logs/window-$stamp
  rm -rf "$work" "$exported" "$logs" && mkdir -p "$work" "$exported" "$window"
  setup
  [ "$device" = cpu ] && mps="no GPU" || start_mps
  local seeded=0
  if [ -d "$exp/records" ]; then  # finished runs are skipped; the others start again (no checkpoint travels)
    cp -a "$exp/records/." "$work/"
    seeded=$(find "$work" -mindepth 2 -maxdepth 2 -name result.json | wc -l)
  fi
  find "$work" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort > "$logs/seeded"
  cp "$exp"/campaign/.cost-*.json "$work/" 2>/dev/null
  local figures=$window/campaign-figures.txt
  {
    echo "# campaign $name, window $stamp, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ "$device" = cpu ]; then echo "device: cpu ($(nproc) cores)"; else
      nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
    echo "torch $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)'), $(nproc) CPU cores, $mps"
    echo "time limit $limit from the script's start: training until +$((deadline - began)) s, stopped at" \
      "+$((hard - began)) s at the latest; $seeded runs already recorded"
  } | tee "$figures"
  local trained_from status stop
  trained_from=$(date +%s)
  stop=$((hard - trained_from))
  [ "$stop" -ge 1 ] || stop=1
  RUNS=$work timeout --kill-after=10 "$stop" bash "$exp/make.sh" --campaign --time-limit "@$deadline" \
    --device "$device" --data-root "$data" --no-plots > "$window/campaign.log" 2>&1
  status=$?
  local trained_s=$(( $(date +%s) - trained_from ))
  [ $status = 124 ] && echo "the sweeps overran the hard stop and were stopped; their ended runs are kept" \
    | tee -a "$figures"
  [ $status != 0 ] && [ $status != 124 ] && { echo "make.sh --campaign exited $status; the log's end:"; \
    tail -5 "$window/campaign.log"; } | tee -a "$figures"
  grep -a 'runs done' "$window/campaign.log" | sed 's/^/sweep: /' | tee -a "$figures"
  # The runs this window ended move to their own folder: only they are exported (the committed ones are home).
  local run
  for run in "$work"/*/; do
    run=$(basename "$run")
    [ -f "$work/$run/result.json" ] && ! grep -qxF "$run" "$logs/seeded" && mv "$work/$run" "$exported/"
  done
  cp "$work"/.cost-*.json "$logs/" 2>/dev/null
  cp "$work"/sweep-*.json "$window/" 2>/dev/null
  python3 - "$exported" "$window" "$trained_s" <<'EOF' | tee -a "$figures"
import json, sys
from pathlib import Path
exported, window, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
ended = [json.loads(p.read_text()) for p in exported.glob("*/result.json")]
ended = [r for r in ended if r.get("status") in ("finished", "diverged")]
steps = sum(int(r.get("steps", 0)) for r in ended)
print(f"this window: {len(ended)} runs ended ({sum(r['status'] == 'diverged' for r in ended)} diverged), "
      f"{steps:,} run-steps in {seconds:.0f} s of sweeps: {steps / max(seconds, 1e-9):,.0f} run-steps/s")
summaries = [json.loads(s.read_text()) for s in window.glob("sweep-*.json")]
packs = [p for s in summaries for p in s.get("time_limit", {}).get("packs", [])]
if packs:
    predicted, took = sum(p["predicted_s"] for p in packs), sum(p["took_s"] for p in packs)
    worst = max(p["took_s"] / p["predicted_s"] for p in packs if p["predicted_s"] > 0) if predicted else 0
    print(f"cost model: {len(packs)} packs predicted {predicted:.0f} s, took {took:.0f} s "
          f"(took/predicted {took / max(predicted, 1e-9):.2f} in all, {worst:.2f} at worst)")
EOF
  if compgen -G "$exported/*/result.json" > /dev/null; then
    ebm-bench records export "$exported" --out "$out" --max-file 15M --max-files 7 2>&1 | tee -a "$figures"
  else
    echo "no run ended in this window: no records to export" | tee -a "$figures"
  fi
  tail -c 8000000 "$window/campaign.log" > "$window/campaign.log.tail" && mv "$window/campaign.log.tail" \
    "$window/campaign.log"
  tar -czf "$out/campaign-$name.tar.gz" -C "$logs" --exclude=seeded .
  echo "campaign $name: $(ls "$out" | tr '\n' ' ')in $out, $(( $(date +%s) - began )) s in all"
}

if [[ "${1:-}" == campaign ]]; then
  shift
  campaign "$@"
  exit $?
fi

out=${1:-${OUT:-.device/out}}
stages=${2:-tests,bench,grid}
mkdir -p "$out"
figures="$out/gpu-figures.txt"
log() { echo "$*" | tee -a "$figures"; }
setup
start_mps

log "# ebm-bench GPU figures ($stages), $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
log "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
log "torch $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)'), $(nproc) CPU cores, $mps"

if [[ ,$stages, == *,tests,* ]]; then
  log "## pytest -m cuda"
  [ -f "$weights" ] || log "(no Inception weights here: the FID test is skipped)"
  timeout 400 python3 -m pytest -q -m cuda -p no:cacheprovider 2>&1 | tail -15 | tee -a "$figures"
fi

if [[ ,$stages, == *,bench,* ]]; then
  log "## bench_pack (run-steps/s; ratios against K sequential solo runs and the plain loop)"
  timeout 420 python3 benchmarks/bench_pack.py --device cuda --data-root "$data" --seconds "${BENCH_SECONDS:-1.5}" \
    --out "$figures" > "$out/bench.log" 2>&1 || { log "bench_pack stopped:"; tail -5 "$out/bench.log" | tee -a "$figures"; }
fi

if [[ ,$stages, == *,benchgrid,* ]]; then
  log "## bench_grid (Table 1's mix: 16 stratified shapes x EBGAN and GAN, packs of 16; float32, then tf32)"
  for precision in float32 tf32; do
    timeout 200 python3 benchmarks/bench_grid.py --device cuda --data-root "$data" --matmul "$precision" --k 16 \
      --seconds "${BENCH_SECONDS:-1.0}" --out "$figures" > "$out/bench-grid-$precision.log" 2>&1 \
      || { log "bench_grid ($precision) stopped:"; tail -5 "$out/bench-grid-$precision.log" | tee -a "$figures"; }
  done
fi

if [[ ,$stages, == *,grid,* ]]; then
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
