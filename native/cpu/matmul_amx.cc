// Fast precision on CPUs with AMX-BF16 (Sapphire Rapids and later): y = x · Wᵀ for bf16 weights with
// x rounded to bf16 once per matmul (round to nearest even, as matmul_bf16.cc) and tdpbf16ps tile
// products accumulated in f32. The only rounding beyond the exact path's is that of x to bf16.
//
// Roles: AMX multiplies A[16 rows][32 bf16] by B[16 k-pairs][16 columns][2 bf16] (B in "VNNI pairs").
// W [N, K] row-major already has A's layout, so W is the A operand, read in place (no packing of the
// large operand, tileloadd with stride K); x is the B operand, packed once per matmul into 1 KiB
// blocks [k-pair][x row][2] (a 16 × 16 transpose of 32-bit pairs) — small next to W. A C tile is
// then [16 W rows][16 x rows] f32, transposed on the way out (in registers, 16 × 16).
// Edges: x rows past M and k past K are zeros in the packed x; W's last K % 32 columns and a last
// group of < 16 W rows are copied into zero-padded per-thread buffers (never read past a row).
// Quantized W (Q8_0/Q4_K/Q5_K/Q6_K), from kMinAmxQuantRows x rows (fewer take the int8 kernels of
// quant_int8.cc): each unit's 16-row groups are dequantized (quant.h's block decode) and rounded to
// bf16 into that per-thread buffer, once per unit and M chunk, then multiplied like bf16 W. Beyond the
// rounding of x, the weights' dequantized values are rounded to bf16 (relative 2⁻⁹, as x).
//
// Blocking: a work unit is 32 W rows (two A tiles; for SwiGLU 16 gate + the matching 16 up rows)
// against a chunk of up to kMChunk x rows, full K per C tile: 2 A + 2 B tiles feed 4 C tiles. Threads
// claim units in N order inside one M chunk, so the chunk's packed x stays in L2 while W streams.
//
// Built with function target attributes (the file's other code stays portable); used only where
// CPUID reports AMX-TILE + AMX-BF16 + AVX512-BF16 and Linux grants the tile data state
// (arch_prctl ARCH_REQ_XCOMP_PERM), once per process. Each pool task loads the tile config itself
// and releases the tiles when done.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/quant.h"
#include "cpu/simd.h"

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define PARALON_AMX_BUILD 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace paralon {
namespace cpu {

#if defined(PARALON_AMX_BUILD)

namespace {

#define AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16")))

constexpr int64_t kMChunk = 256;  // x rows per work unit: 256 · K · 2 bytes of packed x (≤ 1.5 MiB at K = 3072)
constexpr int kSlice = 32;        // bf16 per A row / k per tdpbf16ps
constexpr int kBlock = 512;       // bf16 per packed x block: 16 k-pairs × 16 rows × 2
// Quantized W takes the tiles from 17 x rows: up to 16 the int8 kernels (one pass over the blocks, no
// dequantized copy) measured faster (quant_matmul.cc).
constexpr int64_t kMinAmxQuantRows = 17;

bool amx_granted() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tile = d & (1u << 24), bf16 = d & (1u << 22);
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31)) && (b & (1u << 17));  // F, BW, VL, DQ
  if (!tile || !bf16 || !avx512) return false;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) return false;  // AVX512-BF16
  // Linux enables the 8 KiB tile data state per process on request (kernel ≥ 5.16); refusal → no AMX.
  constexpr long kArchReqXcompPerm = 0x1023, kArchGetXcompPerm = 0x1022, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
  unsigned long long perm = 0;
  return syscall(SYS_arch_prctl, kArchGetXcompPerm, &perm) == 0 && (perm & (1ull << kXfeatureXtiledata));
}

// Palette 1, tiles 0..7 all 16 rows × 64 bytes: C tiles 0-3 (f32 16 × 16), A tiles 4-5, B tiles 6-7.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
  TileConfig() {
    for (int t = 0; t < 8; ++t) colsb[t] = 64, rows[t] = 16;
  }
};

// Where an A tile's rows come from: W rows in place (stride `stride` bf16) for the K / 32 full slices,
// and a zero-padded [16][32] copy of their last K % 32 columns.
struct ASource {
  const uint16_t* w;
  int64_t stride;
  const uint16_t* tail;
};

// r[i] = column i of the 16 × 16 matrix whose rows were r[0..15] (32-bit elements).
AMX_TARGET inline void transpose16(__m512 r[16]) {
  __m512 a[16], b[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; ++g) {  // b[4g + c], 128-bit lane l: column 4l + c of rows 4g..4g+3
    const __m512d a0 = _mm512_castps_pd(a[4 * g]), a1 = _mm512_castps_pd(a[4 * g + 1]);
    const __m512d a2 = _mm512_castps_pd(a[4 * g + 2]), a3 = _mm512_castps_pd(a[4 * g + 3]);
    b[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
    b[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
    b[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
    b[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 e0 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x44), e1 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xEE);
    const __m512 e2 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x44), e3 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(e0, e2, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(e0, e2, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(e1, e3, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(e1, e3, 0xDD);
  }
}

// Packed x block (mb, s) of x rows [16 mb, 16 mb + 16) and k [32 s, 32 s + 32): 16 k-pairs × 16 rows.
AMX_TARGET void pack_x_rows(const float* x, int64_t M, int64_t K, int64_t S, int64_t mb, uint16_t* out) {
  for (int64_t s = 0; s < S; ++s) {
    const int64_t k = s * kSlice;
    const __mmask16 lo = static_cast<__mmask16>(k + 16 <= K ? 0xFFFF : k >= K ? 0 : (1u << (K - k)) - 1);
    const __mmask16 hi = static_cast<__mmask16>(k + 32 <= K ? 0xFFFF : k + 16 >= K ? 0 : (1u << (K - k - 16)) - 1);
    __m512 r[16];
    for (int i = 0; i < 16; ++i) {
      const int64_t m = mb * 16 + i;
      if (m >= M) {
        r[i] = _mm512_setzero_ps();
        continue;
      }
      const float* row = x + m * K + k;
      // 32 floats → 32 bf16 (nearest even) = 16 pairs; masked loads give zeros past K.
      const __m512bh p = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, row + 16), _mm512_maskz_loadu_ps(lo, row));
      r[i] = (__m512)p;
    }
    transpose16(r);  // r[pair] = that k-pair of the 16 rows
    uint16_t* block = out + (mb * S + s) * kBlock;
    for (int p = 0; p < 16; ++p) _mm512_store_ps(reinterpret_cast<float*>(block + p * 32), r[p]);
  }
}

// C tiles [NA W groups][MB x blocks] over S slices (the last one from the tail buffers when K % 32),
// stored to c[(g · MB + b) · 256] as [16 W rows][16 x rows].
template <int NA, int MB>
AMX_TARGET void tile_product(const ASource* as, const uint16_t* xb, int64_t S, bool tail, float* c) {
  _tile_zero(0);
  if (MB > 1) _tile_zero(1);
  if (NA > 1) _tile_zero(2);
  if (NA > 1 && MB > 1) _tile_zero(3);
  const int64_t full = tail ? S - 1 : S;
  const auto step = [&](const uint16_t* a0, int64_t st0, const uint16_t* a1, int64_t st1, int64_t s) {
    _tile_loadd(6, xb + s * kBlock, 64);
    if (MB > 1) _tile_loadd(7, xb + (S + s) * kBlock, 64);
    _tile_loadd(4, a0, st0);
    _tile_dpbf16ps(0, 4, 6);
    if (MB > 1) _tile_dpbf16ps(1, 4, 7);
    if (NA > 1) {
      _tile_loadd(5, a1, st1);
      _tile_dpbf16ps(2, 5, 6);
      if (MB > 1) _tile_dpbf16ps(3, 5, 7);
    }
  };
  const int64_t st0 = as[0].stride * 2, st1 = as[NA - 1].stride * 2;
  for (int64_t s = 0; s < full; ++s) step(as[0].w + s * kSlice, st0, as[NA - 1].w + s * kSlice, st1, s);
  if (tail) step(as[0].tail, 64, as[NA - 1].tail, 64, full);
  _tile_stored(0, c, 64);
  if (MB > 1) _tile_stored(1, c + 256, 64);
  if (NA > 1) _tile_stored(2, c + MB * 256, 64);
  if (NA > 1 && MB > 1) _tile_stored(3, c + MB * 256 + 256, 64);
}

// One unit of work: W rows [n0, n0 + rows) of the output `out` (a part, or the whole matmul), or for
// SwiGLU gate rows [n0, n0 + rows) and the same up rows.
struct Unit {
  int out;  // index into the outputs list
  int64_t n0, rows;
};

struct Output {
  MatmulArgs args;        // y, residual, N (y's row stride), w: the part's W rows, w_dtype: theirs
  const void* up_w;       // SwiGLU: the up half's W rows (args.w: the gate half's); else null
  DType up_dtype;
};

// W rows per unit: 32 (two A tiles), or 16 gate + 16 up rows for SwiGLU.
int64_t unit_rows(const Output& o) { return o.up_w ? 16 : 32; }

struct Scratch {
  uint16_t* tail;  // [2][16][32] zero-padded last K % 32 columns of each A group
  uint16_t* rows;  // [2][16][K] zero-padded copy of a short last group of W rows (< 16 rows), or of
                   // dequantized rows
  float* decoded;  // [K] one quantized W row dequantized, before rounding to bf16
  float* c;        // [4][256] C tiles
};

// dst[0 .. K) = row (quantized, K values) dequantized and rounded to bf16 (nearest even).
AMX_TARGET void dequantize_row_bf16(DType t, const void* row, int64_t K, float* decoded, uint16_t* dst) {
  decode_quantized(t, row, 0, K, decoded);
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    const __m512bh p = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(decoded + k + 16), _mm512_loadu_ps(decoded + k));
    _mm512_storeu_si512(dst + k, (__m512i)p);
  }
  for (; k < K; ++k) dst[k] = to_bf16(decoded[k]).bits;
}

// Sets up group g's A source for W rows [n, n + count) of `w` (count ≤ 16, dtype bf16 or quantized).
void a_source(const void* w_any, DType dtype, int64_t K, int64_t n, int64_t count, int g, const Scratch& sc, ASource& src) {
  const int64_t full = K / kSlice * kSlice;
  uint16_t* tail = sc.tail + g * 16 * kSlice;
  const uint16_t* w = static_cast<const uint16_t*>(w_any);
  if (dtype_quantized(dtype)) {  // dequantize the rows, zero rows past them (their products are never stored)
    uint16_t* rows = sc.rows + g * 16 * K;
    const size_t row_bytes = dtype_bytes(dtype, K);
    for (int64_t i = 0; i < count; ++i)
      dequantize_row_bf16(dtype, static_cast<const uint8_t*>(w_any) + (n + i) * row_bytes, K, sc.decoded, rows + i * K);
    std::memset(rows + count * K, 0, (16 - count) * K * sizeof(uint16_t));
    w = rows;
    n = 0;
    src.w = rows;
  } else if (count < 16) {  // copy the rows, zero rows past them (their products are never stored)
    uint16_t* rows = sc.rows + g * 16 * K;
    std::memcpy(rows, w + n * K, count * K * sizeof(uint16_t));
    std::memset(rows + count * K, 0, (16 - count) * K * sizeof(uint16_t));
    src.w = rows;
  } else {
    src.w = w + n * K;
  }
  src.stride = K;
  if (full < K) {
    std::memset(tail, 0, 16 * kSlice * sizeof(uint16_t));
    for (int64_t i = 0; i < count; ++i) std::memcpy(tail + i * kSlice, w + (n + i) * K + full, (K - full) * sizeof(uint16_t));
  }
  src.tail = tail;
}

// y rows [m0, m0 + rows_m) of unit u from the C tiles (c: [groups][blocks][16 W rows][16 x rows]).
AMX_TARGET void store_unit(const Output& o, const Unit& u, int64_t m_base, int mb_count, int groups, const float* c) {
  const MatmulArgs& a = o.args;
  const int64_t N = a.N;
  for (int b = 0; b < mb_count; ++b) {
    const int64_t m0 = m_base + b * 16;
    const int64_t mrows = std::min<int64_t>(16, a.M - m0);
    if (mrows <= 0) break;
    __m512 t[2][16];
    for (int g = 0; g < groups; ++g) {
      const float* tile = c + (g * mb_count + b) * 256;
      for (int i = 0; i < 16; ++i) t[g][i] = _mm512_load_ps(tile + i * 16);
      transpose16(t[g]);  // t[g][x row] = 16 W rows of group g
    }
    if (o.up_w) {  // group 0 gate, group 1 up: y = silu(gate)·up
      alignas(64) float gate[16], up[16];
      for (int64_t i = 0; i < mrows; ++i) {
        _mm512_store_ps(gate, t[0][i]);
        _mm512_store_ps(up, t[1][i]);
        silu_mul_row(gate, up, a.y + (m0 + i) * N + u.n0, u.rows);
      }
      continue;
    }
    for (int g = 0; g < groups; ++g) {
      const int64_t n = u.n0 + g * 16, cols = std::min<int64_t>(16, u.n0 + u.rows - n);
      const __mmask16 mask = static_cast<__mmask16>((1u << cols) - 1);
      for (int64_t i = 0; i < mrows; ++i) {
        const int64_t at = (m0 + i) * N + n;
        __m512 v = t[g][i];
        if (a.residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, a.residual + at));
        _mm512_mask_storeu_ps(a.y + at, mask, v);
      }
    }
  }
}

AMX_TARGET void run_unit(const Output& o, const Unit& u, const uint16_t* xp, int64_t S, int64_t m_begin, int64_t m_end,
                         const Scratch& sc) {
  const MatmulArgs& a = o.args;
  const int64_t K = a.K;
  const bool tail = K % kSlice != 0;
  ASource as[2];
  int groups;
  if (o.up_w) {
    a_source(a.w, a.w_dtype, K, u.n0, u.rows, 0, sc, as[0]);
    a_source(o.up_w, o.up_dtype, K, u.n0, u.rows, 1, sc, as[1]);
    groups = 2;
  } else {
    groups = u.rows > 16 ? 2 : 1;
    a_source(a.w, a.w_dtype, K, u.n0, std::min<int64_t>(16, u.rows), 0, sc, as[0]);
    if (groups == 2) a_source(a.w, a.w_dtype, K, u.n0 + 16, u.rows - 16, 1, sc, as[1]);
  }
  for (int64_t m = m_begin; m < m_end; m += 32) {
    const int mbs = m + 16 < m_end ? 2 : 1;
    const uint16_t* xb = xp + (m / 16) * S * kBlock;
    if (groups == 2 && mbs == 2) tile_product<2, 2>(as, xb, S, tail, sc.c);
    else if (groups == 2) tile_product<2, 1>(as, xb, S, tail, sc.c);
    else if (mbs == 2) tile_product<1, 2>(as, xb, S, tail, sc.c);
    else tile_product<1, 1>(as, xb, S, tail, sc.c);
    store_unit(o, u, m, mbs, groups, sc.c);
  }
}

AMX_TARGET void load_tiles() {
  static const TileConfig config;
  _tile_loadconfig(&config);
}
AMX_TARGET void release_tiles() { _tile_release(); }

}  // namespace

bool amx_supported() {
  static const bool ok = amx_granted();
  return ok;
}

bool matmul_amx(Context& ctx, const MatmulArgs& a) {
  const bool swiglu = a.epilogue == MatmulEpilogue::Swiglu;
  // Every part bf16, or quantized with enough x rows to leave the int8 kernels behind.
  bool any_quantized = false;
  const auto takes = [&](DType t) {
    any_quantized = any_quantized || dtype_quantized(t);
    return t == DType::BF16 || dtype_quantized(t);
  };
  if (a.num_parts > 0) {
    for (int j = 0; j < a.num_parts; ++j)
      if (!takes(a.part_w_dtype[j])) return false;
  } else if (!takes(a.w_dtype)) {
    return false;
  }
  if (a.K <= 0 || a.M < (any_quantized ? kMinAmxQuantRows : kMinAmxRows) || a.N <= 0) return false;
  const int64_t M = a.M, K = a.K, S = (K + kSlice - 1) / kSlice, Mp = (M + 15) / 16 * 16;

  // Outputs and their 32-row (SwiGLU: 16 gate + 16 up) units.
  Output outs[kMaxMatmulParts];
  int num_outs = 0;
  if (swiglu) {
    outs[0].args = swiglu_half(a, 0, a.y);
    const MatmulArgs up = swiglu_half(a, 1, nullptr);
    outs[0].up_w = up.w;
    outs[0].up_dtype = up.w_dtype;
    num_outs = 1;
  } else if (a.num_parts > 0) {
    for (int j = 0; j < a.num_parts; ++j) outs[num_outs++] = {matmul_part(a, j), nullptr, DType::BF16};
  } else {
    outs[num_outs++] = {a, nullptr, DType::BF16};
  }
  int64_t first_unit[kMaxMatmulParts + 1] = {0};
  for (int j = 0; j < num_outs; ++j) first_unit[j + 1] = first_unit[j] + (outs[j].args.N + unit_rows(outs[j]) - 1) / unit_rows(outs[j]);
  const auto unit = [&](int64_t i) {
    int j = 0;
    while (first_unit[j + 1] <= i) ++j;
    const int64_t n0 = (i - first_unit[j]) * unit_rows(outs[j]);
    return Unit{j, n0, std::min(unit_rows(outs[j]), outs[j].args.N - n0)};
  };

  // x → bf16 blocks, one 16-row block per task.
  if (static_cast<int64_t>(ctx.bf16_x.size()) < Mp * S * kBlock / 16 + kBlock) ctx.bf16_x.resize(Mp * S * kBlock / 16 + kBlock);
  uint16_t* xp = ctx.bf16_x.data();
  xp += (64 - reinterpret_cast<uintptr_t>(xp) % 64) % 64 / sizeof(uint16_t);  // 64-byte aligned blocks
  ctx.pool.parallel_for(Mp / 16, [&](int64_t mb, int) { pack_x_rows(a.x, M, K, S, mb, xp); });

  const size_t tail_elems = 2 * 16 * kSlice, rows_elems = 2 * 16 * K, c_floats = 4 * 256;
  const size_t decoded_floats = any_quantized ? K : 1;
  ctx.scratch.reserve(arena_bytes<uint16_t>(tail_elems) + arena_bytes<uint16_t>(rows_elems) + arena_bytes<float>(decoded_floats) +
                          arena_bytes<float>(c_floats),
                      "matmul");
  const int64_t num_units = first_unit[num_outs], chunks_m = (M + kMChunk - 1) / kMChunk;
  ctx.pool.parallel_for(chunks_m * num_units, [&](int64_t c, int thread) {
    ArenaCursor arena(ctx.scratch.arena(thread));
    const Scratch sc{arena.carve<uint16_t>(tail_elems), arena.carve<uint16_t>(rows_elems), arena.carve<float>(decoded_floats),
                     arena.carve<float>(c_floats)};
    const int64_t mc = c / num_units;
    const Unit u = unit(c % num_units);
    load_tiles();
    run_unit(outs[u.out], u, xp, S, mc * kMChunk, std::min(M, (mc + 1) * kMChunk), sc);
    release_tiles();
  });
  return true;
}

#else  // not x86-64 Linux with GCC/Clang: no AMX

bool amx_supported() { return false; }
bool matmul_amx(Context&, const MatmulArgs&) { return false; }

#endif

}  // namespace cpu
}  // namespace paralon
