#!/usr/bin/env bash
# The budget pilot for Table 1's grid (README.md, declared before the runs): 32 EBGAN + 36 GAN configurations x
# seeds 100-102, 20 epochs, scored every 500 steps. A GPU experiment: run it in windows. experiment.toml declares
# the runs and the budget rule once; `ebm-bench experiment run` trains them, `ebm-bench experiment render` applies
# the rule.
# Usage: bash make.sh --campaign [FLAGS...]   the pilot's runs into $RUNS with FLAGS (benchmarks/gpu.sh campaign
#                                             passes --time-limit @DEADLINE --device D --data-root R --no-plots)
#        bash make.sh --render                 render from records/ only
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-/tmp/ebm-bench-mnist-budget-pilot}
if [[ "${1:-}" == "--campaign" ]]; then
    exec ebm-bench experiment run "$here/experiment.toml" --out "$runs" "${@:2}"
fi
cd "$here"
[[ -d records ]] || { echo "no records yet: run GPU windows first (README.md)"; exit 0; }
ebm-bench leaderboard records --format markdown --rank-by fid_mnist.best --output table.md
ebm-bench plot records --out plots
# the budget rule on the pilot's records: analysis.md (each framework's plateau start, and which set the budget)
ebm-bench experiment render experiment.toml \
    || echo "the budget is picked once every pilot run has ended (the line above says what is missing)"
