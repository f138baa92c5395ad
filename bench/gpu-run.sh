#!/usr/bin/env bash
# Runs on the lent GPU machine (see bench/gpu-pack.sh): the full GPU check, then the op checks again
# under compute-sanitizer; logs land in $OUT, results in $OUT/results.
set -uo pipefail
command -v node >/dev/null || { xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH; }
export PARALON_ADDON="$PWD/.gpu/paralon.node"
OUT="${OUT:-/tmp/gpu-out}"
# The results (gpu-check-ops-cuda0, kernels-cuda0-qwen3-{0.6b,8b}, torch-baseline: JSON + Markdown) go
# straight to $OUT/results; copy them into bench/results/ and run `npm run bench -- report`.
export PARALON_BENCH_RESULTS="$OUT/results"
[ -f .gpu/commit ] && export PARALON_BENCH_COMMIT="$(cat .gpu/commit)"
mkdir -p "$PARALON_BENCH_RESULTS"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
node .gpu/gpu-check.mjs 2>&1 | tee "$OUT/gpu-check.log"
status=${PIPESTATUS[0]}
if command -v compute-sanitizer >/dev/null || [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
  san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  "$san" --tool memcheck --error-exitcode 3 node .gpu/gpu-check.mjs --ops-only > "$OUT/sanitizer.log" 2>&1
  echo "compute-sanitizer memcheck exit code: $?" | tee -a "$OUT/gpu-check.log"
fi
tail -n 40 "$OUT/gpu-check.log"
exit "$status"
