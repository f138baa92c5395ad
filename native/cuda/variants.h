// Forced kernel variants, for the variant harness (bench/dev/variants.ts) only: each field left at
// kAuto lets the launcher choose as usual; a set field makes it take that variant, or throw an
// OpError naming the op when the variant cannot serve the call. Process-wide (both CUDA backends and
// the simulator read it); set through the addon's setKernelVariants.
#pragma once

#include <atomic>

namespace paralon {

struct KernelVariants {
  static constexpr int kAuto = -1;
  enum MatmulPath { kGemv = 0, kMma = 1, kSimt = 2, kWgmma = 3 };  // kWgmma: matmul_wgmma.cu
  std::atomic<int> matmul_path{kAuto};      // MatmulPath
  std::atomic<int> matmul_tile_m{kAuto};    // mma path: BM = 64 or 128
  std::atomic<int> matmul_splits{kAuto};    // mma path: K splits (1 .. k-tiles)
  std::atomic<int> gemv_k_slices{kAuto};    // GEMV: warps splitting K per row group (1 or 4)
  std::atomic<int> decode_splits{kAuto};    // decode attention: KV splits (1 .. 64-key tiles)
  std::atomic<int> decode_fused_merge{kAuto};  // decode attention with splits: 1 merge in-kernel, 0 merge_kernel
};

// One instance in the addon (an inline function's static has a single definition across files).
inline KernelVariants& kernel_variants() {
  static KernelVariants v;
  return v;
}

}  // namespace paralon
