#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for one call of the device tool on a lent GPU: this machine's node
# (../shared/gpu/pack.sh), the addon built for Hopper and Ampere, and the GPU check bundled into a
# single file so the device needs no node_modules, compiler or tsx. Then, on the device:
#   run(carry: [".gpu"], command: "bash .gpu/gpu-run.sh")
set -euo pipefail
cd "$(dirname "$0")/.."
bash ../shared/gpu/pack.sh
PARALON_CUDA=1 PARALON_CUDA_ARCHS="${PARALON_CUDA_ARCHS:-90a;80}" npx cmake-js compile --out .gpu/build
cp .gpu/build/Release/paralon.node .gpu/paralon.node
npx esbuild bench/gpu-check.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile=.gpu/gpu-check.mjs --log-level=warning
cp bench/gpu-run.sh .gpu/gpu-run.sh
# The commit the results will name (the device gets no .git).
echo "$(git rev-parse --short HEAD)$([ -n "$(git status --porcelain)" ] && echo +dirty)" > .gpu/commit
rm -rf .gpu/build/CMakeFiles
du -sh .gpu
