#!/usr/bin/env bash
# Runs on the lent GPU machine (see bench/gpu-pack.sh): the full GPU check, then the op checks again
# under compute-sanitizer; logs and results land in $OUT.
set -uo pipefail
command -v node >/dev/null || { xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH; }
export PARALON_ADDON="$PWD/.gpu/paralon.node"
OUT="${OUT:-/tmp/gpu-out}"
mkdir -p "$OUT" bench/results
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
node .gpu/gpu-check.mjs 2>&1 | tee "$OUT/gpu-check.log"
status=${PIPESTATUS[0]}
if command -v compute-sanitizer >/dev/null || [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
  san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  "$san" --tool memcheck --error-exitcode 3 node .gpu/gpu-check.mjs --ops-only > "$OUT/sanitizer.log" 2>&1
  echo "compute-sanitizer memcheck exit code: $?" | tee -a "$OUT/gpu-check.log"
fi
cp -r bench/results "$OUT/results"
tail -n 40 "$OUT/gpu-check.log"
exit "$status"
