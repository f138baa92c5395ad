// y[M, N] = x[M, K] · W[N, K]ᵀ (+ residual), W in f32, bf16 or f16, read in place.
//
// Two kernels:
// - Streaming (M ≤ kMaxStreamingRows: decode and small batches): memory-bound, so the only goal
//   is to read W once at full bandwidth. Threads own contiguous ranges of W rows; each step takes
//   4-8 W rows (1 for M = 1 with short rows, see stream_single) and dots them with every x row
//   (the step's W rows stay in L1 across x rows),
//   widening bf16/f16 on load (a 16-bit shift for bf16). Traffic: N·K·sizeof(W) bytes of W,
//   M·K·4 of x per chunk (cache-resident), M·N·4 of y.
//   Mid-size M (kMaxStreamingRows < M ≤ kMaxDotRows: batched decode) runs the same loop with each
//   step's 4 W rows widened to f32 once into an L1/L2 buffer and dotted with x in 4-row register
//   tiles (4 × 4 accumulators on AVX-512): no packing, widening shared by all M rows.
// - Blocked GEMM (M > kMaxDotRows, i.e. prefill): compute-bound. Classic GotoBLAS/BLIS blocking, per
//   chunk of nc W rows (one chunk per claim, so threads split N):
//     for each kc-slice of K: pack W[nc × kc] as f32 "B" slivers [kc][kNR]  (≤ 128 KB, L2)
//       for each mc block of x rows: pack x[mc × kc] as "A" panels [kc][kMR]  (≤ 120 KB, L2)
//         for each B sliver (16 KB, stays in L1): for each A panel: kMR × kNR register tile.
//   W is widened once per (chunk, kc) and reused by all M rows; the micro-kernel keeps a
//   kMR × 2-vector accumulator tile in registers (6 × 16 on AVX2: 12 accumulators, 2 B vectors
//   and one broadcast = 15 of 16 ymm registers).
//
// SwiGLU epilogue (MatmulEpilogue::Swiglu): the streaming kernels run per 32-column tile of gate and
// of up rows into L1 tiles; the blocked GEMM packs gate and up rows side by side in one B panel and
// keeps each chunk's tiles in a per-thread buffer; either way silu(gate)·up is what is stored.
#include <algorithm>
#include <type_traits>

#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/quant.h"
#include "cpu/simd.h"

namespace paralon {
namespace cpu {

namespace {

// ---------------------------------------------------------------------------------------------
// Streaming kernel (small M)

// kMaxStreamingRows (gemm.h): above it, packing W (an N·K scatter) pays off.
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

// x rows per tile of the mid-size path: 4 × 4 accumulators (+ 4 x vectors and one W vector) fit
// AVX-512's 32 registers; 2 × 4 fit AVX2's 16.
constexpr int kMidMR = kLanes == 16 ? 4 : 2;

// y rows [0, M) × columns [n, n + NR) from NR W rows at `wr` (stride K): x rows in tiles of MR.
template <int MR, int NR, class T>
inline void tile_rows(const MatmulArgs& a, const T* wr, int64_t n, int64_t& m) {
  const int64_t N = a.N, K = a.K;
  for (; a.M - m >= MR; m += MR) {
    float out[MR][NR];
    dot_tile<MR, NR>(a.x + m * K, wr, K, out);
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) {
        const int64_t at = (m + i) * N + n + j;
        a.y[at] = out[i][j] + (a.residual ? a.residual[at] : 0.0f);
      }
  }
}

// y rows [0, M) × columns [n, n + NR): x rows in tiles of kMidMR (M > kMaxStreamingRows), or pairs
// while NR ≤ 4, then singly.
template <int NR, class T>
inline void stream_rows(const MatmulArgs& a, const T* wr, int64_t n) {
  int64_t m = 0;
  if constexpr (NR <= kStreamWMulti) {
    if (a.M > kMaxStreamingRows) tile_rows<kMidMR, NR>(a, wr, n, m);
    tile_rows<2, NR>(a, wr, n, m);
  }
  tile_rows<1, NR>(a, wr, n, m);
}

// M = 1 with short rows: W rows one after another, so each thread reads one sequential stream (the
// access pattern the memory read ceiling is measured with); four accumulators hide the FMA latency.
// Measured on a 2-core EPYC (AVX2): 15-25 % faster than 8 interleaved rows at K = 1024 (q_proj,
// gate_proj, lm_head of Qwen3-0.6B), 20-40 % slower at K ≥ 2048, where the 8-row steps stay.
constexpr int64_t kSingleStreamMaxK = 2048;
template <class T>
void stream_single(const MatmulArgs& a, const T* w, int64_t n0, int64_t n1) {
  const int64_t K = a.K;
  for (int64_t n = n0; n < n1; ++n) {
    const T* row = w + n * K;
    vf acc[4] = {vzero(), vzero(), vzero(), vzero()};
    int64_t k = 0;
    for (; k + 4 * kLanes <= K; k += 4 * kLanes)
      for (int u = 0; u < 4; ++u) acc[u] = vfma(vload(a.x + k + u * kLanes), vload(row + k + u * kLanes), acc[u]);
    for (; k + kLanes <= K; k += kLanes) acc[0] = vfma(vload(a.x + k), vload(row + k), acc[0]);
    float sum = vreduce_add(vadd(vadd(acc[0], acc[1]), vadd(acc[2], acc[3])));
    for (; k < K; ++k) sum += a.x[k] * to_f32(row[k]);
    a.y[n] = sum + (a.residual ? a.residual[n] : 0.0f);
  }
}

template <int NR, class T>
void stream_range(const MatmulArgs& a, const T* w, int64_t n0, int64_t n1) {
  const int64_t K = a.K;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) stream_rows<NR>(a, w + n * K, n);
  for (; n < n1; ++n) stream_rows<1>(a, w + n * K, n);
}

// M > kMaxStreamingRows: each step's kStreamWMulti W rows are widened to f32 once into `wbuf`
// (kStreamWMulti · K floats, L1/L2) and dotted with every x tile from there, so the widening is
// shared by all M rows and nothing is packed or transposed (the blocked GEMM's packing costs as
// much as its multiply at M ≈ 16).
template <class T>
void stream_range_widened(const MatmulArgs& a, const T* w, int64_t n0, int64_t n1, float* wbuf) {
  const int64_t K = a.K;
  for (int64_t n = n0; n < n1; n += kStreamWMulti) {
    const int64_t nr = std::min<int64_t>(kStreamWMulti, n1 - n);
    const float* wf;
    if constexpr (std::is_same_v<T, float>) {
      wf = w + n * K;
    } else {
      for (int64_t r = 0; r < nr; ++r) widen_row(w + (n + r) * K, wbuf + r * K, K);
      wf = wbuf;
    }
    if (nr == kStreamWMulti) {
      stream_rows<kStreamWMulti>(a, wf, n);
    } else {
      for (int64_t r = 0; r < nr; ++r) stream_rows<1>(a, wf + r * K, n + r);
    }
  }
}

// wbuf: kStreamWMulti · K floats of scratch when M > kMaxStreamingRows.
template <class T>
void stream_chunk(const MatmulArgs& a, int64_t n0, int64_t n1, float* wbuf) {
  const T* w = static_cast<const T*>(a.w);
  if (a.M == 1 && a.K < kSingleStreamMaxK) {
    stream_single(a, w, n0, n1);
  } else if (a.M == 1) {
    stream_range<kStreamWSingle>(a, w, n0, n1);
  } else if (a.M <= kMaxStreamingRows) {
    stream_range<kStreamWMulti>(a, w, n0, n1);
  } else {
    stream_range_widened(a, w, n0, n1, wbuf);
  }
}

// Floats of per-thread scratch stream_chunk needs for M x rows.
inline size_t stream_scratch_floats(int64_t M, int64_t K) {
  return M > kMaxStreamingRows ? static_cast<size_t>(kStreamWMulti * K) : 0;
}

// Threads split W's rows over all parts of a split output at once (one parallel_for per op): a chunk
// that straddles a part boundary runs as two pieces, each against its own part's W rows and output.
template <class T>
void matmul_streaming(Context& ctx, const MatmulArgs& a) {
  const int64_t N = a.N;
  MatmulArgs parts[kMaxMatmulParts];
  for (int j = 0; j < a.num_parts; ++j) parts[j] = matmul_part(a, j);
  int64_t rows = chunk_size(N, ctx.pool, 16);
  rows = (rows + kStreamWSingle - 1) / kStreamWSingle * kStreamWSingle;
  const size_t wbuf_floats = stream_scratch_floats(a.M, a.K);
  if (wbuf_floats > 0) ctx.scratch.reserve(arena_bytes<float>(wbuf_floats), "matmul");
  ctx.pool.parallel_for((N + rows - 1) / rows, [&](int64_t c, int thread) {
    float* wbuf = wbuf_floats > 0 ? ArenaCursor(ctx.scratch.arena(thread)).carve<float>(wbuf_floats) : nullptr;
    const int64_t n0 = c * rows, n1 = std::min(N, n0 + rows);
    if (a.num_parts == 0) return stream_chunk<T>(a, n0, n1, wbuf);
    for (int j = 0; j < a.num_parts; ++j) {
      const int64_t lo = std::max(n0, a.part_start[j]), hi = std::min(n1, a.part_start[j + 1]);
      if (lo < hi) stream_chunk<T>(parts[j], lo - a.part_start[j], hi - a.part_start[j], wbuf);
    }
  });
}

}  // namespace

// Swiglu epilogue with the streaming kernels (M ≤ kMaxDotRows): threads split the N/2 output
// columns; each step runs the streaming kernel on kSwigluCols gate rows and the same up rows of W
// into two tiles and stores silu(gate)·up, so the [M, N] product never reaches memory.
constexpr int64_t kSwigluCols = 32;
void matmul_swiglu_streaming(Context& ctx, const MatmulArgs& a, size_t scratch_floats, const StreamRows& rows) {
  const int64_t M = a.M, I = a.N / 2;
  const MatmulArgs halves[2] = {swiglu_half(a, 0, nullptr), swiglu_half(a, 1, nullptr)};
  int64_t cols = chunk_size(I, ctx.pool, kSwigluCols);
  cols = (cols + kSwigluCols - 1) / kSwigluCols * kSwigluCols;
  const size_t tile_floats = static_cast<size_t>(M * kSwigluCols);
  ctx.scratch.reserve(2 * arena_bytes<float>(tile_floats) + arena_bytes<float>(scratch_floats), "matmul");
  ctx.pool.parallel_for((I + cols - 1) / cols, [&](int64_t c, int thread) {
    ArenaCursor arena(ctx.scratch.arena(thread));
    float* tile[2] = {arena.carve<float>(tile_floats), arena.carve<float>(tile_floats)};
    float* scratch = scratch_floats > 0 ? arena.carve<float>(scratch_floats) : nullptr;
    const int64_t n1 = std::min(I, (c + 1) * cols);
    for (int64_t n = c * cols; n < n1; n += kSwigluCols) {
      const int64_t width = std::min(kSwigluCols, n1 - n);
      for (int h = 0; h < 2; ++h) {  // W rows [n, n + width) of this half into a [M, width] tile
        MatmulArgs t = halves[h];
        t.w = static_cast<const char*>(t.w) + dtype_bytes(t.w_dtype, n * a.K);
        t.N = width;
        t.y = tile[h];
        rows(t, 0, width, scratch);
      }
      for (int64_t m = 0; m < M; ++m) silu_mul_row(tile[0] + m * width, tile[1] + m * width, a.y + m * I + n, width);
    }
  });
}

namespace {

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

#if defined(__AVX2__)
// Eight consecutive W elements widened to f32 (AVX2 registers also in AVX-512 builds).
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const bf16* p) {
  const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}
inline __m256 load8(const f16* p) {
#if defined(__F16C__)
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#else
  alignas(32) float t[8];
  for (int i = 0; i < 8; ++i) t[i] = to_f32(p[i]);
  return _mm256_load_ps(t);
#endif
}

// In-register 8×8 transpose: r[i] holds row i before, column i after (unpack pairs, shuffle
// quads, swap 128-bit halves).
inline void transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}
#endif

// B slivers: bp[s][k][c] = W[s·kNR + c][pc + k] as f32, zero for rows ≥ n_valid. Eight W rows at
// a time: 8×8 blocks are loaded row-wise, transposed in registers and stored as 8 contiguous
// floats per k (a scalar scatter of every element cost more than the micro-kernel at M ≤ 64).
template <class T>
void pack_b(const T* w, int64_t K, int64_t n_valid, int64_t nc_padded, int64_t pc, int64_t kc, float* bp,
            float* row_buf) {
  static_assert(kNR % 8 == 0, "slivers are made of 8-row groups");
  for (int64_t n0 = 0; n0 < nc_padded; n0 += 8) {
    float* dst = bp + (n0 / kNR) * kc * kNR + n0 % kNR;
    const T* src = w + n0 * K + pc;
    if (n0 + 8 <= n_valid) {
      int64_t k = 0;
#if defined(__AVX2__)
      for (; k + 8 <= kc; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = load8(src + i * K + k);
        transpose8(r);
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + (k + j) * kNR, r[j]);
      }
#endif
      for (; k < kc; ++k)
        for (int i = 0; i < 8; ++i) dst[k * kNR + i] = to_f32(src[i * K + k]);
      continue;
    }
    for (int64_t i = 0; i < 8; ++i) {  // the last, partial group: valid rows, then zeros
      if (n0 + i < n_valid) {
        widen_row(src + i * K, row_buf, kc);
        for (int64_t k = 0; k < kc; ++k) dst[k * kNR + i] = row_buf[k];
      } else {
        for (int64_t k = 0; k < kc; ++k) dst[k * kNR + i] = 0.0f;
      }
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

// pack(n0, n_cur, nc_padded, pc, kc, bp, rows_buf) fills the B slivers of W rows [n0, n0 + n_cur),
// K slice [pc, pc + kc); rows_buf holds 8 · kKC floats of scratch.
// Swiglu epilogue: a chunk covers output columns [n0, n0 + n_cur); its B panel is gate rows
// [n0, n0 + n_cur) then up rows N/2 + [n0, n0 + n_cur) (pack is called for each half), the tiles go
// to a per-thread [M, 2 · nc_padded] buffer, and after the last K slice silu(gate)·up goes to y.
template <class PackB>
void matmul_blocked(Context& ctx, const MatmulArgs& a, PackB&& pack) {
  const bool swiglu = a.epilogue == MatmulEpilogue::Swiglu;
  const int64_t M = a.M, K = a.K, N = swiglu ? a.N / 2 : a.N;  // N: output columns
  // Chunk width: up to kNCMax W rows, smaller when N is small so every thread gets work.
  const int64_t nc_max = swiglu ? kNCMax / 2 : kNCMax;
  int64_t nc = (N + 2 * ctx.pool.size() - 1) / (2 * ctx.pool.size());
  nc = std::min(nc_max, std::max<int64_t>(kNR, (nc + kNR - 1) / kNR * kNR));
  const size_t ap_floats = kMC * kKC, bp_floats = kNCMax * kKC, rows_floats = 8 * kKC;
  const size_t y_floats = swiglu ? static_cast<size_t>(M) * 2 * nc : 0;
  ctx.scratch.reserve(arena_bytes<float>(ap_floats) + arena_bytes<float>(bp_floats) + arena_bytes<float>(rows_floats) +
                          arena_bytes<float>(y_floats),
                      "matmul");
  ctx.pool.parallel_for((N + nc - 1) / nc, [&](int64_t c, int thread) {
    ArenaCursor arena(ctx.scratch.arena(thread));
    float* ap = arena.carve<float>(ap_floats);
    float* bp = arena.carve<float>(bp_floats);
    float* rows_buf = arena.carve<float>(rows_floats);
    const int64_t n0 = c * nc, n_cur = std::min(nc, N - n0);
    const int64_t nc_padded = (n_cur + kNR - 1) / kNR * kNR;
    // Tiles go to y[:, n0 …) (stride N), or to the gate | up buffer (stride 2 · nc_padded).
    float* y = swiglu ? arena.carve<float>(y_floats) : a.y + n0;
    const int64_t ldy = swiglu ? 2 * nc_padded : N;
    const int64_t panel = swiglu ? 2 * nc_padded : nc_padded;
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min(kKC, K - pc);
      pack(n0, n_cur, nc_padded, pc, kc, bp, rows_buf);
      if (swiglu) pack(a.N / 2 + n0, n_cur, nc_padded, pc, kc, bp + nc_padded * kc, rows_buf);
      for (int64_t ic = 0; ic < M; ic += kMC) {
        const int64_t mc = std::min(kMC, M - ic);
        const int64_t mc_padded = (mc + kMR - 1) / kMR * kMR;
        pack_a(a.x + ic * K, K, mc, mc_padded, pc, kc, ap);
        for (int64_t jr = 0; jr < panel; jr += kNR) {
          const int nr = static_cast<int>(std::min<int64_t>(kNR, n_cur - jr % nc_padded));
          for (int64_t ir = 0; ir < mc_padded; ir += kMR) {
            const int mr = static_cast<int>(std::min<int64_t>(kMR, mc - ir));
            vf acc[kMR][2];
            micro_kernel(ap + ir * kc, bp + jr * kc, kc, acc);
            const float* residual = a.residual ? a.residual + (ic + ir) * N + n0 + jr : nullptr;
            store_tile(acc, y + (ic + ir) * ldy + jr, residual, ldy, mr, nr, pc > 0);
          }
        }
      }
    }
    if (swiglu)
      for (int64_t m = 0; m < M; ++m) silu_mul_row(y + m * ldy, y + m * ldy + nc_padded, a.y + m * N + n0, n_cur);
  });
}

}  // namespace

namespace {

// y = silu(gate)·up of the product (MatmulEpilogue::Swiglu), gate and up W in one storage type.
void matmul_swiglu(Context& ctx, const MatmulArgs& a) {
  if (a.K <= 0) {  // empty sums: silu(0)·0
    std::fill(a.y, a.y + a.M * (a.N / 2), 0.0f);
    return;
  }
  if (dtype_quantized(a.w_dtype) || (a.num_parts == 2 && dtype_quantized(a.part_w_dtype[0]))) {
    matmul_quantized(ctx, a);
    return;
  }
  const MatmulArgs gate = swiglu_half(a, 0, nullptr), up = swiglu_half(a, 1, nullptr);
  with_storage_type(gate.w_dtype, [&](auto* tag) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    if (a.M <= kMaxDotRows) {
      matmul_swiglu_streaming(ctx, a, stream_scratch_floats(a.M, a.K),
                              [](const MatmulArgs& t, int64_t n0, int64_t n1, float* wbuf) { stream_chunk<T>(t, n0, n1, wbuf); });
      return;
    }
    const T* wg = static_cast<const T*>(gate.w);
    const T* wu = static_cast<const T*>(up.w);
    const int64_t I = gate.N, K = a.K;
    matmul_blocked(ctx, a, [&](int64_t n0, int64_t n_cur, int64_t nc_padded, int64_t pc, int64_t kc, float* bp,
                               float* rows_buf) {
      const T* w = n0 < I ? wg + n0 * K : wu + (n0 - I) * K;
      pack_b(w, K, n_cur, nc_padded, pc, kc, bp, rows_buf);
    });
  });
}

}  // namespace

void matmul(Context& ctx, const MatmulArgs& a) {
  if (a.M <= 0 || a.N <= 0) return;
  if (a.K <= 0 && a.epilogue == MatmulEpilogue::None) {  // empty sum: y = residual or 0
    if (a.num_parts > 0) {
      for (int j = 0; j < a.num_parts; ++j) matmul(ctx, matmul_part(a, j));
      return;
    }
    for (int64_t i = 0; i < a.M * a.N; ++i) a.y[i] = a.residual ? a.residual[i] : 0.0f;
    return;
  }
  if (ctx.amx && matmul_amx(ctx, a)) return;
  if (ctx.bf16_dot && matmul_bf16_dot(ctx, a)) return;
  if (a.epilogue == MatmulEpilogue::Swiglu) return matmul_swiglu(ctx, a);
  bool one_dtype = true;  // one thread-pool pass over every part needs one kernel type
  for (int j = 0; j < a.num_parts; ++j) one_dtype = one_dtype && a.part_w_dtype[j] == a.w_dtype;
  if (a.num_parts > 0 && (!one_dtype || dtype_quantized(a.w_dtype))) {  // a pass per part
    for (int j = 0; j < a.num_parts; ++j) matmul(ctx, matmul_part(a, j));
    return;
  }
  if (dtype_quantized(a.w_dtype)) {
    matmul_quantized(ctx, a);
    return;
  }
  with_storage_type(a.w_dtype, [&](auto* tag) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    if (a.M <= kMaxDotRows) {
      matmul_streaming<T>(ctx, a);
    } else {  // compute-bound: a pass per part of a split output costs nothing measurable
      const auto blocked = [&](const MatmulArgs& p) {
        const T* w = static_cast<const T*>(p.w);
        matmul_blocked(ctx, p, [&](int64_t n0, int64_t n_cur, int64_t nc_padded, int64_t pc, int64_t kc, float* bp,
                                   float* rows_buf) { pack_b(w + n0 * p.K, p.K, n_cur, nc_padded, pc, kc, bp, rows_buf); });
      };
      if (a.num_parts == 0) {
        blocked(a);
      } else {
        for (int j = 0; j < a.num_parts; ++j) blocked(matmul_part(a, j));
      }
    }
  });
}

void matmul_blocked_decoded(Context& ctx, const MatmulArgs& a, const DecodeRows& decode) {
  matmul_blocked(ctx, a, [&](int64_t n0, int64_t n_cur, int64_t nc_padded, int64_t pc, int64_t kc, float* bp,
                             float* rows_buf) {
    // Eight W rows at a time: decoded row-wise into rows_buf (zeros past the last row), then packed
    // like f32 rows.
    for (int64_t g = 0; g < nc_padded; g += 8) {
      const int64_t count = std::max<int64_t>(0, std::min<int64_t>(8, n_cur - g));
      if (count > 0) decode(n0 + g, count, pc, kc, rows_buf);
      std::fill(rows_buf + count * kc, rows_buf + 8 * kc, 0.0f);
      // A full group of 8 rows: pack_b needs no partial-row buffer.
      pack_b(rows_buf, kc, 8, 8, 0, kc, bp + (g / kNR) * kc * kNR + g % kNR, nullptr);
    }
  });
}

}  // namespace cpu
}  // namespace paralon
