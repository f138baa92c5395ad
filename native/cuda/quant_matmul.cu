#include "activation.cuh"
#include "kernels.h"
#include "quant.cuh"

// y[M, N] = x[M, K] · W[N, K]ᵀ (+ residual) with W in ggml's Q8_0 / Q4_K / Q5_K / Q6_K blocks, read in
// place (quant.cuh decodes them); x, y, residual f32, accumulation f32. residual may alias y (each
// output is read and written by one lane).
//
// gemv_quant_kernel<F, MT, kAligned16> — decode and small batches (M ≤ 16; larger M takes the
// tensor-core GEMM of matmul.cu with W tiles decoded into shared memory).
//   CTA = 4 warps; each warp owns one row n of W and one chunk of MT ≤ 8 rows of x. The row is a run
//   of 16-value groups (16 per K-format block, 2 per Q8_0 block); lane l decodes groups l, l+32, …
//   (a warp covers 512 consecutive values per step, so its loads of a block's quants are contiguous),
//   multiplies the 16 values with the matching 16 x values of each of its MT rows (float4 loads, L1/
//   L2-resident) and keeps MT f32 partial sums. Butterfly shuffles reduce them; lane m writes
//   y[m0 + m, n] plus the residual. When M > MT, chunks of the same W rows run as neighbouring CTAs
//   (chunk index fastest in blockIdx.x), so W comes from HBM once and from L2 for the other chunks.
//   Traffic per call: W's bytes (N · K / block · block bytes) from HBM + M·K·4 (x, cached) + M·N·4.
//   Swiglu epilogue (w_up non-null, N output columns): the warp decodes the same group of gate row n
//   and up row n, multiplies both with each x value it loads (x read once for the pair), and lane m
//   stores silu(gate) · up — 2·MT partial sums per lane instead of MT.

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr const char* kOp = "matmul";
constexpr int kWarps = 4;
constexpr int kMaxMT = 8;

template <class F, int MT, bool kAligned16>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_quant_kernel(const float* __restrict__ x, const typename F::Block* __restrict__ w,
                      const typename F::Block* __restrict__ w_up, const float* residual, float* y, int m_first,
                      int m_chunks, int N, int K, bool x_aligned16) {
  const bool swiglu = w_up != nullptr;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int chunk = blockIdx.x % m_chunks;
  const int n = (blockIdx.x / m_chunks) * kWarps + warp;
  if (n >= N) return;  // whole warp past the end; no block-wide barrier below
  const int m0 = m_first + chunk * MT;
  const int nb = K / F::kValues;
  const typename F::Block* row[2] = {w + static_cast<int64_t>(n) * nb,
                                     swiglu ? w_up + static_cast<int64_t>(n) * nb : nullptr};
  const float* xrow = x + static_cast<int64_t>(m0) * K;

  float acc[2][MT];  // [0]: W (or gate), [1]: up
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[h][m] = 0.f;
  const int groups = nb * F::kGroups;
  for (int gi = lane; gi < groups; gi += 32) {
    const int b = gi / F::kGroups, g = gi % F::kGroups;
    float v[2][kQuantGroup];
    F::template decode<kAligned16>(row[0] + b, g, v[0]);
    if (swiglu) F::template decode<kAligned16>(row[1] + b, g, v[1]);
    const int k = b * F::kValues + g * kQuantGroup;
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float* xs = xrow + static_cast<int64_t>(m) * K + k;
      float s[2] = {0.f, 0.f};
      if (x_aligned16) {
#pragma unroll
        for (int q = 0; q < kQuantGroup / 4; ++q) {
          const float4 x4 = __ldg(reinterpret_cast<const float4*>(xs) + q);
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            if (h == 1 && !swiglu) break;
            s[h] = fmaf(v[h][4 * q], x4.x, s[h]);
            s[h] = fmaf(v[h][4 * q + 1], x4.y, s[h]);
            s[h] = fmaf(v[h][4 * q + 2], x4.z, s[h]);
            s[h] = fmaf(v[h][4 * q + 3], x4.w, s[h]);
          }
        }
      } else {
#pragma unroll
        for (int i = 0; i < kQuantGroup; ++i) {
          const float xv = __ldg(xs + i);
          s[0] = fmaf(v[0][i], xv, s[0]);
          if (swiglu) s[1] = fmaf(v[1][i], xv, s[1]);
        }
      }
      acc[0][m] += s[0];
      acc[1][m] += s[1];
    }
  }
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float s = acc[h][m];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      acc[h][m] = s;
    }
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    if (lane == m) {
      const int64_t o = static_cast<int64_t>(m0 + m) * N + n;
      y[o] = swiglu ? silu_mul(acc[0][m], acc[1][m]) : acc[0][m] + (residual != nullptr ? residual[o] : 0.f);
    }
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <class F, int MT, bool A>
void launch_chunks(const MatmulArgs& a, const void* w_up, int m_first, int m_chunks, LaunchContext& ctx) {
  const int64_t ctas = ceil_div(a.N, kWarps) * m_chunks;
  if (ctas > 0x7fffffff) throw OpError(std::string(kOp) + ": N × M / 8 exceeds the quantized GEMV's grid");
  const bool x_aligned16 = reinterpret_cast<uintptr_t>(a.x) % 16 == 0;
  PARALON_LAUNCH((gemv_quant_kernel<F, MT, A>), dim3(static_cast<unsigned>(ctas)), dim3(kWarps * 32), 0, ctx.stream, a.x,
                 static_cast<const typename F::Block*>(a.w), static_cast<const typename F::Block*>(w_up), a.residual, a.y, m_first, m_chunks, static_cast<int>(a.N),
                 static_cast<int>(a.K), x_aligned16);
  PARALON_CHECK_LAUNCH(kOp);
}

template <class F, bool A>
void launch_tail(const MatmulArgs& a, const void* w_up, int m_first, int count, LaunchContext& ctx) {
  switch (count) {
    case 1: return launch_chunks<F, 1, A>(a, w_up, m_first, 1, ctx);
    case 2: return launch_chunks<F, 2, A>(a, w_up, m_first, 1, ctx);
    case 3: return launch_chunks<F, 3, A>(a, w_up, m_first, 1, ctx);
    case 4: return launch_chunks<F, 4, A>(a, w_up, m_first, 1, ctx);
    case 5: return launch_chunks<F, 5, A>(a, w_up, m_first, 1, ctx);
    case 6: return launch_chunks<F, 6, A>(a, w_up, m_first, 1, ctx);
    case 7: return launch_chunks<F, 7, A>(a, w_up, m_first, 1, ctx);
    case 8: return launch_chunks<F, 8, A>(a, w_up, m_first, 1, ctx);
  }
}

// Full chunks of 8 x rows in one launch, then the M % 8 remaining rows with an exact MT.
template <class F, bool A>
void launch_path(const MatmulArgs& a, const void* w_up, LaunchContext& ctx) {
  const int full = static_cast<int>(a.M / kMaxMT), rest = static_cast<int>(a.M % kMaxMT);
  if (full > 0) launch_chunks<F, kMaxMT, A>(a, w_up, 0, full, ctx);
  if (rest > 0) launch_tail<F, A>(a, w_up, full * kMaxMT, rest, ctx);
}

template <class F>
void launch_format(const MatmulArgs& a, const void* w_up, LaunchContext& ctx) {
  const auto addr = [](const void* p) { return reinterpret_cast<uintptr_t>(p); };
  if (addr(a.w) % 2 != 0 || addr(w_up) % 2 != 0)
    throw OpError(std::string(kOp) + ": quantized W must be 2-byte aligned (its blocks hold f16 fields)");
  if constexpr (F::kAligned16) {
    if (addr(a.w) % 16 == 0 && addr(w_up) % 16 == 0) return launch_path<F, true>(a, w_up, ctx);
  }
  launch_path<F, false>(a, w_up, ctx);
}

}  // namespace

// Called by launch_matmul for quantized W with M ≤ 16.
void launch_matmul_quantized(const MatmulArgs& a, const void* w_up, LaunchContext& ctx) {
  if (a.M <= 0 || a.N <= 0) return;
  if (a.M > 0x7fffffff || a.N > 0x7fffffff || a.K > 0x7fffffff / kMaxMT)
    throw OpError(std::string(kOp) + ": dimensions exceed the quantized GEMV's 32-bit indexing");
  switch (a.w_dtype) {
    case DType::Q8_0: return launch_format<CudaQ8_0>(a, w_up, ctx);
    case DType::Q4_K: return launch_format<CudaQ4_K>(a, w_up, ctx);
    case DType::Q5_K: return launch_format<CudaQ5_K>(a, w_up, ctx);
    case DType::Q6_K: return launch_format<CudaQ6_K>(a, w_up, ctx);
    default: throw OpError(std::string(kOp) + ": " + dtype_name(a.w_dtype) + " is not a quantized dtype");
  }
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
