// Fast precision (--cpu-precision fast) for prefill attention over a bf16 KV cache: the work item of
// attention.cc (one sequence, one KV head, a tile of query tokens × their G query heads) with both
// products as AVX512-BF16 dot products (vdpbf16ps, f32 accumulation):
//   scores = bf16(q · scale) · K   — per key step, the step's K rows are transposed once into
//            [D/2 d-pairs][16 keys] (a 16 × 16 transpose of 32-bit pairs per 32 d), so a row's 16
//            scores are one vector: D/2 broadcast-pair dot products, no horizontal sums;
//   O     += bf16(p) · V           — V rows interleaved by key pairs once per step ([key pair][D] of
//            (V[2j][d], V[2j+1][d])), so each row adds 2 keys per instruction.
// The online softmax (max, exp, running sum, O rescale) is the exact kernel's, in f32. Beyond the exact
// kernel's roundings: q·scale and p rounded to bf16 (2^-9 relative each; K and V are bf16 already).
// Used for prefill items (more than one query token, ≥ kMinBf16AttentionRows rows); decode items keep
// the f32 kernel, as CUDA's decode does.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/kernels.h"
#include "cpu/simd.h"

namespace paralon {
namespace cpu {

#if defined(__AVX512BF16__)

bool attention_bf16_supported() { return __builtin_cpu_supports("avx512bf16"); }

namespace {

constexpr int64_t kKeys = 16;  // keys per step: one vector of scores

// r[i] = column i of the 16 × 16 matrix of 32-bit elements whose rows were r[0..15].
inline void transpose16(__m512 r[16]) {
  __m512 a[16], b[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; ++g) {
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

inline __m512bh bcast_pair(const uint32_t* p) { return (__m512bh)_mm512_set1_epi32(static_cast<int>(*p)); }

// One key step for two query rows (vis0, vis1: keys of the step each row sees; vis1 = 0 for a lone
// last row; a row that sees none keeps its state): scores against the transposed K, online-softmax update, O += p · V. Two rows and C = D/16
// independent O chunks per row keep enough vdpbf16ps chains in flight (their latency, not their
// throughput, bounds a single row). q: the rows' bf16 pairs (stride P), O: their f32 rows (stride 16 C).
template <int C>
inline void rows_step(const uint32_t* q, int64_t P, const __m512* kt, const __m512* vi, int64_t vis0, int64_t vis1,
                      float* O, float* m, float* l) {
  const int64_t vis[2] = {vis0, vis1};
  const int rows = vis1 > 0 ? 2 : 1;
  if (vis0 <= 0 && vis1 <= 0) return;
  __m512 acc[2][4];
  for (int i = 0; i < 2; ++i)
    for (int u = 0; u < 4; ++u) acc[i][u] = _mm512_setzero_ps();
  for (int64_t p = 0; p < P; p += 4)  // P = D/2 is a multiple of 16
    for (int u = 0; u < 4; ++u) {
      const __m512bh k = (__m512bh)kt[p + u];
      acc[0][u] = _mm512_dpbf16_ps(acc[0][u], bcast_pair(q + p + u), k);
      if (rows == 2) acc[1][u] = _mm512_dpbf16_ps(acc[1][u], bcast_pair(q + P + p + u), k);
    }
  alignas(32) uint32_t pp[2][8];  // bf16(p) by key pairs
  __m512 o[2][C];
  int64_t vis_pairs = 0;
  for (int i = 0; i < rows; ++i) {
    if (vis[i] <= 0) {  // no key of this step visible: p = 0, O unchanged
      std::fill(pp[i], pp[i] + 8, 0u);
      for (int c = 0; c < C; ++c) o[i][c] = _mm512_loadu_ps(O + i * 16 * C + c * 16);
      continue;
    }
    const __mmask16 live = static_cast<__mmask16>(vis[i] >= 16 ? 0xFFFF : (1u << vis[i]) - 1);
    const __m512 sc = _mm512_mask_blend_ps(live, _mm512_set1_ps(-std::numeric_limits<float>::infinity()),
                                           _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]), _mm512_add_ps(acc[i][2], acc[i][3])));
    const float m_new = std::max(m[i], _mm512_reduce_max_ps(sc));
    const float alpha = std::exp(m[i] - m_new);  // 0 on the first step (m = -inf)
    const __m512 pr = _mm512_maskz_mov_ps(live, vexp(_mm512_sub_ps(sc, _mm512_set1_ps(m_new))));
    l[i] = l[i] * alpha + _mm512_reduce_add_ps(pr);
    m[i] = m_new;
    _mm256_store_si256(reinterpret_cast<__m256i*>(pp[i]), (__m256i)_mm512_cvtneps_pbh(pr));
    const __m512 av = _mm512_set1_ps(alpha);
    for (int c = 0; c < C; ++c) o[i][c] = _mm512_mul_ps(_mm512_loadu_ps(O + i * 16 * C + c * 16), av);
    vis_pairs = std::max<int64_t>(vis_pairs, (std::min<int64_t>(vis[i], 16) + 1) / 2);
  }
  for (int64_t jp = 0; jp < vis_pairs; ++jp) {  // pairs past a row's visible keys hold p = 0
    const __m512bh p0 = bcast_pair(pp[0] + jp), p1 = bcast_pair(pp[1] + jp);
    for (int c = 0; c < C; ++c) {
      const __m512bh v = (__m512bh)vi[jp * C + c];
      o[0][c] = _mm512_dpbf16_ps(o[0][c], p0, v);
      if (rows == 2) o[1][c] = _mm512_dpbf16_ps(o[1][c], p1, v);
    }
  }
  for (int i = 0; i < rows; ++i)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(O + i * 16 * C + c * 16, o[i][c]);
}

template <int C>
void attend_item(const AttentionArgs& a, int64_t G, int64_t s, int64_t g, int64_t i0, int64_t i1, ArenaCursor arena);

}  // namespace

void attend_item_bf16(const AttentionArgs& a, int64_t G, int64_t s, int64_t g, int64_t i0, int64_t i1, ArenaCursor arena) {
  switch (a.cache.head_dim / 16) {
    case 2: return attend_item<2>(a, G, s, g, i0, i1, arena);
    case 4: return attend_item<4>(a, G, s, g, i0, i1, arena);
    case 6: return attend_item<6>(a, G, s, g, i0, i1, arena);
    case 8: return attend_item<8>(a, G, s, g, i0, i1, arena);
    case 10: return attend_item<10>(a, G, s, g, i0, i1, arena);
    case 12: return attend_item<12>(a, G, s, g, i0, i1, arena);
    case 14: return attend_item<14>(a, G, s, g, i0, i1, arena);
    default: return attend_item<16>(a, G, s, g, i0, i1, arena);  // head_dim ≤ 256 (kMaxBf16AttentionHeadDim)
  }
}

namespace {

template <int C>
void attend_item(const AttentionArgs& a, int64_t G, int64_t s, int64_t g, int64_t i0, int64_t i1, ArenaCursor arena) {
  const KvCacheView& cache = a.cache;
  const int64_t D = cache.head_dim, Hkv = cache.num_kv_heads, Hq = a.num_q_heads, bs = cache.block_size;
  const int64_t q0 = a.q_start_host[s], q_len = a.q_start_host[s + 1] - q0;
  const int64_t first_pos = static_cast<int64_t>(a.kv_len_host[s]) - q_len;
  const int64_t R = (i1 - i0) * G, P = D / 2;  // rows, d-pairs (C = D/16: 16-float chunks of D)

  uint32_t* Q = arena.carve<uint32_t>(R * P);     // bf16(q · scale) as d-pairs
  float* O = arena.carve<float>(R * D);
  float* m = arena.carve<float>(R);
  float* l = arena.carve<float>(R);
  __m512* kt = arena.carve<__m512>(P);              // [d-pair] → 16 keys
  __m512* vi = arena.carve<__m512>(kKeys / 2 * C);  // [key pair][chunk] → 16 d × (key 2j, 2j+1)

  const __m512 scale = _mm512_set1_ps(a.scale);
  for (int64_t r = 0; r < R; ++r) {
    const float* src = a.q + ((q0 + i0 + r / G) * Hq + g * G + r % G) * D;
    for (int64_t d = 0; d < D; d += 32) {
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_mul_ps(_mm512_loadu_ps(src + d + 16), scale),
                                             _mm512_mul_ps(_mm512_loadu_ps(src + d), scale));
      _mm512_storeu_si512(Q + r * P + d / 2, (__m512i)v);
    }
    std::fill(O + r * D, O + (r + 1) * D, 0.0f);
    m[r] = -std::numeric_limits<float>::infinity();
    l[r] = 0.0f;
  }

  const uint16_t* k_cache = static_cast<const uint16_t*>(cache.k);
  const uint16_t* v_cache = static_cast<const uint16_t*>(cache.v);
  const int32_t* block_table = a.block_tables_host + s * a.max_blocks_per_seq;
  const int64_t end_key = first_pos + i1;
  for (int64_t j0 = 0, j1; j0 < end_key; j0 = j1) {
    const int64_t offset = j0 % bs;
    j1 = std::min(end_key, j0 + std::min(kKeys, bs - offset));
    const int64_t n = j1 - j0;
    const int64_t first_row = (static_cast<int64_t>(block_table[j0 / bs]) * bs + offset) * Hkv + g;
    const auto k_row = [&](int64_t j) { return k_cache + (first_row + j * Hkv) * D; };
    const auto v_row = [&](int64_t j) { return v_cache + (first_row + j * Hkv) * D; };
    // K^T by d-pairs: keys past n are zeros (their scores are masked below).
    for (int64_t d = 0; d < D; d += 32) {
      __m512 t[16];
      for (int64_t j = 0; j < kKeys; ++j) t[j] = j < n ? _mm512_loadu_ps(k_row(j) + d) : _mm512_setzero_ps();
      transpose16(t);
      for (int p = 0; p < 16; ++p) kt[d / 2 + p] = t[p];
    }
    // V interleaved by key pairs: (V[2j][d], V[2j+1][d]) in each 32-bit lane; a missing odd key is 0.
    const int64_t pairs = (n + 1) / 2;
    for (int64_t jp = 0; jp < pairs; ++jp) {
      const uint16_t* v0 = v_row(2 * jp);
      const uint16_t* v1 = 2 * jp + 1 < n ? v_row(2 * jp + 1) : nullptr;
      for (int64_t c = 0; c < C; ++c) {
        const __m512i lo = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v0 + c * 16)));
        const __m512i hi = v1 ? _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v1 + c * 16))), 16)
                              : _mm512_setzero_si512();
        vi[jp * C + c] = _mm512_castsi512_ps(_mm512_or_si512(lo, hi));
      }
    }
    const auto visible = [&](int64_t r) { return std::min(j1, first_pos + i0 + r / G + 1) - j0; };
    int64_t r = 0;
    for (; r + 2 <= R; r += 2) rows_step<C>(Q + r * P, P, kt, vi, visible(r), visible(r + 1), O + r * D, m + r, l + r);
    if (r < R) rows_step<C>(Q + r * P, P, kt, vi, visible(r), 0, O + r * D, m + r, l + r);
  }

  for (int64_t r = 0; r < R; ++r) {
    float* dst = a.out + ((q0 + i0 + r / G) * Hq + g * G + r % G) * D;
    const float inv_l = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    for (int64_t d = 0; d < D; ++d) dst[d] = O[r * D + d] * inv_l;
  }
}

}  // namespace

size_t attend_item_bf16_scratch(int64_t rows, int64_t D) {
  return arena_bytes<uint32_t>(rows * D / 2) + arena_bytes<float>(rows * D) + 2 * arena_bytes<float>(rows) +
         arena_bytes<__m512>(D / 2) + arena_bytes<__m512>(kKeys / 2 * (D / 16));
}

#else  // built without AVX512-BF16: the exact kernel runs

bool attention_bf16_supported() { return false; }
void attend_item_bf16(const AttentionArgs&, int64_t, int64_t, int64_t, int64_t, int64_t, ArenaCursor) {}
size_t attend_item_bf16_scratch(int64_t, int64_t) { return 0; }

#endif

}  // namespace cpu
}  // namespace paralon
