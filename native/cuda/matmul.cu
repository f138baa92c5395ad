#include "activation.cuh"
#include "kernels.h"
#include "matmul_wgmma.h"
#include "variants.h"

// y[M, N] = x[M, K] · W[N, K]ᵀ (+ residual[M, N]); x, y, residual f32, W bf16 / f16 / f32 in the
// checkpoint's [out, in] layout. residual may alias y: every output element is read (residual) and
// written (y) by the same thread, so no pointer below that can alias is marked __restrict__.
//
// Kernels (dispatch and its reasons in launch_matmul at the bottom):
//
// 1. gemv_kernel<WT, MT, kVector> — decode (small M), memory-bound.
//    CTA = 4 warps; each warp owns R consecutive rows n of W (R = 2 for MT < 4, else 4) and one chunk
//    of MT ≤ 8 rows of x. Lane l streams its R W rows with 16-byte loads (8 bf16/f16 or 4 f32) at
//    vectors l, l+32, …, 8 or 4 loads of 16 B in flight per lane, reads the matching x values (f32,
//    L1/L2-resident: at most 8 × K × 4 bytes per chunk), and keeps MT × R f32 partial sums in
//    registers. Butterfly shuffles reduce the partials; lane (m·R + r) writes y[m0+m, n0+r] with the
//    residual added. All MT rows of x share one pass over W. When M > MT the chunks of the same rows
//    run as neighbouring CTAs (chunk index fastest in blockIdx.x), so W comes from HBM once and from
//    L2 for the other chunks.
//    kVector = false is the scalar path for rows that are not 16-byte aligned (K·sizeof(W) % 16 ≠ 0,
//    or offset pointers): lane l reads element k = l, l+32, … — still coalesced, 2–4 bytes a lane.
//    Traffic per call: N·K·sizeof(W) from HBM + M·K·4 (x, cached) + M·N·4 (y, + residual).
//
// 2. mma_gemm_kernel<T16, BM, BTile> — prefill (larger M), bf16/f16 tensor cores, sm_80 path.
//    x is first rounded to T16 into scratch ([M, Kp], Kp = K rounded up to 8, zero padding) by
//    convert_rows_kernel; W rows that are not 16-byte aligned are repacked the same way. Then:
//    CTA tile BM × 128 × 32 (BM = 128, or 64 when M ≤ 64 so that small batches waste fewer rows),
//    8 warps as 2 (m) × 4 (n), warp tile (BM/2) × 32, mma.m16n8k16 with f32 accumulators
//    (BM/32 × 4 MMAs per warp per k16 step). Operands go global → shared with 16-byte cp.async in a
//    3-stage ring (one barrier per k-tile), zero-filled outside M / N / Kp. Shared rows are 32
//    elements = 4 chunks of 16 B; chunk c of row r is stored at c ^ ((r >> 1) & 3), so the 8 rows an
//    ldmatrix phase reads hit 8 different 16-byte bank groups. Epilogue adds the residual and writes
//    f32 straight from the accumulators. When the tile grid is smaller than 2 CTAs per SM (batched
//    decode: N / 128 tiles), K is split over grid.z; each split writes f32 partials to scratch and
//    splitk_reduce_kernel sums them in a fixed order (deterministic) and adds the residual.
//    Traffic per call: conversion M·K·4 read + M·Kp·2 written (+ N·K·2 each way when W is
//    repacked); each CTA reads (BM + 128)·Kp·2 bytes; A and W are re-read from L2 across
//    CTAs (M tiles fastest in the grid, so CTAs sharing a W tile run together); y: M·N·4 (+residual);
//    with split-K also 2 · splits · M · N · 4 bytes of partials.
//
//    Quantized W (QuantB): the same kernel and ring; instead of cp.async of W, each of the 256 threads
//    decodes one 16-value group of the 128 × 32 W tile (quant.cuh) to f16 and stores its two 16-byte
//    chunks (swizzled as above). x is rounded to f16. Traffic: W's blocks once per M tile (L2 re-reads
//    across M tiles) instead of N·K·2.
//
// 3. simt_gemm_f32_kernel — f32 weights with larger M. CTA tile 64 × 64 × 16, 256 threads as 16 × 16,
//    each thread a 4 × 4 register block; x and W tiles are transposed into shared memory ([k][m],
//    [k][n]) so each k step is two 16-byte shared loads (one a broadcast) for 16 FMAs. The next
//    k-tile is fetched into registers while the current one is multiplied.
//    Traffic per call: each CTA reads 128·K·4 bytes (L2-served re-reads), writes its 64 × 64 tile.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "quant.cuh"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr const char* kOp = "matmul";

// ---------------------------------------------------------------------------------------------
// Element conversion: one 16-byte vector of W to floats, and scalar loads.
// ---------------------------------------------------------------------------------------------

template <typename WT>
struct WeightVec {
  static constexpr int kElems = 16 / sizeof(WT);
};

// bf16 is the top half of an f32: widening is a shift (low element) or a mask (high element).
__device__ __forceinline__ void unpack16(const uint4& v, const __nv_bfloat16*, float (&f)[8]) {
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(u[i] << 16);
    f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
  }
}

__device__ __forceinline__ void unpack16(const uint4& v, const __half*, float (&f)[8]) {
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    __half2_raw raw;
    raw.x = static_cast<unsigned short>(u[i] & 0xffffu);
    raw.y = static_cast<unsigned short>(u[i] >> 16);
    const float2 p = __half22float2(__half2(raw));
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}

__device__ __forceinline__ void unpack16(const uint4& v, const float*, float (&f)[4]) {
  f[0] = __uint_as_float(v.x);
  f[1] = __uint_as_float(v.y);
  f[2] = __uint_as_float(v.z);
  f[3] = __uint_as_float(v.w);
}

__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(float v) { return v; }

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }

// ---------------------------------------------------------------------------------------------
// 1. GEMV (decode)
// ---------------------------------------------------------------------------------------------

constexpr int kGemvWarps = 4;
// Rows of W per warp. Each x value loaded serves all of them, so x traffic from L1 is MT / R bytes per
// byte of W (x is f32, W 16-bit): R = 4 once MT ≥ 4 keeps it ≤ 2× W instead of 4× at MT = 8 —
// L1 bandwidth (128 B/clk/SM), not HBM, would otherwise bound the batched-decode case.
template <int MT>
constexpr int kGemvRows = MT >= 4 ? 4 : 2;
// 16-byte W vectors per row in flight per lane: 4 for MT ≤ 2, 2 for MT = 3, 1 for MT ≥ 4 (R = 4),
// whose x values and accumulators need the registers. That is 8 or 4 loads of 16 B per lane (all R
// rows); with ≥ 12 warps per SM
// (see the launch bounds) ≥ 24 KB of W is in flight per SM, above HBM latency × per-SM bandwidth
// (≈ 0.7 µs × 25 GB/s ≈ 18 KB on H100).
template <int MT>
constexpr int kGemvUnroll = MT <= 2 ? 4 : MT == 3 ? 2 : 1;
constexpr int kGemvMaxM = 8;  // rows of x per pass over W (the MT template parameter's maximum)

// acc[m][r] += dot(W vector r, x[m, k .. k + kElems)) for one 16-byte vector per row.
template <typename WT, int MT, int R>
__device__ __forceinline__ void gemv_fma_vec(float (&acc)[MT][R], const uint4 (&wv)[R],
                                             const float* const (&x)[MT], int k) {
  constexpr int E = WeightVec<WT>::kElems;
  float wf[R][E];
#pragma unroll
  for (int r = 0; r < R; ++r) unpack16(wv[r], static_cast<const WT*>(nullptr), wf[r]);
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    float xf[E];
#pragma unroll
    for (int q = 0; q < E / 4; ++q) {
      const float4 x4 = __ldg(reinterpret_cast<const float4*>(x[m] + k + 4 * q));
      xf[4 * q] = x4.x;
      xf[4 * q + 1] = x4.y;
      xf[4 * q + 2] = x4.z;
      xf[4 * q + 3] = x4.w;
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < E; ++i) acc[m][r] = fmaf(wf[r][i], xf[i], acc[m][r]);
  }
}

// grid.x = ceil(N / (kGemvWarps / KS · R)) · m_chunks, chunk index fastest. Rows m ≥ M of the last
// chunk (M need not be a multiple of MT) compute on row M - 1 and skip the store; rows n ≥ N of a
// partial last group read row N - 1 and skip the store.
// KS = 1: each warp owns R rows over all of K. KS = kGemvWarps: the CTA's warps split K (warp w
// takes 16-byte vectors w·32 + lane, stride KS·32) over the same R rows and add their totals through
// shared memory in warp order (deterministic): 4× the CTAs, for matrices whose row groups would
// leave SMs idle (K/V projections: N = 1024 → 128 CTAs on 132 SMs).
// Launch bounds (128, 3): caps registers at 170 so ≥ 3 CTAs fit per SM. Without a minimum ptxas
// picks a low count for some MT and spills; with 1 it hoists every x load and needs up to 208.
// Swiglu epilogue (w_up non-null): w holds the gate rows, w_up the up rows, N counts output columns
// y[M, N] = silu(x·gateᵀ) · (x·upᵀ). A warp's R rows are then gate rows n0 .. n0 + R/2 and the up
// rows of the same columns, so each x value loaded still serves R rows and lane m·R + r finds the
// gate total (m, r) and the up total (m, r + R/2) in its own registers after the butterfly.
template <typename WT, int MT, bool kVector, int KS>
__global__ void __launch_bounds__(kGemvWarps * 32, 3)
    gemv_kernel(const float* __restrict__ x, const WT* __restrict__ w, const WT* __restrict__ w_up,
                const float* residual, float* y, int m_chunks, int M, int N, int K) {
  static_assert(KS == 1 || KS == kGemvWarps, "K slices: 1 or the CTA's warps");
  constexpr int R = kGemvRows<MT>;
  const bool swiglu = w_up != nullptr;
  const int cols = swiglu ? R / 2 : R;  // output columns per warp
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int slice = warp % KS;
  const int chunk = blockIdx.x % m_chunks;
  const int group = blockIdx.x / m_chunks;
  const int m0 = chunk * MT;
  const int n0 = (group * (kGemvWarps / KS) + warp / KS) * cols;
  if (KS == 1 && n0 >= N) return;  // whole warp past the end; no block-wide barrier at KS = 1
                                    // (at KS > 1 the CTA's one row group starts below N)

  const WT* wrow[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const bool up = swiglu && r >= R / 2;
    wrow[r] = (up ? w_up : w) + static_cast<int64_t>(min(n0 + (up ? r - R / 2 : r), N - 1)) * K;
  }
  const float* xrow[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) xrow[m] = x + static_cast<int64_t>(min(m0 + m, M - 1)) * K;

  float acc[MT][R];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < R; ++r) acc[m][r] = 0.f;

  if constexpr (kVector) {
    constexpr int E = WeightVec<WT>::kElems;
    constexpr int kStride = 32 * KS;  // vectors between a lane's consecutive loads
    const int nvec = K / E;
    int v = slice * 32 + lane;
    constexpr int U = kGemvUnroll<MT>;
    // Main loop: all U × R loads issued before any FMA consumes them.
    for (; v + kStride * (U - 1) < nvec; v += kStride * U) {
      uint4 wv[U][R];
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int r = 0; r < R; ++r)
          wv[u][r] = __ldg(reinterpret_cast<const uint4*>(wrow[r] + static_cast<int64_t>(v + kStride * u) * E));
#pragma unroll
      for (int u = 0; u < U; ++u) gemv_fma_vec<WT, MT, R>(acc, wv[u], xrow, (v + kStride * u) * E);
    }
    for (; v < nvec; v += kStride) {  // fewer than kStride · U vectors left
      uint4 wv[R];
#pragma unroll
      for (int r = 0; r < R; ++r) wv[r] = __ldg(reinterpret_cast<const uint4*>(wrow[r] + static_cast<int64_t>(v) * E));
      gemv_fma_vec<WT, MT, R>(acc, wv, xrow, v * E);
    }
  } else {
    for (int k = slice * 32 + lane; k < K; k += 32 * KS) {
      float wf[R];
#pragma unroll
      for (int r = 0; r < R; ++r) wf[r] = to_f32(wrow[r][k]);
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        const float xv = xrow[m][k];
#pragma unroll
        for (int r = 0; r < R; ++r) acc[m][r] = fmaf(wf[r], xv, acc[m][r]);
      }
    }
  }

  // Butterfly: every lane ends with every total; lane m·R + r stores (m, r).
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float s = acc[m][r];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      acc[m][r] = s;
    }
  if constexpr (KS > 1) {  // the slices' totals, summed in slice order by warp 0
    __shared__ float slice_total[KS][MT][R];
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int r = 0; r < R; ++r) slice_total[slice][m][r] = acc[m][r];
    }
    __syncthreads();  // every slice's totals are in shared memory
    if (warp != 0) return;
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float t = slice_total[0][m][r];
#pragma unroll
        for (int z = 1; z < KS; ++z) t += slice_total[z][m][r];
        acc[m][r] = t;
      }
  }
  if (swiglu) {
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
      for (int r = 0; r < R / 2; ++r) {
        const int n = n0 + r;
        if (lane == m * R + r && n < N && m0 + m < M) y[static_cast<int64_t>(m0 + m) * N + n] = silu_mul(acc[m][r], acc[m][r + R / 2]);
      }
    return;
  }
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int n = n0 + r;
      if (lane == m * R + r && n < N && m0 + m < M) {
        const int64_t o = static_cast<int64_t>(m0 + m) * N + n;
        y[o] = acc[m][r] + (residual != nullptr ? residual[o] : 0.f);
      }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Tensor-core GEMM (prefill), bf16 / f16 operands, f32 accumulate
// ---------------------------------------------------------------------------------------------

constexpr int kMmaBN = 128;
constexpr int kMmaBK = 32;  // elements = 64 bytes = 4 chunks of 16 B per shared row
constexpr int kMmaStages = 3;
constexpr int kMmaWarpsM = 2;
constexpr int kMmaWarpsN = 4;
constexpr int kMmaThreads = kMmaWarpsM * kMmaWarpsN * 32;
constexpr int kConvertThreads = 256;

constexpr size_t mma_smem_bytes(int bm) {
  return static_cast<size_t>(kMmaStages) * (bm + kMmaBN) * kMmaBK * 2;
}

// dst[r, 0:Kp] = src[r, 0:K] rounded to T16, zero-padded to Kp (a multiple of 8). One thread writes one
// 16-byte chunk; grid-stride over rows · Kp / 8 chunks.
template <typename Src, typename T16>
__global__ void __launch_bounds__(kConvertThreads)
    convert_rows_kernel(const Src* __restrict__ src, T16* __restrict__ dst, int64_t rows, int64_t K, int64_t Kp) {
  const int64_t chunks_per_row = Kp / 8;
  const int64_t total = rows * chunks_per_row;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < total;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = c / chunks_per_row;
    const int64_t k0 = (c - r * chunks_per_row) * 8;
    const Src* s = src + r * K;
    alignas(16) T16 out[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = from_f32<T16>(k0 + i < K ? to_f32(s[k0 + i]) : 0.f);
    *reinterpret_cast<uint4*>(dst + r * Kp + k0) = *reinterpret_cast<const uint4*>(out);
  }
}

// Byte offset of 16-byte chunk `chunk` of shared row `row` (rows of kMmaBK elements, XOR swizzle).
__device__ __forceinline__ int mma_smem_offset(int row, int chunk) {
  return row * (kMmaBK * 2) + ((chunk ^ ((row >> 1) & 3)) << 4);
}

// Swiglu epilogue: row t of a kMmaBN-row B tile is the gate (t % 32 < 16) or up row (t % 32 ≥ 16) of
// output column n0 + (t / 32)·16 + t % 16, so warp_n's n8 fragments j and j + 2 hold the gate and the
// up of the same 16 columns, and one thread's accumulators pair them. A tile covers kMmaBN / 2 columns.
__device__ __forceinline__ int swiglu_tile_col(int t) { return (t >> 5) * 16 + (t & 15); }
__device__ __forceinline__ bool swiglu_tile_up(int t) { return (t & 16) != 0; }

// Copies rows [row0, row0 + ROWS) × k-tile kt of a [rows, Kp] T16 matrix into one shared stage;
// chunks outside the matrix are zero-filled. With g_up (Swiglu, B only) tile row t is gate or up
// row row0 + swiglu_tile_col(t) instead.
template <int ROWS, typename T16>
__device__ __forceinline__ void mma_load_tile(char* smem, const T16* __restrict__ g, const T16* __restrict__ g_up,
                                              int row0, int rows, int kt, int Kp) {
  constexpr int kChunks = ROWS * (kMmaBK / 8);
  static_assert(kChunks % kMmaThreads == 0, "tile chunks must split evenly over the CTA");
#pragma unroll
  for (int i = 0; i < kChunks / kMmaThreads; ++i) {
    const int c = threadIdx.x + i * kMmaThreads;
    const int row = c >> 2;
    const int chunk = c & 3;
    const bool swiglu = g_up != nullptr;
    const int grow = row0 + (swiglu ? swiglu_tile_col(row) : row);
    const T16* base = swiglu && swiglu_tile_up(row) ? g_up : g;
    const int gk = kt * kMmaBK + chunk * 8;
    const bool in = grow < rows && gk < Kp;
    // Out-of-range chunks still get a valid address; with pred false nothing is read from it.
    const T16* src = in ? base + static_cast<int64_t>(grow) * Kp + gk : g;
    cp_async_16(smem + mma_smem_offset(row, chunk), src, in);
  }
}

template <typename T16>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  mma_bf16_16816(c, a, b, c);
}
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  mma_f16_16816(c, a, b, c);
}

// Where the kernel's B tiles (W) come from: a T16 matrix [N, Kp] copied with cp.async, or ggml blocks
// decoded to f16 by the CTA's own threads (plain loads and shared stores; the stage they write was
// last read before the barrier at the top of the iteration, and is read after the barrier two
// iterations later, so the ring's barriers cover them as they cover cp.async).
template <typename T16>
struct DenseB {
  using Ptr = const T16*;
  __device__ __forceinline__ static void load(char* smem, Ptr b, Ptr b_up, int n0, int N, int kt, int Kp) {
    mma_load_tile<kMmaBN>(smem, b, b_up, n0, N, kt, Kp);
  }
};

// Thread t decodes 16-value group t % 2 of the k-tile (32 values) of W row n0 + t / 2 — kMmaBN rows ×
// 2 groups = one group per thread — rounds it to f16 and stores its two 16-byte chunks; rows past N
// are zeros. A k-tile never straddles blocks (32 divides every block size).
template <class F, bool kAligned16>
struct QuantB {
  using Ptr = const typename F::Block*;
  __device__ __forceinline__ static void load(char* smem, Ptr b, Ptr b_up, int n0, int N, int kt, int K) {
    static_assert(kMmaBN * (kMmaBK / kQuantGroup) == kMmaThreads, "one 16-value group per thread");
    const int row = threadIdx.x >> 1, half = threadIdx.x & 1;
    const bool swiglu = b_up != nullptr;
    const int n = n0 + (swiglu ? swiglu_tile_col(row) : row);
    if (swiglu && swiglu_tile_up(row)) b = b_up;
    const int k = kt * kMmaBK + half * kQuantGroup;
    uint32_t words[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (n < N && k < K) {
      float v[kQuantGroup];
      F::template decode<kAligned16>(b + static_cast<int64_t>(n) * (K / F::kValues) + k / F::kValues,
                                     (k % F::kValues) / kQuantGroup, v);
#pragma unroll
      for (int i = 0; i < 8; ++i)
        words[i] = static_cast<uint32_t>(__half_as_ushort(__float2half_rn(v[2 * i]))) |
                   (static_cast<uint32_t>(__half_as_ushort(__float2half_rn(v[2 * i + 1]))) << 16);
    }
    *reinterpret_cast<uint4*>(smem + mma_smem_offset(row, 2 * half)) = make_uint4(words[0], words[1], words[2], words[3]);
    *reinterpret_cast<uint4*>(smem + mma_smem_offset(row, 2 * half + 1)) = make_uint4(words[4], words[5], words[6], words[7]);
  }
};

// a: x in T16 [M, Kp]; b: W as BTile reads it (T16 [N, Kp], or ggml blocks of rows of Kp values);
// Kp % 8 == 0, 16-byte aligned.
// grid = (ceil(M / BM), ceil(N / kMmaBN), splits): M tiles fastest so CTAs sharing a W tile run
// together. Split z multiplies k-tiles [z · tiles_per_split, (z + 1) · tiles_per_split); with
// splits > 1 it writes its raw f32 partial to partial[z, M, N] and splitk_reduce_kernel finishes.
// Swiglu epilogue (b_up non-null): b holds the gate rows, b_up the up rows, N counts output columns
// (kMmaBN / 2 per tile, see swiglu_tile_col); the store is silu(gate) · up, or with splits > 1 the raw
// gate and up partials side by side, partial[z, M, 2N] (gate at n, up at N + n), for
// splitk_reduce_swiglu_kernel.
template <typename T16, int BM, class BTile>
__global__ void __launch_bounds__(kMmaThreads)
    mma_gemm_kernel(const T16* __restrict__ a, typename BTile::Ptr __restrict__ b, typename BTile::Ptr __restrict__ b_up,
                    const float* residual, float* y, float* __restrict__ partial, int M, int N, int Kp,
                    int tiles_per_split) {
  constexpr int WM = BM / kMmaWarpsM;     // warp tile rows (m)
  constexpr int WN = kMmaBN / kMmaWarpsN;  // warp tile cols (n) = 32
  constexpr int MI = WM / 16;             // m16 fragments per warp
  constexpr int NI = WN / 8;              // n8 fragments per warp
  constexpr int kStageA = BM * kMmaBK * 2;
  constexpr int kStageBytes = (BM + kMmaBN) * kMmaBK * 2;

  PARALON_DYNAMIC_SHARED(char, smem);
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warp_m = warp / kMmaWarpsN;
  const int warp_n = warp % kMmaWarpsN;
  const int m0 = blockIdx.x * BM;
  const bool swiglu = b_up != nullptr;
  const int n0 = blockIdx.y * (swiglu ? kMmaBN / 2 : kMmaBN);
  const int kt_begin = blockIdx.z * tiles_per_split;
  const int k_tiles = max(0, min((Kp + kMmaBK - 1) / kMmaBK - kt_begin, tiles_per_split));  // this split's

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;

  // Prologue: tiles 0 .. kMmaStages-2 in flight. A commit per slot, even when empty, keeps the
  // group count uniform so cp_async_wait<kMmaStages - 2> always means "tile kt has landed".
#pragma unroll
  for (int s = 0; s < kMmaStages - 1; ++s) {
    if (s < k_tiles) {
      mma_load_tile<BM, T16>(smem + s * kStageBytes, a, nullptr, m0, M, kt_begin + s, Kp);
      BTile::load(smem + s * kStageBytes + kStageA, b, b_up, n0, N, kt_begin + s, Kp);
    }
    cp_async_commit();
  }

  for (int kt = 0; kt < k_tiles; ++kt) {
    cp_async_wait<kMmaStages - 2>();
    // Barrier: (1) tile kt, written by other threads' cp.async, is visible to every warp; (2) every
    // warp has finished reading tile kt-1, whose stage the prefetch below overwrites.
    __syncthreads();
    const int next = kt + kMmaStages - 1;
    if (next < k_tiles) {
      char* st = smem + (next % kMmaStages) * kStageBytes;
      mma_load_tile<BM, T16>(st, a, nullptr, m0, M, kt_begin + next, Kp);
      BTile::load(st + kStageA, b, b_up, n0, N, kt_begin + next, Kp);
    }
    cp_async_commit();

    const char* sa = smem + (kt % kMmaStages) * kStageBytes;
    const char* sb = sa + kStageA;
#pragma unroll
    for (int ks = 0; ks < kMmaBK / 16; ++ks) {
      uint32_t af[MI][4];
      uint32_t bf[NI][2];
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        // x4: lanes 0-15 address rows 0-15 at k-chunk 0, lanes 16-31 the same rows at k-chunk 1.
        const int row = warp_m * WM + i * 16 + (lane & 15);
        ldmatrix_x4(af[i], sa + mma_smem_offset(row, ks * 2 + (lane >> 4)));
      }
#pragma unroll
      for (int j = 0; j < NI; j += 2) {
        // x4 over two n8 tiles: matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15).
        const int row = warp_n * WN + j * 8 + (lane & 7) + ((lane >> 4) << 3);
        uint32_t r[4];
        ldmatrix_x4(r, sb + mma_smem_offset(row, ks * 2 + ((lane >> 3) & 1)));
        bf[j][0] = r[0];
        bf[j][1] = r[1];
        bf[j + 1][0] = r[2];
        bf[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j) mma_16816<T16>(acc[i][j], af[i], bf[j]);
    }
  }
  cp_async_wait<0>();  // no copy may still target shared memory when the CTA exits

  // Accumulator layout of m16n8: c0, c1 at (row lane/4, cols 2·(lane%4) + {0, 1}); c2, c3 at row + 8.
  if (swiglu) {  // fragments j < NI/2 are gate, j + NI/2 the up of the same columns
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
      for (int j = 0; j < NI / 2; ++j)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int m = m0 + warp_m * WM + i * 16 + (lane >> 2) + (q >> 1) * 8;
          const int n = n0 + warp_n * (WN / 2) + j * 8 + (lane & 3) * 2 + (q & 1);
          if (m < M && n < N) {
            if (partial != nullptr) {
              float* p = partial + (static_cast<int64_t>(blockIdx.z) * M + m) * 2 * N + n;
              p[0] = acc[i][j][q];
              p[N] = acc[i][j + NI / 2][q];
            } else {
              y[static_cast<int64_t>(m) * N + n] = silu_mul(acc[i][j][q], acc[i][j + NI / 2][q]);
            }
          }
        }
    return;
  }
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int m = m0 + warp_m * WM + i * 16 + (lane >> 2) + (q >> 1) * 8;
        const int n = n0 + warp_n * WN + j * 8 + (lane & 3) * 2 + (q & 1);
        if (m < M && n < N) {
          const int64_t o = static_cast<int64_t>(m) * N + n;
          if (partial != nullptr) {
            partial[static_cast<int64_t>(blockIdx.z) * M * N + o] = acc[i][j][q];
          } else {
            y[o] = acc[i][j][q] + (residual != nullptr ? residual[o] : 0.f);
          }
        }
      }
}

// y = Σ_z partial[z] + residual, summed in split order (deterministic). Grid-stride over M · N.
__global__ void __launch_bounds__(kConvertThreads)
    splitk_reduce_kernel(const float* __restrict__ partial, int splits, const float* residual, float* y, int64_t MN) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < MN;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float s = residual != nullptr ? residual[i] : 0.f;
    for (int z = 0; z < splits; ++z) s += partial[z * MN + i];
    y[i] = s;
  }
}

// y[M, N] = silu(Σ_z gate partial) · Σ_z up partial, from partial[z, M, 2N] (gate at n, up at N + n),
// summed in split order. Grid-stride over M · N outputs.
__global__ void __launch_bounds__(kConvertThreads)
    splitk_reduce_swiglu_kernel(const float* __restrict__ partial, int splits, float* y, int64_t M, int64_t N) {
  const int64_t MN = M * N;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < MN;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t m = i / N, n = i - m * N;
    float g = 0.f, u = 0.f;
    for (int z = 0; z < splits; ++z) {
      const float* p = partial + (z * M + m) * 2 * N + n;
      g += p[0];
      u += p[N];
    }
    y[i] = silu_mul(g, u);
  }
}

// ---------------------------------------------------------------------------------------------
// 3. SIMT GEMM for f32 weights
// ---------------------------------------------------------------------------------------------

constexpr int kSimtTile = 64;
constexpr int kSimtBK = 16;
constexpr int kSimtThreads = 256;
constexpr int kSimtLoads = kSimtTile * kSimtBK / kSimtThreads;  // elements per thread per operand tile

// Thread t loads elements e = t + 256·i of a 64 × 16 tile: row e / 16, k e % 16 (16 lanes read one
// row's 64 contiguous bytes). Out-of-range elements read as 0. With g_up (Swiglu, W only) tile row t
// is the gate (t % 4 < 2) or up row of column row0 + (t / 4)·2 + t % 2: a thread's 4 tile columns
// tx·4 .. are the gate and up of output columns row0 + tx·2 + {0, 1}, a tile covers 32 columns.
__device__ __forceinline__ void simt_fetch(float (&r)[kSimtLoads], const float* __restrict__ g,
                                           const float* __restrict__ g_up, int row0, int rows, int k0, int K) {
#pragma unroll
  for (int i = 0; i < kSimtLoads; ++i) {
    const int e = threadIdx.x + i * kSimtThreads;
    const int t = e / kSimtBK;
    const bool swiglu = g_up != nullptr;
    const int row = row0 + (swiglu ? (t >> 2) * 2 + (t & 1) : t);
    const float* base = swiglu && (t & 2) ? g_up : g;
    const int k = k0 + e % kSimtBK;
    r[i] = row < rows && k < K ? base[static_cast<int64_t>(row) * K + k] : 0.f;
  }
}

// grid = (ceil(M / 64), ceil(N / 64)).
__global__ void __launch_bounds__(kSimtThreads)
    simt_gemm_f32_kernel(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ w_up,
                         const float* residual, float* y, int M, int N, int K) {
  // [k][row]: a k step reads 4 consecutive rows as one float4. +4 keeps rows 16-byte aligned.
  __shared__ __align__(16) float xs[kSimtBK][kSimtTile + 4];
  __shared__ __align__(16) float ws[kSimtBK][kSimtTile + 4];
  const int tx = threadIdx.x % 16;  // 4 output columns tx·4 ..
  const int ty = threadIdx.x / 16;  // 4 output rows ty·4 ..
  const int m0 = blockIdx.x * kSimtTile;
  const bool swiglu = w_up != nullptr;  // w: gate rows, N: output columns (see simt_fetch)
  const int n0 = blockIdx.y * (swiglu ? kSimtTile / 2 : kSimtTile);

  float acc[4][4] = {};
  float xr[kSimtLoads], wr[kSimtLoads];
  simt_fetch(xr, x, nullptr, m0, M, 0, K);
  simt_fetch(wr, w, w_up, n0, N, 0, K);
  for (int k0 = 0; k0 < K; k0 += kSimtBK) {
#pragma unroll
    for (int i = 0; i < kSimtLoads; ++i) {
      const int e = threadIdx.x + i * kSimtThreads;
      xs[e % kSimtBK][e / kSimtBK] = xr[i];
      ws[e % kSimtBK][e / kSimtBK] = wr[i];
    }
    __syncthreads();  // tile stored before anyone reads it
    if (k0 + kSimtBK < K) {  // next tile's global loads overlap this tile's FMAs
      simt_fetch(xr, x, nullptr, m0, M, k0 + kSimtBK, K);
      simt_fetch(wr, w, w_up, n0, N, k0 + kSimtBK, K);
    }
#pragma unroll
    for (int k = 0; k < kSimtBK; ++k) {
      const float4 a = *reinterpret_cast<const float4*>(&xs[k][ty * 4]);
      const float4 b = *reinterpret_cast<const float4*>(&ws[k][tx * 4]);
      const float av[4] = {a.x, a.y, a.z, a.w};
      const float bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();  // everyone done reading before the next tile overwrites shared memory
  }

  if (swiglu) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int m = m0 + ty * 4 + i;
        const int n = n0 + tx * 2 + j;
        if (m < M && n < N) y[static_cast<int64_t>(m) * N + n] = silu_mul(acc[i][j], acc[i][j + 2]);
      }
    return;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = m0 + ty * 4 + i;
      const int n = n0 + tx * 4 + j;
      if (m < M && n < N) {
        const int64_t o = static_cast<int64_t>(m) * N + n;
        y[o] = acc[i][j] + (residual != nullptr ? residual[o] : 0.f);
      }
    }
}

// ---------------------------------------------------------------------------------------------
// Launchers
// ---------------------------------------------------------------------------------------------

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// One launch for all M rows: chunks of MT = ceil(M / chunks) rows (the last may be partial), their
// CTAs neighbours in the grid, so W streams from HBM once per call and the other chunks find it in L2
// (M = 9..16 is 2 chunks of 5..8 rows, not a chunk of 8 and a second launch re-reading W).
// K slices: 4 when one slice per row group would give fewer than 2 CTAs per SM and K has a full
// lane sweep for each slice; the variant harness may force either.
// w_up non-null: the Swiglu epilogue (w the gate rows, a.N output columns; a warp covers R / 2 columns).
template <typename WT, int MT, bool kVector>
void launch_gemv_rows(const MatmulArgs& a, const WT* w, const WT* w_up, int m_chunks, LaunchContext& ctx) {
  const int64_t groups = ceil_div(a.N, kGemvWarps * kGemvRows<MT> / (w_up != nullptr ? 2 : 1));
  const int64_t lane_sweeps = kVector ? a.K / WeightVec<WT>::kElems / 32 : a.K / 32;
  bool sliced = groups * m_chunks < 2 * static_cast<int64_t>(ctx.sm_count) && lane_sweeps >= kGemvWarps;
  if (const int forced = kernel_variants().gemv_k_slices.load(); forced != KernelVariants::kAuto) {
    if (forced != 1 && forced != kGemvWarps) {
      throw OpError(std::string(kOp) + ": forced GEMV K slices " + std::to_string(forced) + " (1 or " +
                    std::to_string(kGemvWarps) + ")");
    }
    sliced = forced == kGemvWarps;
  }
  const int64_t ctas = (sliced ? groups * kGemvWarps : groups) * m_chunks;
  const int M = static_cast<int>(a.M), N = static_cast<int>(a.N), K = static_cast<int>(a.K);
  if (sliced) {
    PARALON_LAUNCH((gemv_kernel<WT, MT, kVector, kGemvWarps>), dim3(static_cast<unsigned>(ctas)), dim3(kGemvWarps * 32),
                   0, ctx.stream, a.x, w, w_up, a.residual, a.y, m_chunks, M, N, K);
  } else {
    PARALON_LAUNCH((gemv_kernel<WT, MT, kVector, 1>), dim3(static_cast<unsigned>(ctas)), dim3(kGemvWarps * 32), 0,
                   ctx.stream, a.x, w, w_up, a.residual, a.y, m_chunks, M, N, K);
  }
  PARALON_CHECK_LAUNCH(kOp);
}

template <typename WT, bool kVector>
void launch_gemv_path(const MatmulArgs& a, const WT* w, const WT* w_up, LaunchContext& ctx) {
  const int chunks = static_cast<int>(ceil_div(a.M, kGemvMaxM));
  switch (ceil_div(a.M, chunks)) {  // rows per chunk, 1 .. kGemvMaxM
    case 1: return launch_gemv_rows<WT, 1, kVector>(a, w, w_up, chunks, ctx);
    case 2: return launch_gemv_rows<WT, 2, kVector>(a, w, w_up, chunks, ctx);
    case 3: return launch_gemv_rows<WT, 3, kVector>(a, w, w_up, chunks, ctx);
    case 4: return launch_gemv_rows<WT, 4, kVector>(a, w, w_up, chunks, ctx);
    case 5: return launch_gemv_rows<WT, 5, kVector>(a, w, w_up, chunks, ctx);
    case 6: return launch_gemv_rows<WT, 6, kVector>(a, w, w_up, chunks, ctx);
    case 7: return launch_gemv_rows<WT, 7, kVector>(a, w, w_up, chunks, ctx);
    default: return launch_gemv_rows<WT, 8, kVector>(a, w, w_up, chunks, ctx);
  }
}

// Misaligned rows (K·sizeof(W) % 16 ≠ 0 or offset pointers) take the scalar path at 2–4 bytes a
// lane: correct, but several times slower; said once per process so a slow model is explained.
void warn_scalar_path_once(const MatmulArgs& a) {
  static std::atomic<bool> warned{false};
  if (warned.exchange(true)) return;
  std::fprintf(stderr,
               "paralon: matmul (M=%lld, N=%lld, K=%lld, %s) takes the scalar GEMV path: W or x rows are not "
               "16-byte aligned; decode will be slower than the 16-byte-load path (reported once)\n",
               static_cast<long long>(a.M), static_cast<long long>(a.N), static_cast<long long>(a.K),
               dtype_name(a.w_dtype));
}

template <typename WT>
void launch_gemv(const MatmulArgs& a, const void* w_up, LaunchContext& ctx) {
  const WT* w = static_cast<const WT*>(a.w);
  const WT* up = static_cast<const WT*>(w_up);
  // 16-byte loads need every W row and every x row 16-byte aligned.
  const bool vector = a.K % WeightVec<WT>::kElems == 0 && aligned16(a.w) && aligned16(a.x) &&
                      (w_up == nullptr || aligned16(w_up));
  if (vector) {
    launch_gemv_path<WT, true>(a, w, up, ctx);
  } else {
    warn_scalar_path_once(a);
    launch_gemv_path<WT, false>(a, w, up, ctx);
  }
}

template <typename Src, typename T16>
void launch_convert(const Src* src, T16* dst, int64_t rows, int64_t K, int64_t Kp, LaunchContext& ctx) {
  const int64_t chunks = rows * (Kp / 8);
  if (chunks == 0) return;
  const int64_t blocks = std::min<int64_t>(ceil_div(chunks, kConvertThreads), int64_t(ctx.sm_count) * 16);
  PARALON_LAUNCH((convert_rows_kernel<Src, T16>), dim3(static_cast<unsigned>(blocks)), dim3(kConvertThreads), 0,
                 ctx.stream, src, dst, rows, K, Kp);
  PARALON_CHECK_LAUNCH(kOp);
}

// Below about two CTAs per SM the GEMM cannot keep enough loads in flight to stream W at HBM speed
// (a CTA has at most 2 k-tiles outstanding), which is the case for batched decode (M of 17..64:
// N / 128 CTAs). Then K is split so that ≈ 2 CTAs per SM run, each split keeping ≥ 8 k-tiles
// (256 of K) so its pipeline still fills; the partials cost splits · M · N · 4 bytes each way.
int choose_splits(int64_t tiles, int64_t k_tiles, int sm_count) {
  constexpr int64_t kMaxSplits = 16;
  constexpr int64_t kMinTilesPerSplit = 8;
  const int64_t target = 2 * static_cast<int64_t>(sm_count);
  if (tiles >= target) return 1;
  const int64_t splits = std::min({ceil_div(target, tiles), k_tiles / kMinTilesPerSplit, kMaxSplits});
  return static_cast<int>(std::max<int64_t>(splits, 1));
}

// repack_w: W (dense T16 rows that are not 16-byte aligned) is first copied to [N, Kp] in scratch.
// w_up non-null: the Swiglu epilogue (w the gate rows, a.N output columns, kMmaBN / 2 per tile).
template <typename T16, int BM, class BTile>
void launch_mma_tiles(const MatmulArgs& a, typename BTile::Ptr w, typename BTile::Ptr w_up, bool repack_w,
                      LaunchContext& ctx) {
  const bool swiglu = w_up != nullptr;
  const int64_t w_rows = swiglu ? 2 * a.N : a.N;  // rows of W read, and columns of the raw product
  const int64_t Kp = round_up(a.K, 8);
  const int64_t k_tiles = ceil_div(Kp, kMmaBK);
  const int64_t m_tiles = ceil_div(a.M, BM);
  const int64_t n_tiles = ceil_div(a.N, swiglu ? kMmaBN / 2 : kMmaBN);
  int splits = choose_splits(m_tiles * n_tiles, k_tiles, ctx.sm_count);
  if (const int forced = kernel_variants().matmul_splits.load(); forced != KernelVariants::kAuto) {
    if (forced < 1 || forced > k_tiles) {
      throw OpError(std::string(kOp) + ": forced split count " + std::to_string(forced) + " outside 1.." +
                    std::to_string(k_tiles) + " (the k-tiles of K = " + std::to_string(a.K) + ")");
    }
    splits = forced;
  }
  const int tiles_per_split = static_cast<int>(std::max<int64_t>(1, ceil_div(k_tiles, splits)));
  splits = static_cast<int>(std::max<int64_t>(1, ceil_div(k_tiles, tiles_per_split)));  // no empty split

  // One scratch region: x as T16 [M, Kp] | W repacked to [N, Kp] (unaligned W only) | f32 partials.
  const size_t x_bytes = static_cast<size_t>(round_up(a.M * Kp * 2, 256));
  const size_t w_bytes = repack_w ? static_cast<size_t>(round_up(w_rows * Kp * 2, 256)) : 0;
  const size_t p_bytes = splits > 1 ? static_cast<size_t>(splits) * a.M * w_rows * 4 : 0;
  char* scratch = static_cast<char*>(ctx.scratch(x_bytes + w_bytes + p_bytes));
  T16* x16 = reinterpret_cast<T16*>(scratch);
  float* partial = splits > 1 ? reinterpret_cast<float*>(scratch + x_bytes + w_bytes) : nullptr;
  launch_convert<float, T16>(a.x, x16, a.M, a.K, Kp, ctx);
  if constexpr (std::is_same_v<BTile, DenseB<T16>>) {
    if (repack_w) {
      T16* repacked = reinterpret_cast<T16*>(scratch + x_bytes);
      launch_convert<T16, T16>(w, repacked, a.N, a.K, Kp, ctx);
      w = repacked;
      if (swiglu) {  // the up rows after the gate rows
        launch_convert<T16, T16>(w_up, repacked + a.N * Kp, a.N, a.K, Kp, ctx);
        w_up = repacked + a.N * Kp;
      }
    }
  }

  const dim3 grid(static_cast<unsigned>(m_tiles), static_cast<unsigned>(n_tiles), static_cast<unsigned>(splits));
  PARALON_LAUNCH((mma_gemm_kernel<T16, BM, BTile>), grid, dim3(kMmaThreads), mma_smem_bytes(BM), ctx.stream, x16, w,
                 w_up, a.residual, a.y, partial, static_cast<int>(a.M), static_cast<int>(a.N), static_cast<int>(Kp),
                 tiles_per_split);
  PARALON_CHECK_LAUNCH(kOp);
  if (splits > 1) {
    const int64_t mn = a.M * a.N;
    const int64_t blocks = std::min<int64_t>(ceil_div(mn, kConvertThreads), int64_t(ctx.sm_count) * 16);
    if (swiglu) {
      PARALON_LAUNCH(splitk_reduce_swiglu_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kConvertThreads), 0,
                     ctx.stream, partial, splits, a.y, a.M, a.N);
    } else {
      PARALON_LAUNCH(splitk_reduce_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kConvertThreads), 0, ctx.stream,
                     partial, splits, a.residual, a.y, mn);
    }
    PARALON_CHECK_LAUNCH(kOp);
  }
}

// Hopper (matmul_wgmma.cu): x converted (and unaligned W repacked) as for the mma.sync path, then the
// wgmma + TMA kernel on the 16-bit operands.
template <typename T16>
void launch_wgmma_tiles(const MatmulArgs& a, const T16* w, bool repack_w, LaunchContext& ctx) {
  const int64_t Kp = round_up(a.K, 8);
  const size_t x_bytes = static_cast<size_t>(round_up(a.M * Kp * 2, 256));
  const size_t w_bytes = repack_w ? static_cast<size_t>(round_up(a.N * Kp * 2, 256)) : 0;
  char* scratch = static_cast<char*>(ctx.scratch(x_bytes + w_bytes));
  T16* x16 = reinterpret_cast<T16*>(scratch);
  launch_convert<float, T16>(a.x, x16, a.M, a.K, Kp, ctx);
  if (repack_w) {
    T16* repacked = reinterpret_cast<T16*>(scratch + x_bytes);
    launch_convert<T16, T16>(w, repacked, a.N, a.K, Kp, ctx);
    w = repacked;
  }
  launch_wgmma_gemm(WgmmaGemmArgs{x16, w, std::is_same_v<T16, __nv_bfloat16>, a.residual, a.y, a.M, a.N, Kp}, ctx);
}

// W rows must be 16-byte aligned for cp.async; otherwise W is repacked (never the case for real
// checkpoints, whose K is a multiple of 8). BM = 64 when M ≤ 64 halves the wasted rows of the tile.
template <typename T16>
void launch_mma(const MatmulArgs& a, const void* w_up, LaunchContext& ctx, bool wgmma = false) {
  const T16* w = static_cast<const T16*>(a.w);
  const T16* up = static_cast<const T16*>(w_up);
  const bool repack = !(a.K % 8 == 0 && aligned16(a.w) && (w_up == nullptr || aligned16(w_up)));
  if (wgmma) return launch_wgmma_tiles<T16>(a, w, repack, ctx);  // callers never pass w_up with wgmma
  const int tile_m = kernel_variants().matmul_tile_m.load();
  if (tile_m != KernelVariants::kAuto && tile_m != 64 && tile_m != 128) {
    throw OpError(std::string(kOp) + ": forced tile height " + std::to_string(tile_m) + " (64 or 128)");
  }
  if (tile_m == 64 || (tile_m == KernelVariants::kAuto && a.M <= 64)) {
    launch_mma_tiles<T16, 64, DenseB<T16>>(a, w, up, repack, ctx);
  } else {
    launch_mma_tiles<T16, 128, DenseB<T16>>(a, w, up, repack, ctx);
  }
}

// Quantized W: x rounded to f16, W tiles decoded to f16 in shared memory (QuantB); K is a multiple of
// the block, so of kMmaBK, and nothing is repacked.
template <class F, bool kAligned16>
void launch_mma_quant_tiles(const MatmulArgs& a, const void* w_up, LaunchContext& ctx) {
  using Block = typename F::Block;
  const auto* w = static_cast<const Block*>(a.w);
  const auto* up = static_cast<const Block*>(w_up);
  if (a.M <= 64) {
    launch_mma_tiles<__half, 64, QuantB<F, kAligned16>>(a, w, up, false, ctx);
  } else {
    launch_mma_tiles<__half, 128, QuantB<F, kAligned16>>(a, w, up, false, ctx);
  }
}

template <class F>
void launch_mma_quant(const MatmulArgs& a, const void* w_up, LaunchContext& ctx) {
  if constexpr (F::kAligned16) {
    if (aligned16(a.w) && (w_up == nullptr || aligned16(w_up))) return launch_mma_quant_tiles<F, true>(a, w_up, ctx);
  }
  launch_mma_quant_tiles<F, false>(a, w_up, ctx);
}

// Output columns per tile of the tiled kernels' grid.y (the Swiglu epilogue halves the SIMT tile's).
int64_t tiled_cols(const void* w_up) { return w_up != nullptr ? kSimtTile / 2 : kSimtTile; }

void launch_simt_f32(const MatmulArgs& a, const void* w_up, LaunchContext& ctx) {
  const dim3 grid(static_cast<unsigned>(ceil_div(a.M, kSimtTile)), static_cast<unsigned>(ceil_div(a.N, tiled_cols(w_up))));
  PARALON_LAUNCH(simt_gemm_f32_kernel, grid, dim3(kSimtThreads), 0, ctx.stream, a.x,
                 static_cast<const float*>(a.w), static_cast<const float*>(w_up), a.residual, a.y, static_cast<int>(a.M), static_cast<int>(a.N),
                 static_cast<int>(a.K));
  PARALON_CHECK_LAUNCH(kOp);
}

// The variant harness's choice (variants.h), refused by name where that kernel cannot serve the call.
void launch_forced(const MatmulArgs& a, const void* w_up, int path, bool gemv_fits, LaunchContext& ctx) {
  const bool half = a.w_dtype == DType::BF16 || a.w_dtype == DType::F16;
  auto refuse = [&](const char* why) {
    throw OpError(std::string(kOp) + ": forced variant " + std::to_string(path) + " cannot run: " + why);
  };
  if (ceil_div(a.N, tiled_cols(w_up)) > 65535 && path != KernelVariants::kGemv) refuse("N exceeds the tiled kernels' grid");
  switch (path) {
    case KernelVariants::kGemv:
      if (!gemv_fits) refuse("K too large for the GEMV kernel's 32-bit offsets");
      if (a.w_dtype == DType::BF16) return launch_gemv<__nv_bfloat16>(a, w_up, ctx);
      if (a.w_dtype == DType::F16) return launch_gemv<__half>(a, w_up, ctx);
      if (a.w_dtype == DType::F32) return launch_gemv<float>(a, w_up, ctx);
      break;
    case KernelVariants::kMma:
      if (!half) refuse("tensor cores take bf16 / f16 weights");
      if (a.w_dtype == DType::BF16) return launch_mma<__nv_bfloat16>(a, w_up, ctx);
      return launch_mma<__half>(a, w_up, ctx);
    case KernelVariants::kSimt:
      if (a.w_dtype != DType::F32) refuse("the SIMT kernel takes f32 weights");
      return launch_simt_f32(a, w_up, ctx);
    case KernelVariants::kWgmma:
      if (!half) refuse("tensor cores take bf16 / f16 weights");
      if (w_up != nullptr) refuse("the wgmma GEMM has no SwiGLU epilogue");
      if (!wgmma_gemm_available(ctx)) refuse("wgmma needs compute capability 9.x and a build with sm_90a");
      if (a.w_dtype == DType::BF16) return launch_mma<__nv_bfloat16>(a, nullptr, ctx, true);
      return launch_mma<__half>(a, nullptr, ctx, true);
    default:
      refuse("unknown path (0 gemv, 1 mma, 2 simt, 3 wgmma)");
  }
  refuse("unsupported weight dtype");
}

}  // namespace

// Dispatch.
// - M ≤ 16: the GEMV kernel. One pass over W serves 8 rows of x; at 8 rows the FMA work is ≈ 45% of
//   an SM's f32 peak and the x reads from L1 ≈ 2× the W bytes while W streams at HBM speed, so it
//   stays memory-bound; for M in 9..16 the second chunk re-reads W from L2, not HBM. The tensor-core
//   path would add the x conversion and, at N / 128 tiles, a split-K round trip. (16 is a
//   first estimate from these counts; the crossover is to be measured on hardware.)
// - Larger M, bf16 / f16 W: tensor cores (mma.sync m16n8k16) on x rounded to the weight's type; on
//   compute capability 9.x with ≥ 1 128 × 128 tile per SM, the wgmma + TMA kernel instead
//   (matmul_wgmma.cu; verified once per process on the device first, see wgmma_gemm_selected), except
//   with the SwiGLU epilogue, which only the mma.sync kernel has.
// - Larger M, f32 W: the SIMT tiled kernel (no f32 tensor-core path: tf32 would round x and W).
// - Quantized W: M ≤ 16 the quantized GEMV (quant_matmul.cu); larger M the tensor-core GEMM with W tiles
//   decoded to f16 in shared memory (QuantB) and x rounded to f16.
// Grid limits: the tiled kernels put N tiles (≥ 64 wide) on grid.y (≤ 65535), so N ≤ 4 194 240.
// Swiglu epilogue: every path above runs it in its store (dispatch below with w_up set), so the
// [M, 2I] gate/up product never reaches memory: for decode that saves two launches (the swiglu op,
// and the second half's GEMV) and M·2I·4 bytes written + read back + M·I·4 written again.
namespace {

// a.w: W (or the gate rows), a.N: output columns; w_up: the up rows for the Swiglu epilogue, or null.
void dispatch(const MatmulArgs& a, const void* w_up, LaunchContext& ctx) {
  constexpr int64_t kGemvMaxPathM = 16;
  constexpr int64_t kIntMax = 0x7fffffff;
  if (dtype_quantized(a.w_dtype) && a.M <= kGemvMaxPathM) return launch_matmul_quantized(a, w_up, ctx);
  if (a.M > kIntMax || a.N > kIntMax || a.K > kIntMax || a.K < 0) {
    throw OpError(std::string(kOp) + ": dimensions exceed 2^31 - 1");
  }
  // The GEMV kernel addresses x within a chunk of ≤ 8 rows with 32-bit offsets.
  const bool gemv_fits = a.K <= kIntMax / kGemvMaxM;
  const int forced = kernel_variants().matmul_path.load();
  if (forced != KernelVariants::kAuto) return launch_forced(a, w_up, forced, gemv_fits, ctx);
  const bool small_m = a.M <= kGemvMaxPathM && gemv_fits;
  if (!small_m && ceil_div(a.N, tiled_cols(w_up)) > 65535) {
    throw OpError(std::string(kOp) + ": N = " + std::to_string(a.N) + " exceeds the tiled kernels' grid");
  }
  switch (a.w_dtype) {
    case DType::BF16:
      if (small_m) return launch_gemv<__nv_bfloat16>(a, w_up, ctx);
      return launch_mma<__nv_bfloat16>(a, w_up, ctx, w_up == nullptr && wgmma_gemm_selected(a.M, a.N, ctx));
    case DType::F16:
      if (small_m) return launch_gemv<__half>(a, w_up, ctx);
      return launch_mma<__half>(a, w_up, ctx, w_up == nullptr && wgmma_gemm_selected(a.M, a.N, ctx));
    case DType::F32:
      if (small_m) return launch_gemv<float>(a, w_up, ctx);
      return launch_simt_f32(a, w_up, ctx);
    case DType::Q8_0: return launch_mma_quant<CudaQ8_0>(a, w_up, ctx);
    case DType::Q4_K: return launch_mma_quant<CudaQ4_K>(a, w_up, ctx);
    case DType::Q5_K: return launch_mma_quant<CudaQ5_K>(a, w_up, ctx);
    case DType::Q6_K: return launch_mma_quant<CudaQ6_K>(a, w_up, ctx);
    default:
      break;
  }
  throw OpError(std::string(kOp) + ": unsupported weight dtype " + dtype_name(a.w_dtype));
}

}  // namespace

void launch_matmul(const MatmulArgs& a, LaunchContext& ctx) {
  if (a.M <= 0 || a.N <= 0) return;
  if (a.epilogue == MatmulEpilogue::Swiglu) {
    if (a.N % 2 != 0 || a.residual != nullptr || (a.num_parts != 0 && a.num_parts != 2)) {
      throw OpError(std::string(kOp) + ": the swiglu epilogue needs an even N, no residual and one or two W");
    }
    const MatmulArgs gate = swiglu_half(a, 0, a.y);  // N = I output columns
    return dispatch(gate, swiglu_half(a, 1, nullptr).w, ctx);
  }
  // A split output runs as one launch per part (that part's W rows into its output), all queued by
  // this one op: the launch count is unchanged, x is re-read from L2 per part.
  if (a.num_parts > 0) {
    for (int j = 0; j < a.num_parts; ++j) launch_matmul(matmul_part(a, j), ctx);
    return;
  }
  dispatch(a, nullptr, ctx);
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
