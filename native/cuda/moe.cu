#include "kernels.h"
#include "quant.cuh"

// Mixture-of-experts ops: routing, the expert-grouped matmul, the experts' weighted sum.
//
// moe_route — one warp per token (4 per CTA). Pick j is the best expert ranking after pick j−1 in
// the total order (larger logit, then lower index), so no "chosen" marks are kept: each lane scans
// its experts e = lane, lane + 32, ... and a warp argmax under that order picks. The softmax
// denominator is a warp sum of exp(l − max). Traffic: T·E·4 bytes read k + 1 times (L1-resident).
//
// moe_matmul — grid (⌈N / kRows⌉, E): CTA (bx, e) owns rows [bx·kRows, +kRows) of expert e's
// matrix. It scans ids for the slots that chose e, compacting them into a shared list (kMaxSlots,
// flushed when full), so an expert nobody chose exits after the scan and never reads its weights.
// For the listed slots, warp w takes rows n = n0 + w, n0 + w + 4, ...: per group of kGroup slots the
// lanes stride over K reading the weight row (coalesced) and the slots' x rows, accumulate kGroup
// dot products, and reduce them with shuffles; lane 0 writes y. The weight row is re-read per group
// of kGroup slots (from L1/L2); from DRAM each chosen expert's rows are read about once per call.
// Quantized experts (Q8_0/Q4_K/Q5_K/Q6_K, blocks read in place): the lanes stride over the row's
// 16-value groups instead of its elements, decoding each group with quant.cuh's decoder (the dense
// GEMV's) and dotting it with the kGroup slots' x values.
// Slots with an id outside [0, E) are zeroed by the e = 0 CTAs. Each y element has one writer.
// Traffic: the chosen experts' matrices + T·k·(K + N)·4 bytes.
//
// moe_combine — grid-stride over T·N outputs; each thread sums its k slots in slot order (plus the
// residual). Traffic: T·N·(k + 2)·4 bytes.

#include <algorithm>

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kRows = 32;        // weight rows per moe_matmul CTA (8 per warp)
constexpr int kMaxSlots = 256;   // slots listed per flush
constexpr int kGroup = 8;        // slots per pass over a weight row

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }

// a ranks before b: larger logit, then lower index. An index of -1 ranks after everything.
__device__ __forceinline__ bool ranks_before(float la, int a, float lb, int b) {
  if (b < 0) return a >= 0;
  if (a < 0) return false;
  return la > lb || (la == lb && a < b);
}

__global__ void moe_route_kernel(const float* logits, int32_t* ids, float* weights, int64_t num_tokens,
                                 int num_experts, int top_k, bool renormalize) {
  const int lane = threadIdx.x % 32;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (t >= num_tokens) return;  // whole warps leave together: no CTA-wide barrier follows
  const float* l = logits + t * num_experts;
  int prev = -1;
  float prev_l = 0.0f, max_l = 0.0f, chosen = 0.0f;
  for (int j = 0; j < top_k; ++j) {
    int best = -1;
    float best_l = 0.0f;
    for (int e = lane; e < num_experts; e += 32) {
      const float v = l[e];
      const bool after_prev = prev < 0 || v < prev_l || (v == prev_l && e > prev);
      if (after_prev && ranks_before(v, e, best_l, best)) {
        best = e;
        best_l = v;
      }
    }
    for (int off = 16; off > 0; off >>= 1) {
      const int other = __shfl_xor_sync(0xffffffffu, best, off);
      const float other_l = __shfl_xor_sync(0xffffffffu, best_l, off);
      if (ranks_before(other_l, other, best_l, best)) {
        best = other;
        best_l = other_l;
      }
    }
    if (j == 0) max_l = best_l;
    prev = best;
    prev_l = best_l;
    if (lane == 0) ids[t * top_k + j] = best;  // -1 only when every remaining logit is NaN
    if (best >= 0) chosen += expf(best_l - max_l);
  }
  float sum = 0.0f;
  for (int e = lane; e < num_experts; e += 32) sum += expf(l[e] - max_l);
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  const float denom = renormalize ? chosen : sum;
  __syncwarp();  // the ids of this token are written before lane j reads them back
  for (int j = lane; j < top_k; j += 32) {
    const int id = ids[t * top_k + j];
    weights[t * top_k + j] = id >= 0 ? expf(l[id] - max_l) / denom : 0.0f;
  }
}

// y rows of the listed slots for this CTA's weight rows [n0, n1) of expert matrix w_e.
template <typename W>
__device__ void moe_rows(const float* x, bool x_per_slot, int top_k, const W* w_e, float* y, int64_t N, int64_t K,
                         int64_t n0, int64_t n1, const int32_t* list, int count) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t n = n0 + warp; n < n1; n += kWarps) {
    const W* row = w_e + n * K;
    for (int g = 0; g < count; g += kGroup) {
      const int m = min(kGroup, count - g);
      const float* xs[kGroup];
#pragma unroll
      for (int i = 0; i < kGroup; ++i) {
        const int64_t s = list[g + min(i, m - 1)];
        xs[i] = x + (x_per_slot ? s : s / top_k) * K;
      }
      float acc[kGroup];
#pragma unroll
      for (int i = 0; i < kGroup; ++i) acc[i] = 0.0f;
      for (int64_t k = lane; k < K; k += 32) {
        const float wv = to_f32(row[k]);
#pragma unroll
        for (int i = 0; i < kGroup; ++i) acc[i] += xs[i][k] * wv;
      }
#pragma unroll
      for (int i = 0; i < kGroup; ++i)
        for (int off = 16; off > 0; off >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
      if (lane == 0)
        for (int i = 0; i < m; ++i) y[static_cast<int64_t>(list[g + i]) * N + n] = acc[i];
    }
  }
}

// moe_rows for an expert matrix of ggml blocks (format F): lane l decodes 16-value groups l, l + 32, …
template <class F, bool kAligned16>
__device__ void moe_rows_quant(const float* x, bool x_per_slot, int top_k, const typename F::Block* w_e, float* y,
                               int64_t N, int64_t K, int64_t n0, int64_t n1, const int32_t* list, int count) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t blocks = K / F::kValues, groups = blocks * F::kGroups;
  for (int64_t n = n0 + warp; n < n1; n += kWarps) {
    const typename F::Block* row = w_e + n * blocks;
    for (int g = 0; g < count; g += kGroup) {
      const int m = min(kGroup, count - g);
      const float* xs[kGroup];
#pragma unroll
      for (int i = 0; i < kGroup; ++i) {
        const int64_t s = list[g + min(i, m - 1)];
        xs[i] = x + (x_per_slot ? s : s / top_k) * K;
      }
      float acc[kGroup];
#pragma unroll
      for (int i = 0; i < kGroup; ++i) acc[i] = 0.0f;
      for (int64_t gi = lane; gi < groups; gi += 32) {
        const int64_t b = gi / F::kGroups;
        const int q = static_cast<int>(gi % F::kGroups);
        float v[kQuantGroup];
        F::template decode<kAligned16>(row + b, q, v);
        const int64_t k0 = b * F::kValues + q * kQuantGroup;
#pragma unroll
        for (int i = 0; i < kGroup; ++i) {
          float s = 0.0f;
#pragma unroll
          for (int j = 0; j < kQuantGroup; ++j) s = fmaf(v[j], xs[i][k0 + j], s);
          acc[i] += s;
        }
      }
#pragma unroll
      for (int i = 0; i < kGroup; ++i)
        for (int off = 16; off > 0; off >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
      if (lane == 0)
        for (int i = 0; i < m; ++i) y[static_cast<int64_t>(list[g + i]) * N + n] = acc[i];
    }
  }
}

// How moe_matmul_kernel reads an expert matrix: its storage unit (element or block), units per row,
// and the rows of a CTA.
template <typename W>
struct FloatExperts {
  using Unit = W;
  __device__ static int64_t row_units(int64_t K) { return K; }
  __device__ static void rows(const float* x, bool x_per_slot, int top_k, const W* w_e, float* y, int64_t N, int64_t K,
                              int64_t n0, int64_t n1, const int32_t* list, int count) {
    moe_rows(x, x_per_slot, top_k, w_e, y, N, K, n0, n1, list, count);
  }
};

template <class F, bool kAligned16>
struct QuantExperts {
  using Unit = typename F::Block;
  __device__ static int64_t row_units(int64_t K) { return K / F::kValues; }
  __device__ static void rows(const float* x, bool x_per_slot, int top_k, const Unit* w_e, float* y, int64_t N,
                              int64_t K, int64_t n0, int64_t n1, const int32_t* list, int count) {
    moe_rows_quant<F, kAligned16>(x, x_per_slot, top_k, w_e, y, N, K, n0, n1, list, count);
  }
};

template <class X>
__global__ void moe_matmul_kernel(const float* x, bool x_per_slot, const typename X::Unit* w, const int32_t* ids, float* y,
                                  int64_t slots, int top_k, int num_experts, int64_t N, int64_t K) {
  __shared__ int32_t list[kMaxSlots];
  __shared__ int count;
  const int e = blockIdx.y;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kRows, n1 = min(N, n0 + kRows);
  const typename X::Unit* w_e = w + static_cast<int64_t>(e) * N * X::row_units(K);
  if (threadIdx.x == 0) count = 0;
  __syncthreads();  // count is reset before any thread appends
  for (int64_t base = 0; base < slots; base += kThreads) {
    const int64_t s = base + threadIdx.x;
    if (s < slots) {
      const int32_t id = ids[s];
      if (id == e) list[atomicAdd(&count, 1)] = static_cast<int32_t>(s);
      else if (e == 0 && (id < 0 || id >= num_experts))
        for (int64_t n = n0; n < n1; ++n) y[s * N + n] = 0.0f;
    }
    __syncthreads();  // the list holds this chunk's slots before deciding to flush
    const int listed = count;
    const bool last = base + kThreads >= slots;
    if (listed > 0 && (last || listed > kMaxSlots - kThreads)) {
      X::rows(x, x_per_slot, top_k, w_e, y, N, K, n0, n1, list, listed);
      __syncthreads();  // every warp is done with the list before it is reset
      if (threadIdx.x == 0) count = 0;
    }
    __syncthreads();  // the reset (if any) is seen before the next chunk appends
  }
}

__global__ void moe_combine_kernel(const float* y, const float* weights, const float* residual, float* out,
                                   int64_t num_tokens, int top_k, int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < num_tokens * N; i += stride) {
    const int64_t t = i / N, n = i % N;
    float sum = residual ? residual[i] : 0.0f;
    for (int j = 0; j < top_k; ++j) sum += weights[t * top_k + j] * y[(t * top_k + j) * N + n];
    out[i] = sum;
  }
}

template <class X>
void launch_matmul_typed(const MoeMatmulArgs& a, LaunchContext& ctx) {
  const dim3 grid(static_cast<unsigned>((a.N + kRows - 1) / kRows), static_cast<unsigned>(a.num_experts));
  PARALON_LAUNCH((moe_matmul_kernel<X>), grid, dim3(kThreads), 0, ctx.stream, a.x, a.x_per_slot,
                 static_cast<const typename X::Unit*>(a.w), a.ids, a.y, a.num_tokens * a.top_k, static_cast<int>(a.top_k),
                 static_cast<int>(a.num_experts), a.N, a.K);
}

// Quantized experts: 16-byte loads of the quants where the format and W's address allow them.
template <class F>
void launch_matmul_quantized(const MoeMatmulArgs& a, LaunchContext& ctx) {
  if (reinterpret_cast<uintptr_t>(a.w) % 2 != 0)
    throw OpError("moe_matmul: quantized experts must be 2-byte aligned (their blocks hold f16 fields)");
  if constexpr (F::kAligned16) {
    if (reinterpret_cast<uintptr_t>(a.w) % 16 == 0) return launch_matmul_typed<QuantExperts<F, true>>(a, ctx);
  }
  launch_matmul_typed<QuantExperts<F, false>>(a, ctx);
}

}  // namespace

void launch_moe_route(const MoeRouteArgs& a, LaunchContext& ctx) {
  if (a.num_tokens == 0) return;
  const unsigned blocks = static_cast<unsigned>((a.num_tokens + kWarps - 1) / kWarps);
  PARALON_LAUNCH(moe_route_kernel, dim3(blocks), dim3(kThreads), 0, ctx.stream, a.logits, a.ids, a.weights,
                 a.num_tokens, static_cast<int>(a.num_experts), static_cast<int>(a.top_k), a.renormalize);
  PARALON_CHECK_LAUNCH("moe_route");
}

void launch_moe_matmul(const MoeMatmulArgs& a, LaunchContext& ctx) {
  if (a.num_tokens == 0 || a.N == 0) return;
  if (a.num_experts > 65535) throw OpError("moe_matmul: at most 65,535 experts, got " + std::to_string(a.num_experts));
  switch (a.w_dtype) {
    case DType::F32: launch_matmul_typed<FloatExperts<float>>(a, ctx); break;
    case DType::BF16: launch_matmul_typed<FloatExperts<__nv_bfloat16>>(a, ctx); break;
    case DType::F16: launch_matmul_typed<FloatExperts<__half>>(a, ctx); break;
    case DType::Q8_0: launch_matmul_quantized<CudaQ8_0>(a, ctx); break;
    case DType::Q4_K: launch_matmul_quantized<CudaQ4_K>(a, ctx); break;
    case DType::Q5_K: launch_matmul_quantized<CudaQ5_K>(a, ctx); break;
    case DType::Q6_K: launch_matmul_quantized<CudaQ6_K>(a, ctx); break;
    default: throw OpError(std::string("moe_matmul: unsupported weight dtype ") + dtype_name(a.w_dtype));
  }
  PARALON_CHECK_LAUNCH("moe_matmul");
}

void launch_moe_combine(const MoeCombineArgs& a, LaunchContext& ctx) {
  const int64_t n = a.num_tokens * a.N;
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(static_cast<int64_t>(ctx.sm_count) * 8, (n + 255) / 256));
  PARALON_LAUNCH(moe_combine_kernel, dim3(blocks), dim3(256), 0, ctx.stream, a.y, a.weights, a.residual, a.out,
                 a.num_tokens, static_cast<int>(a.top_k), a.N);
  PARALON_CHECK_LAUNCH("moe_combine");
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
