// Fast precision for bf16 weights (Context::bf16_dot, `--cpu-precision fast`): x rounded to bf16 once
// per matmul (round to nearest even), then AVX512-BF16 vdpbf16ps multiplies bf16 pairs straight from
// the weights with f32 accumulation — no widening, half the multiply instructions of the exact path.
// The only rounding beyond the exact path's is that of x to bf16 (relative 2^-9 per element).
//
// One kernel for every M: threads split W's rows (over all parts of a split output at once, as the
// exact streaming kernel does); each step dots kNR W rows (8 for M = 1: eight concurrent streams)
// with x rows in tiles of kMR, W rows staying in L1 across the tiles and x (M · K · 2 bytes) in L2/L3.
// Measured slower than the exact kernels from 16 rows on (one horizontal sum per output, no W reuse
// in registers) — see bench/results/cpu-precision.md; a packed bf16-pair GEMM with broadcast x pairs
// was tried and was slower still with scalar packing.
#include <algorithm>
#include <cstdint>

#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/simd.h"

#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

namespace paralon {
namespace cpu {

#if defined(__AVX512BF16__)

bool bf16_dot_supported() { return __builtin_cpu_supports("avx512bf16"); }

namespace {

constexpr int kMR = 4;         // x rows per register tile (kMR × kNR accumulators, ≤ 32 zmm)
constexpr int kNR = 4;         // W rows per step for M > 1
constexpr int kNRSingle = 8;   // W rows per step for M = 1

inline __m512bh load_bh(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
inline __m512bh load_bh(const uint16_t* p, __mmask32 m) { return (__m512bh)_mm512_maskz_loadu_epi16(m, p); }

// out[i][j] = x row i · W row j over K (x stride K, W stride K), both bf16.
template <int MR, int NR>
inline void dot_tile(const uint16_t* x, const uint16_t* w, int64_t K, float out[MR][NR]) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m512bh xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = load_bh(x + i * K + k);
    for (int j = 0; j < NR; ++j) {
      const __m512bh wv = load_bh(w + j * K + k);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv[i], wv);
    }
  }
  if (k < K) {  // the tail: masked loads give zero pairs past K (never reading past a row)
    const __mmask32 m = static_cast<__mmask32>((1ull << (K - k)) - 1);
    __m512bh xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = load_bh(x + i * K + k, m);
    for (int j = 0; j < NR; ++j) {
      const __m512bh wv = load_bh(w + j * K + k, m);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv[i], wv);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i][j] = _mm512_reduce_add_ps(acc[i][j]);
}

// y rows [m0, m1) × columns [n, n + NR) from the NR W rows at `w`.
template <int NR>
inline void step(const MatmulArgs& a, const uint16_t* xb, const uint16_t* w, int64_t n, int64_t m0, int64_t m1) {
  const int64_t K = a.K, N = a.N;
  const auto tile = [&](auto mr_tag, int64_t m) {
    constexpr int MR = decltype(mr_tag)::value;
    float out[MR][NR];
    dot_tile<MR, NR>(xb + m * K, w, K, out);
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) {
        const int64_t at = (m + i) * N + n + j;
        a.y[at] = out[i][j] + (a.residual ? a.residual[at] : 0.0f);
      }
  };
  int64_t m = m0;
  for (; m + kMR <= m1; m += kMR) tile(std::integral_constant<int, kMR>{}, m);
  for (; m < m1; ++m) tile(std::integral_constant<int, 1>{}, m);
}

// W rows [n0, n1) of `a` (bf16) against every x row (xb: a.M rows of bf16, stride K).
void rows(const MatmulArgs& a, const uint16_t* xb, int64_t n0, int64_t n1) {
  const uint16_t* w = static_cast<const uint16_t*>(a.w);
  const int64_t K = a.K;
  const int nr = a.M == 1 ? kNRSingle : kNR;
  int64_t n = n0;
  for (; n + nr <= n1; n += nr) {
    if (nr == kNRSingle) {
      step<kNRSingle>(a, xb, w + n * K, n, 0, a.M);
    } else {
      step<kNR>(a, xb, w + n * K, n, 0, a.M);
    }
  }
  for (; n < n1; ++n) step<1>(a, xb, w + n * K, n, 0, a.M);
}

// ctx.bf16_x = x rounded to bf16 (nearest even), M · K elements.
const uint16_t* round_x(Context& ctx, const MatmulArgs& a) {
  const int64_t n = a.M * a.K;
  if (static_cast<int64_t>(ctx.bf16_x.size()) < n) ctx.bf16_x.resize(n);
  uint16_t* out = ctx.bf16_x.data();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(a.x + i)));
  for (; i < n; ++i) out[i] = to_bf16(a.x[i]).bits;
  return out;
}

}  // namespace

bool matmul_bf16_dot(Context& ctx, const MatmulArgs& a) {
  const bool swiglu = a.epilogue == MatmulEpilogue::Swiglu;
  if (a.num_parts > 0) {
    for (int j = 0; j < a.num_parts; ++j)
      if (a.part_w_dtype[j] != DType::BF16) return false;
  } else if (a.w_dtype != DType::BF16) {
    return false;
  }
  if (a.K <= 0 || a.M <= 0 || a.N <= 0) return false;
  const uint16_t* xb = round_x(ctx, a);
  if (swiglu) {
    matmul_swiglu_streaming(ctx, a, 0, [xb](const MatmulArgs& t, int64_t n0, int64_t n1, float*) { rows(t, xb, n0, n1); });
    return true;
  }
  MatmulArgs parts[kMaxMatmulParts];
  for (int j = 0; j < a.num_parts; ++j) parts[j] = matmul_part(a, j);
  int64_t chunk = chunk_size(a.N, ctx.pool, 16);
  chunk = (chunk + kNRSingle - 1) / kNRSingle * kNRSingle;
  ctx.pool.parallel_for((a.N + chunk - 1) / chunk, [&](int64_t c, int) {
    const int64_t n0 = c * chunk, n1 = std::min(a.N, n0 + chunk);
    if (a.num_parts == 0) return rows(a, xb, n0, n1);
    for (int j = 0; j < a.num_parts; ++j) {
      const int64_t lo = std::max(n0, a.part_start[j]), hi = std::min(n1, a.part_start[j + 1]);
      if (lo < hi) rows(parts[j], xb, lo - a.part_start[j], hi - a.part_start[j]);
    }
  });
  return true;
}

#else  // built without AVX512-BF16: the exact kernels run

bool bf16_dot_supported() { return false; }
bool matmul_bf16_dot(Context&, const MatmulArgs&) { return false; }

#endif

}  // namespace cpu
}  // namespace paralon
