// y[M, N] = x[M, K] · W[N, K]ᵀ (+ residual), W in f32, bf16 or f16, read in place.
//
// Two kernels:
// - Streaming (M ≤ kMaxStreamingRows: decode and small batches): memory-bound, so the only goal
//   is to read W once at full bandwidth. Threads own contiguous ranges of W rows; each step takes
//   4-8 W rows and dots them with every x row (the step's W rows stay in L1 across x rows),
//   widening bf16/f16 on load (a 16-bit shift for bf16). Traffic: N·K·sizeof(W) bytes of W,
//   M·K·4 of x per chunk (cache-resident), M·N·4 of y. Above kMaxStreamingRows the re-widening
//   of each W vector for every pair of x rows costs more than packing W once.
// - Blocked GEMM (larger M, i.e. prefill): compute-bound. Classic GotoBLAS/BLIS blocking, per
//   chunk of nc W rows (one chunk per claim, so threads split N):
//     for each kc-slice of K: pack W[nc × kc] as f32 "B" slivers [kc][kNR]  (≤ 128 KB, L2)
//       for each mc block of x rows: pack x[mc × kc] as "A" panels [kc][kMR]  (≤ 120 KB, L2)
//         for each B sliver (16 KB, stays in L1): for each A panel: kMR × kNR register tile.
//   W is widened once per (chunk, kc) and reused by all M rows; the micro-kernel keeps a
//   kMR × 2-vector accumulator tile in registers (6 × 16 on AVX2: 12 accumulators, 2 B vectors
//   and one broadcast = 15 of 16 ymm registers).
#include <algorithm>

#include "cpu/kernels.h"
#include "cpu/simd.h"

namespace paralon {
namespace cpu {

namespace {

// ---------------------------------------------------------------------------------------------
// Streaming kernel (small M)

constexpr int64_t kMaxStreamingRows = 8;  // above this, packing W (an N·K scatter) pays off
// W rows per step: 8 concurrent streams for M = 1 (8 accumulators; measured ~15 % faster than 4
// here); 4 for M = 2..8, whose 2 × 4 accumulator tiles keep x in registers without spilling.
constexpr int kStreamWSingle = 8;
constexpr int kStreamWMulti = 4;

// out[i][j] = x row i · W row j over K, for MR x rows (stride K) and NR W rows (stride K).
template <int MR, int NR, class T>
inline void dot_tile(const float* x, const T* w, int64_t K, float out[MR][NR]) {
  vf acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = vzero();
  int64_t k = 0;
  for (; k + kLanes <= K; k += kLanes) {
    vf xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = vload(x + i * K + k);
    for (int j = 0; j < NR; ++j) {
      const vf wv = vload(w + j * K + k);
      for (int i = 0; i < MR; ++i) acc[i][j] = vfma(xv[i], wv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i][j] = vreduce_add(acc[i][j]);
  for (; k < K; ++k)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) out[i][j] += x[i * K + k] * to_f32(w[j * K + k]);
}

// y rows [0, M) × columns [n, n + NR) of one W step: x rows in pairs while NR ≤ 4, else singly.
template <int NR, class T>
inline void stream_rows(const MatmulArgs& a, const T* w, int64_t n) {
  const int64_t M = a.M, N = a.N, K = a.K;
  for (int64_t m = 0; m < M;) {
    float out[2][NR];
    int mr = 1;
    if constexpr (NR <= kStreamWMulti) {
      if (M - m >= 2) mr = 2;
    }
    if (mr == 2) {
      dot_tile<2, NR>(a.x + m * K, w + n * K, K, out);
    } else {
      dot_tile<1, NR>(a.x + m * K, w + n * K, K, out);
    }
    for (int i = 0; i < mr; ++i)
      for (int j = 0; j < NR; ++j) {
        const int64_t at = (m + i) * N + n + j;
        a.y[at] = out[i][j] + (a.residual ? a.residual[at] : 0.0f);
      }
    m += mr;
  }
}

template <int NR, class T>
void stream_range(const MatmulArgs& a, const T* w, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) stream_rows<NR>(a, w, n);
  for (; n < n1; ++n) stream_rows<1>(a, w, n);
}

template <class T>
void matmul_streaming(Context& ctx, const MatmulArgs& a) {
  const T* w = static_cast<const T*>(a.w);
  const int64_t N = a.N;
  int64_t rows = chunk_size(N, ctx.pool, 16);
  rows = (rows + kStreamWSingle - 1) / kStreamWSingle * kStreamWSingle;
  ctx.pool.parallel_for((N + rows - 1) / rows, [&](int64_t c, int) {
    const int64_t n0 = c * rows, n1 = std::min(N, n0 + rows);
    if (a.M == 1) {
      stream_range<kStreamWSingle>(a, w, n0, n1);
    } else {
      stream_range<kStreamWMulti>(a, w, n0, n1);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Blocked GEMM (large M)

constexpr int kMR = 6;            // x rows per register tile
constexpr int kNR = 2 * kLanes;   // W rows per register tile (two vectors)
constexpr int64_t kKC = 256;      // K slice: a B sliver kKC × kNR f32 = 16 KB (32 KB on AVX-512)
constexpr int64_t kMC = 120;      // x rows per A block (multiple of kMR): 120 KB
constexpr int64_t kNCMax = 128;   // W rows per chunk (multiple of kNR): B panel 128 KB

// acc = A panel [kc][kMR] · B sliver [kc][kNR].
inline void micro_kernel(const float* ap, const float* bp, int64_t kc, vf acc[kMR][2]) {
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = vzero();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const vf b0 = vload(bp + k * kNR), b1 = vload(bp + k * kNR + kLanes);
    for (int i = 0; i < kMR; ++i) {
      const vf av = vset(ap[k * kMR + i]);
      acc[i][0] = vfma(av, b0, acc[i][0]);
      acc[i][1] = vfma(av, b1, acc[i][1]);
    }
  }
}

// y[0..mr)[0..nr) = base + acc, base = y itself (later K slices), the residual, or 0.
inline void store_tile(vf acc[kMR][2], float* y, const float* residual, int64_t ldy, int mr, int nr,
                       bool accumulate) {
  for (int i = 0; i < mr; ++i) {
    float* row = y + i * ldy;
    const float* base = accumulate ? row : residual ? residual + i * ldy : nullptr;
    if (nr == kNR) {
      const vf b0 = base ? vload(base) : vzero(), b1 = base ? vload(base + kLanes) : vzero();
      vstore(row, vadd(acc[i][0], b0));
      vstore(row + kLanes, vadd(acc[i][1], b1));
    } else {
      alignas(64) float t[kNR];
      vstore(t, acc[i][0]);
      vstore(t + kLanes, acc[i][1]);
      for (int j = 0; j < nr; ++j) row[j] = t[j] + (base ? base[j] : 0.0f);
    }
  }
}

// B slivers: bp[s][k][c] = W[s·kNR + c][pc + k] as f32, zero for rows ≥ n_valid.
template <class T>
void pack_b(const T* w, int64_t K, int64_t n_valid, int64_t nc_padded, int64_t pc, int64_t kc, float* bp,
            float* row_buf) {
  for (int64_t n = 0; n < nc_padded; ++n) {
    float* dst = bp + (n / kNR) * kc * kNR + n % kNR;
    if (n < n_valid) {
      widen_row(w + n * K + pc, row_buf, kc);
      for (int64_t k = 0; k < kc; ++k) dst[k * kNR] = row_buf[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) dst[k * kNR] = 0.0f;
    }
  }
}

// A panels: ap[p][k][i] = x[p·kMR + i][pc + k], zero for rows ≥ m_valid.
void pack_a(const float* x, int64_t K, int64_t m_valid, int64_t mc_padded, int64_t pc, int64_t kc, float* ap) {
  for (int64_t p = 0; p < mc_padded / kMR; ++p) {
    float* dst = ap + p * kc * kMR;
    for (int i = 0; i < kMR; ++i) {
      const int64_t m = p * kMR + i;
      if (m < m_valid) {
        const float* src = x + m * K + pc;
        for (int64_t k = 0; k < kc; ++k) dst[k * kMR + i] = src[k];
      } else {
        for (int64_t k = 0; k < kc; ++k) dst[k * kMR + i] = 0.0f;
      }
    }
  }
}

template <class T>
void matmul_blocked(Context& ctx, const MatmulArgs& a) {
  const T* w = static_cast<const T*>(a.w);
  const int64_t M = a.M, N = a.N, K = a.K;
  // Chunk width: up to kNCMax W rows, smaller when N is small so every thread gets work.
  int64_t nc = (N + 2 * ctx.pool.size() - 1) / (2 * ctx.pool.size());
  nc = std::min(kNCMax, std::max<int64_t>(kNR, (nc + kNR - 1) / kNR * kNR));
  const size_t ap_floats = kMC * kKC, bp_floats = kNCMax * kKC;
  ctx.scratch.reserve(arena_bytes<float>(ap_floats) + arena_bytes<float>(bp_floats) + arena_bytes<float>(kKC),
                      "matmul");
  ctx.pool.parallel_for((N + nc - 1) / nc, [&](int64_t c, int thread) {
    ArenaCursor arena(ctx.scratch.arena(thread));
    float* ap = arena.carve<float>(ap_floats);
    float* bp = arena.carve<float>(bp_floats);
    float* row_buf = arena.carve<float>(kKC);
    const int64_t n0 = c * nc, n_cur = std::min(nc, N - n0);
    const int64_t nc_padded = (n_cur + kNR - 1) / kNR * kNR;
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min(kKC, K - pc);
      pack_b(w + n0 * K, K, n_cur, nc_padded, pc, kc, bp, row_buf);
      for (int64_t ic = 0; ic < M; ic += kMC) {
        const int64_t mc = std::min(kMC, M - ic);
        const int64_t mc_padded = (mc + kMR - 1) / kMR * kMR;
        pack_a(a.x + ic * K, K, mc, mc_padded, pc, kc, ap);
        for (int64_t jr = 0; jr < nc_padded; jr += kNR) {
          const int nr = static_cast<int>(std::min<int64_t>(kNR, n_cur - jr));
          for (int64_t ir = 0; ir < mc_padded; ir += kMR) {
            const int mr = static_cast<int>(std::min<int64_t>(kMR, mc - ir));
            vf acc[kMR][2];
            micro_kernel(ap + ir * kc, bp + jr * kc, kc, acc);
            const int64_t at = (ic + ir) * N + n0 + jr;
            store_tile(acc, a.y + at, a.residual ? a.residual + at : nullptr, N, mr, nr, pc > 0);
          }
        }
      }
    }
  });
}

}  // namespace

void matmul(Context& ctx, const MatmulArgs& a) {
  if (a.M <= 0 || a.N <= 0) return;
  if (a.K <= 0) {  // empty sum: y = residual or 0
    for (int64_t i = 0; i < a.M * a.N; ++i) a.y[i] = a.residual ? a.residual[i] : 0.0f;
    return;
  }
  with_storage_type(a.w_dtype, [&](auto* tag) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    if (a.M <= kMaxStreamingRows) {
      matmul_streaming<T>(ctx, a);
    } else {
      matmul_blocked<T>(ctx, a);
    }
  });
}

}  // namespace cpu
}  // namespace paralon
