// Causal attention over the paged KV cache (varlen batch, GQA), flash-attention style on the CPU.
//
// Work item = (sequence, KV head g, tile of query tokens). The item's rows are its tokens × the
// G = Hq/Hkv query heads that read KV head g, so each K/V row is loaded (and widened from bf16, f16 or
// fp8 · scale) once per item for all of them. Keys are visited in steps of up to kKeysPerStep tokens that never
// cross a cache block (one block-table lookup per step, rows a fixed stride apart); per step and
// row: scores = q·k (q pre-scaled; on AVX2, 8 keys per transposing reduction — 1.15-1.25× faster
// decode than a horizontal sum per key, measured at 512 and 4,096 tokens), then the online-softmax update
//   m' = max(m, max scores), O = O·e^(m−m') + Σ e^(s−m')·v, l = l·e^(m−m') + Σ e^(s−m'),
// all in f32; out = O / l at the end. Causality: row at position p only sees keys ≤ p.
// Items are claimed dynamically; within a sequence the latest (longest) query tiles go first.
// Prefetch: one head's K (and V) rows are D-element runs Hkv·D elements apart (the cache is
// token-major), too sparse within a page for the hardware prefetchers to follow, so a cold cache (as
// it is in a decode step, after the other layers' weights streamed through) would be read one miss
// at a time; each step therefore prefetches the next step's rows before computing on its own.
// Traffic per item: its keys' K and V rows once (2·kv·D·sizeof(cache)), q and out once.
// Under fast precision, prefill items over a bf16 cache take attention_bf16.cc's bf16 dot products.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "cpu/kernels.h"
#include "cpu/simd.h"
#include "fp8_e4m3.h"

namespace paralon {
namespace cpu {

namespace {

constexpr int64_t kKeysPerStep = 16;  // K + V tiles of 16 × D f32: 16 KB at D = 128, L1-resident
constexpr int64_t kRowsPerItem = 32;  // query rows (tokens × group heads) per work item

#if defined(__AVX2__) && !defined(__AVX512F__)
// The scores of 8 keys at once: a vector of partial sums per key over D, then one transposing
// reduction (a tree of horizontal adds) instead of 8 separate horizontal sums.
inline void dot8(const float* q, const float* const* k, int64_t D, float* out) {
  __m256 acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) {
    const __m256 qv = _mm256_loadu_ps(q + d);
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[j] + d), acc[j]);
  }
  // hadd(a, b) = [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, a6+a7, b4+b5, b6+b7]: two rounds leave, per
  // 128-bit half, the sums of elements 0-3 (low half) and 4-7 (high half) of four keys each.
  const __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
  const __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
  const __m256 sum = _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20), _mm256_permute2f128_ps(s0123, s4567, 0x31));
  _mm256_storeu_ps(out, sum);
  for (; d < D; ++d)
    for (int j = 0; j < 8; ++j) out[j] += q[d] * k[j][d];
}
#endif

// p[0..n) = q · k_rows[0..n).
inline void scores(const float* q, const float* const* k_rows, int64_t n, int64_t D, float* p) {
  int64_t j = 0;
#if defined(__AVX2__) && !defined(__AVX512F__)
  for (; j + 8 <= n; j += 8) dot8(q, k_rows + j, D, p + j);
#endif
  for (; j < n; ++j) p[j] = dot_f32(q, k_rows[j], D);
}

// Asks for the cache lines of `bytes` at p (a K or V row of the next key step).
inline void prefetch_row(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(c + b, 0, 3);
}

// `scale`: the cache's per-tensor scale (fp8 only; 1 for the float caches).
inline const float* kv_row(const float* cache, int64_t row, float*, int64_t, float) { return cache + row; }
template <class C>
inline const float* kv_row(const C* cache, int64_t row, float* buf, int64_t D, float) {  // bf16, f16: widened
  widen_row(cache + row, buf, D);
  return buf;
}
inline const float* kv_row(const fp8_e4m3* cache, int64_t row, float* buf, int64_t D, float scale) {
  for (int64_t d = 0; d < D; ++d) buf[d] = e4m3_to_f32(cache[row + d].bits) * scale;
  return buf;
}

struct ItemShape {
  int64_t rows_per_token;  // G
  int64_t tokens_per_tile;
};

template <class C>
void attend_item(const AttentionArgs& a, const ItemShape& shape, int64_t s, int64_t g, int64_t i0, int64_t i1,
                 ArenaCursor arena) {
  const KvCacheView& cache = a.cache;
  const int64_t D = cache.head_dim, Hkv = cache.num_kv_heads, Hq = a.num_q_heads, G = shape.rows_per_token;
  const int64_t bs = cache.block_size;
  const int64_t q0 = a.q_start_host[s], q_len = a.q_start_host[s + 1] - q0;
  const int64_t first_pos = static_cast<int64_t>(a.kv_len_host[s]) - q_len;  // position of query 0
  const int64_t R = (i1 - i0) * G;

  float* Q = arena.carve<float>(R * D);
  float* O = arena.carve<float>(R * D);
  float* m = arena.carve<float>(R);
  float* l = arena.carve<float>(R);
  float* k_buf = arena.carve<float>(kKeysPerStep * D);
  float* v_buf = arena.carve<float>(kKeysPerStep * D);
  alignas(64) float p[kKeysPerStep];

  const vf scale = vset(a.scale);
  for (int64_t r = 0; r < R; ++r) {
    const float* src = a.q + ((q0 + i0 + r / G) * Hq + g * G + r % G) * D;
    float* dst = Q + r * D;
    int64_t d = 0;
    for (; d + kLanes <= D; d += kLanes) vstore(dst + d, vmul(vload(src + d), scale));
    for (; d < D; ++d) dst[d] = src[d] * a.scale;
    std::fill(O + r * D, O + (r + 1) * D, 0.0f);
    m[r] = -std::numeric_limits<float>::infinity();
    l[r] = 0.0f;
  }

  const C* k_cache = static_cast<const C*>(cache.k);
  const C* v_cache = static_cast<const C*>(cache.v);
  const int32_t* block_table = a.block_tables_host + s * a.max_blocks_per_seq;
  const int64_t end_key = first_pos + i1;  // exclusive: the tile's last query sees keys < end_key
  const float* k_rows[kKeysPerStep];
  const float* v_rows[kKeysPerStep];
  // The first cache row (in rows of D elements) of the step that starts at key j0, and its end.
  const auto step_at = [&](int64_t j0, int64_t* j1) {
    const int64_t offset = j0 % bs;
    *j1 = std::min(end_key, j0 + std::min(kKeysPerStep, bs - offset));
    return (static_cast<int64_t>(block_table[j0 / bs]) * bs + offset) * Hkv + g;
  };
  const int64_t row_bytes = D * static_cast<int64_t>(sizeof(C));
  for (int64_t j0 = 0, j1; j0 < end_key; j0 = j1) {
    const int64_t first_row = step_at(j0, &j1);
    const int64_t n = j1 - j0;
    if (j1 < end_key) {
      int64_t next_end;
      const int64_t next_row = step_at(j1, &next_end);
      for (int64_t jj = 0; jj < next_end - j1; ++jj) {
        prefetch_row(k_cache + (next_row + jj * Hkv) * D, row_bytes);
        prefetch_row(v_cache + (next_row + jj * Hkv) * D, row_bytes);
      }
    }
    for (int64_t jj = 0; jj < n; ++jj) {
      const int64_t row = (first_row + jj * Hkv) * D;
      k_rows[jj] = kv_row(k_cache, row, k_buf + jj * D, D, cache.k_scale);
      v_rows[jj] = kv_row(v_cache, row, v_buf + jj * D, D, cache.v_scale);
    }
    for (int64_t r = 0; r < R; ++r) {
      const int64_t visible = std::min(j1, first_pos + i0 + r / G + 1) - j0;
      if (visible <= 0) continue;
      const float* q = Q + r * D;
      float step_max = -std::numeric_limits<float>::infinity();
      scores(q, k_rows, visible, D, p);
      for (int64_t jj = 0; jj < visible; ++jj) step_max = std::max(step_max, p[jj]);
      const float m_new = std::max(m[r], step_max);
      const float alpha = std::exp(m[r] - m_new);  // 0 on the first step (m = -inf)
      const vf m_vec = vset(m_new);
      float sum = 0.0f;
      int64_t jj = 0;
      for (; jj + kLanes <= visible; jj += kLanes) vstore(p + jj, vexp(vsub(vload(p + jj), m_vec)));
      for (; jj < visible; ++jj) p[jj] = std::exp(p[jj] - m_new);
      for (jj = 0; jj < visible; ++jj) sum += p[jj];
      l[r] = l[r] * alpha + sum;
      m[r] = m_new;
      float* o = O + r * D;
      const vf alpha_vec = vset(alpha);
      int64_t d = 0;
      for (; d + kLanes <= D; d += kLanes) {
        vf acc = vmul(vload(o + d), alpha_vec);
        for (jj = 0; jj < visible; ++jj) acc = vfma(vset(p[jj]), vload(v_rows[jj] + d), acc);
        vstore(o + d, acc);
      }
      for (; d < D; ++d) {
        float acc = o[d] * alpha;
        for (jj = 0; jj < visible; ++jj) acc += p[jj] * v_rows[jj][d];
        o[d] = acc;
      }
    }
  }

  for (int64_t r = 0; r < R; ++r) {
    float* dst = a.out + ((q0 + i0 + r / G) * Hq + g * G + r % G) * D;
    const float inv_l = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    for (int64_t d = 0; d < D; ++d) dst[d] = O[r * D + d] * inv_l;
  }
}

template <class C>
void attend(Context& ctx, const AttentionArgs& a) {
  const int64_t Hkv = a.cache.num_kv_heads, D = a.cache.head_dim;
  const ItemShape shape{a.num_q_heads / Hkv, std::max<int64_t>(1, kRowsPerItem / (a.num_q_heads / Hkv))};
  // Item prefix sums per sequence: sequence s owns items [first[s], first[s + 1]).
  std::vector<int64_t>& first = ctx.work_index;
  first.assign(a.num_seqs + 1, 0);
  for (int64_t s = 0; s < a.num_seqs; ++s) {
    const int64_t q_len = std::max<int64_t>(0, a.q_start_host[s + 1] - a.q_start_host[s]);
    first[s + 1] = first[s] + (q_len + shape.tokens_per_tile - 1) / shape.tokens_per_tile * Hkv;
  }
  const int64_t rows = shape.tokens_per_tile * shape.rows_per_token;
  // Fast precision: prefill items on a bf16 cache take the bf16 dot-product kernel (attention_bf16.cc).
  const bool bf16_items = std::is_same_v<C, bf16> && ctx.bf16_attention && D % 32 == 0 && D <= kMaxBf16AttentionHeadDim;
  ctx.scratch.reserve(std::max(2 * arena_bytes<float>(rows * D) + 2 * arena_bytes<float>(rows) + 2 * arena_bytes<float>(kKeysPerStep * D),
                               bf16_items ? attend_item_bf16_scratch(rows, D) : size_t(0)),
                      "attention");
  ctx.pool.parallel_for(first[a.num_seqs], [&](int64_t item, int thread) {
    const int64_t s = std::upper_bound(first.begin(), first.end(), item) - first.begin() - 1;
    const int64_t local = item - first[s];
    const int64_t q_len = a.q_start_host[s + 1] - a.q_start_host[s];
    const int64_t num_tiles = (q_len + shape.tokens_per_tile - 1) / shape.tokens_per_tile;
    const int64_t tile = num_tiles - 1 - local / Hkv;
    const int64_t i0 = tile * shape.tokens_per_tile, i1 = std::min(q_len, i0 + shape.tokens_per_tile);
    // Prefill tiles only (> 1 token): decodes stay in f32, as on CUDA.
    if (bf16_items && i1 - i0 > 1 && (i1 - i0) * shape.rows_per_token >= kMinBf16AttentionRows) {
      attend_item_bf16(a, shape.rows_per_token, s, local % Hkv, i0, i1, ArenaCursor(ctx.scratch.arena(thread)));
      return;
    }
    attend_item<C>(a, shape, s, local % Hkv, i0, i1, ArenaCursor(ctx.scratch.arena(thread)));
  });
}

}  // namespace

void attention(Context& ctx, const AttentionArgs& a) {
  if (a.num_seqs <= 0 || a.cache.num_kv_heads <= 0 || a.cache.head_dim <= 0 || a.cache.block_size <= 0 ||
      a.num_q_heads < a.cache.num_kv_heads)
    return;
  switch (a.cache.dtype) {
    case DType::BF16: attend<bf16>(ctx, a); break;
    case DType::F16: attend<f16>(ctx, a); break;
    case DType::FP8_E4M3: attend<fp8_e4m3>(ctx, a); break;
    default: attend<float>(ctx, a); break;
  }
}

}  // namespace cpu
}  // namespace paralon
