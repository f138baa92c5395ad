// The Hopper prefill GEMM (matmul_wgmma.cu): y[M, N] = x16[M, Kp] · W16[N, Kp]ᵀ (+ residual), x16 and
// W16 16-bit (bf16 or f16) rows of Kp elements (a multiple of 8, 16-byte aligned rows), f32 out.
// matmul.cu converts x (and repacks unaligned W) exactly as for its mma.sync path, then calls this.
#pragma once

#include <string>

#include "kernels.h"

namespace paralon {
namespace PARALON_CUDA_NS {

struct WgmmaGemmArgs {
  const void* x16;
  const void* w16;
  bool bf16;               // element type of x16 and w16: bf16, else f16
  const float* residual;   // nullable; may alias y
  float* y;
  int64_t M, N, Kp;
};

// Runs the wgmma + TMA kernel (throws OpError when the device cannot: shared memory, tensor maps).
void launch_wgmma_gemm(const WgmmaGemmArgs& g, LaunchContext& ctx);

// Whether this device and build can run the kernel: the simulator always; under nvcc an sm_90a build
// on compute capability 9.x (the forced variant is refused elsewhere).
bool wgmma_gemm_available(const LaunchContext& ctx);

// Automatic choice for a dense bf16/f16 matmul of this shape: a compute-capability-9 device, a build
// with sm_90a, at least one 128 × 128 tile per SM (below that the mma.sync path's split-K fills the
// GPU better), and the once-per-process first-contact check passed (see wgmma_first_contact_check).
// PARALON_WGMMA=0 in the environment turns the path off.
bool wgmma_gemm_selected(int64_t M, int64_t N, LaunchContext& ctx);

// Runs the kernel on a small awkward shape (M = 200, N = 264, K = 136: partial M, N and K tiles) with
// random bf16 data and compares with a float64 host reference. Empty when it matches, else what
// differed. Synchronises ctx.stream; not while capturing.
std::string wgmma_first_contact_check(LaunchContext& ctx);

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
