#include "activation.cuh"
#include "kernels.h"

// swiglu: out = silu(gate) · up = gate / (1 + exp(-gate)) · up, elementwise over rows × dim.
//
// Thread mapping: the rows × dim elements are one flat range; each thread handles float4 groups in a
// grid-stride loop (scalar elements when the count is not a multiple of 4 or a pointer is not
// 16-byte aligned). The grid is capped at a few CTAs per SM so large prefills still stream at full
// bandwidth without launching millions of tiny blocks. out may alias gate or up: every element is
// read and written by the same thread.
// Memory traffic per call: rows · dim · 12 bytes (read gate, read up, write out).

#include <algorithm>

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr int kThreads = 256;

template <bool kVec4>
__global__ void swiglu_kernel(const float* gate, const float* up, float* out, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (kVec4) {
    for (int64_t v = first; v < n / 4; v += stride) {
      const float4 g = reinterpret_cast<const float4*>(gate)[v];
      const float4 u = reinterpret_cast<const float4*>(up)[v];
      reinterpret_cast<float4*>(out)[v] =
          make_float4(silu_mul(g.x, u.x), silu_mul(g.y, u.y), silu_mul(g.z, u.z), silu_mul(g.w, u.w));
    }
  } else {
    for (int64_t i = first; i < n; i += stride) out[i] = silu_mul(gate[i], up[i]);
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

void launch_swiglu(const SwigluArgs& a, LaunchContext& ctx) {
  const int64_t n = a.rows * a.dim;
  if (n == 0) return;
  const bool vec4 = n % 4 == 0 && aligned16(a.gate) && aligned16(a.up) && aligned16(a.out);
  const int64_t slots = vec4 ? n / 4 : n;
  const int64_t max_blocks = static_cast<int64_t>(ctx.sm_count) * 8;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(max_blocks, (slots + kThreads - 1) / kThreads));
  if (vec4) {
    PARALON_LAUNCH(swiglu_kernel<true>, dim3(blocks), dim3(kThreads), 0, ctx.stream, a.gate, a.up, a.out, n);
  } else {
    PARALON_LAUNCH(swiglu_kernel<false>, dim3(blocks), dim3(kThreads), 0, ctx.stream, a.gate, a.up, a.out, n);
  }
  PARALON_CHECK_LAUNCH("swiglu");
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
