// ggml's quantized blocks on the CPU: each block is decoded 16 values at a time (a "group": one
// sub-block of Q6_K, half a sub-block of Q4_K/Q5_K/Q8_0) into f32 vectors holding the dequantized
// weights d_g·q − m_g, straight from the bytes in registers (no dequantized copy of W anywhere).
// The quants of a group are built as 16 int8 lanes with SSE integer ops on AVX2/AVX-512 builds (a
// scalar loop otherwise), then widened: one 16-lane vector on AVX-512, two 8-lane ones on AVX2.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cpu/kernels.h"
#include "cpu/simd.h"
#include "quant_blocks.h"

namespace paralon {
namespace cpu {

constexpr int kGroup = 16;                     // values per group
constexpr int kGroupVecs = kGroup / kLanes;    // f32 vectors per group: 1 (AVX-512) or 2
static_assert(kGroup % kLanes == 0, "a group is whole vectors");

#if defined(__AVX2__)
using q16 = __m128i;
inline q16 q16_load(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
// Each byte shifted right by s, then masked to `mask`.
inline q16 q16_bits(q16 v, int s, int mask) {
  return _mm_and_si128(_mm_srl_epi16(v, _mm_cvtsi32_si128(s)), _mm_set1_epi8(static_cast<char>(mask)));
}
inline q16 q16_or_shl4(q16 lo, q16 hi) { return _mm_or_si128(lo, _mm_slli_epi16(hi, 4)); }  // hi < 16
inline q16 q16_sub(q16 v, int c) { return _mm_sub_epi8(v, _mm_set1_epi8(static_cast<char>(c))); }
// out = d · q − m over the 16 lanes.
inline void q16_widen(q16 q, float d, float m, vf out[kGroupVecs]) {
#if defined(__AVX512F__)
  out[0] = _mm512_fmadd_ps(vset(d), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), vset(-m));
#else
  out[0] = _mm256_fmadd_ps(vset(d), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), vset(-m));
  out[1] = _mm256_fmadd_ps(vset(d), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), vset(-m));
#endif
}
#else
struct q16 {
  int8_t v[kGroup];
};
inline q16 q16_load(const void* p) {
  q16 r;
  std::memcpy(r.v, p, kGroup);
  return r;
}
inline q16 q16_bits(q16 v, int s, int mask) {
  for (int8_t& b : v.v) b = static_cast<int8_t>((static_cast<uint8_t>(b) >> s) & mask);
  return v;
}
inline q16 q16_or_shl4(q16 lo, q16 hi) {
  for (int i = 0; i < kGroup; ++i) lo.v[i] = static_cast<int8_t>(lo.v[i] | (hi.v[i] << 4));
  return lo;
}
inline q16 q16_sub(q16 v, int c) {
  for (int8_t& b : v.v) b = static_cast<int8_t>(b - c);
  return v;
}
inline void q16_widen(q16 q, float d, float m, vf out[kGroupVecs]) {
  for (int u = 0; u < kGroupVecs; ++u)
    out[u] = vmap([&](int i) { return d * static_cast<float>(q.v[u * kLanes + i]) - m; });
}
#endif

inline float half_to_f32(uint16_t bits) { return to_f32(f16{bits}); }

// Per format: Block, kValues (per block), kGroups, scales() filling d_g and m_g of every group, and
// group() giving group g's quants (signed, so that value = d_g·q − m_g).

struct FormatQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kValues = kQK8_0;
  static constexpr int kGroups = kValues / kGroup;
  static void scales(const Block& b, float d[kGroups], float m[kGroups]) {
    d[0] = d[1] = half_to_f32(b.d);
    m[0] = m[1] = 0.0f;
  }
  static q16 group(const Block& b, int g) { return q16_load(b.qs + kGroup * g); }
};

// Sub-block j = g/2 of 32 values; its quant bytes are the 32 bytes of chunk j/2 (low nibbles for even
// j, high for odd), group g takes the half g%2 of them.
struct FormatQ4_K {
  using Block = BlockQ4_K;
  static constexpr int kValues = kQK_K;
  static constexpr int kGroups = kValues / kGroup;
  static void scales(const Block& b, float d[kGroups], float m[kGroups]) {
    const float dd = half_to_f32(b.d), dm = half_to_f32(b.dmin);
    for (int j = 0; j < 8; ++j) {
      int sc, mn;
      k4_scale_min(b.scales, j, &sc, &mn);
      d[2 * j] = d[2 * j + 1] = dd * static_cast<float>(sc);
      m[2 * j] = m[2 * j + 1] = dm * static_cast<float>(mn);
    }
  }
  static q16 group(const Block& b, int g) {
    const int j = g >> 1;
    return q16_bits(q16_load(b.qs + 32 * (j >> 1) + 16 * (g & 1)), 4 * (j & 1), 0x0F);
  }
};

// Q4_K's nibbles plus bit j of qh[l] as the 5th bit of value l of sub-block j.
struct FormatQ5_K {
  using Block = BlockQ5_K;
  static constexpr int kValues = kQK_K;
  static constexpr int kGroups = kValues / kGroup;
  static void scales(const Block& b, float d[kGroups], float m[kGroups]) {
    const float dd = half_to_f32(b.d), dm = half_to_f32(b.dmin);
    for (int j = 0; j < 8; ++j) {
      int sc, mn;
      k4_scale_min(b.scales, j, &sc, &mn);
      d[2 * j] = d[2 * j + 1] = dd * static_cast<float>(sc);
      m[2 * j] = m[2 * j + 1] = dm * static_cast<float>(mn);
    }
  }
  static q16 group(const Block& b, int g) {
    const int j = g >> 1;
    const q16 lo = q16_bits(q16_load(b.qs + 32 * (j >> 1) + 16 * (g & 1)), 4 * (j & 1), 0x0F);
    const q16 hi = q16_bits(q16_load(b.qh + 16 * (g & 1)), j, 0x01);
    return q16_or_shl4(lo, hi);
  }
};

// Group g = sub-block g: half h = g/8 of the block (64 ql bytes, 32 qh bytes), quarter r = (g%8)/2
// of that half; value l (0..31) of a quarter has its low nibble in ql[l + 32·(r%2)] (low nibble for
// r < 2, high otherwise) and its top 2 bits at bit 2r of qh[l]; q − 32 is signed.
struct FormatQ6_K {
  using Block = BlockQ6_K;
  static constexpr int kValues = kQK_K;
  static constexpr int kGroups = kValues / kGroup;
  static void scales(const Block& b, float d[kGroups], float m[kGroups]) {
    const float dd = half_to_f32(b.d);
    for (int g = 0; g < kGroups; ++g) {
      d[g] = dd * static_cast<float>(b.scales[g]);
      m[g] = 0.0f;
    }
  }
  static q16 group(const Block& b, int g) {
    const int h = g >> 3, r = (g & 7) >> 1, l0 = 16 * (g & 1);
    const q16 lo = q16_bits(q16_load(b.ql + 64 * h + 32 * (r & 1) + l0), 4 * (r >> 1), 0x0F);
    const q16 hi = q16_bits(q16_load(b.qh + 32 * h + l0), 2 * r, 0x03);
    return q16_sub(q16_or_shl4(lo, hi), 32);
  }
};

#if defined(__AVX512F__)
// Q4_K and Q5_K on AVX-512, 64 values (chunk c: sub-blocks 2c and 2c+1) at a time: a sub-block's
// possible values d·q − m form a register table — 16 entries for Q4_K (vpermps reads the low 4 bits of
// each dword index), 32 in two registers for Q5_K (vpermt2ps reads 5 bits: the nibble plus the qh bit
// moved to bit 4) — and each quant is looked up instead of converted. 16 quant bytes widened once serve
// sub-block 2c (low nibbles) and, shifted right by 4, sub-block 2c+1. Same values as the group decode;
// measured 2.1× (Q4_K) and 1.7× (Q5_K) its throughput on one thread with L2-resident blocks.
// v[0..1]: values 64c + 0..31, v[2..3]: 64c + 32..63.
template <class F>
constexpr bool kHasChunk64 = std::is_same_v<F, FormatQ4_K> || std::is_same_v<F, FormatQ5_K>;

inline __m512 k_table(float d, float m) {  // d·q − m for q = 0..15
  return _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_ps(-m));
}

inline void chunk64(const BlockQ4_K& b, int c, __m512 v[4]) {
  const float dd = half_to_f32(b.d), dm = half_to_f32(b.dmin);
  int s0, m0, s1, m1;
  k4_scale_min(b.scales, 2 * c, &s0, &m0);
  k4_scale_min(b.scales, 2 * c + 1, &s1, &m1);
  const __m512 t0 = k_table(dd * static_cast<float>(s0), dm * static_cast<float>(m0));
  const __m512 t1 = k_table(dd * static_cast<float>(s1), dm * static_cast<float>(m1));
  for (int h = 0; h < 2; ++h) {
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 32 * c + 16 * h)));
    v[h] = _mm512_permutexvar_ps(q, t0);
    v[2 + h] = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), t1);
  }
}

inline void chunk64(const BlockQ5_K& b, int c, __m512 v[4]) {
  const float dd = half_to_f32(b.d), dm = half_to_f32(b.dmin);
  int s0, m0, s1, m1;
  k4_scale_min(b.scales, 2 * c, &s0, &m0);
  k4_scale_min(b.scales, 2 * c + 1, &s1, &m1);
  const float d0 = dd * static_cast<float>(s0), d1 = dd * static_cast<float>(s1);
  const __m512 lo0 = k_table(d0, dm * static_cast<float>(m0)), lo1 = k_table(d1, dm * static_cast<float>(m1));
  const __m512 sixteen = _mm512_set1_ps(16.0f);
  const __m512 hi0 = _mm512_fmadd_ps(_mm512_set1_ps(d0), sixteen, lo0);  // q = 16..31
  const __m512 hi1 = _mm512_fmadd_ps(_mm512_set1_ps(d1), sixteen, lo1);
  const __m512i nibble = _mm512_set1_epi32(0xF);
  for (int h = 0; h < 2; ++h) {
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 32 * c + 16 * h)));
    const __m512i qh = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qh + 16 * h)));
    // index = (nibble & 0xF) | (qh bit → bit 4); 0xEA is the ternary-logic table of (a & b) | c.
    const __m512i i0 = _mm512_ternarylogic_epi32(q, nibble, _mm512_slli_epi32(_mm512_srli_epi32(qh, 2 * c), 4), 0xEA);
    const __m512i i1 = _mm512_ternarylogic_epi32(_mm512_srli_epi32(q, 4), nibble,
                                                 _mm512_slli_epi32(_mm512_srli_epi32(qh, 2 * c + 1), 4), 0xEA);
    v[h] = _mm512_permutex2var_ps(lo0, i0, hi0);
    v[2 + h] = _mm512_permutex2var_ps(lo1, i1, hi1);
  }
}
#endif

#if defined(__AVX512BW__)
// Q6_K on AVX-512BW, half a block (128 values) at a time: all 128 quants are assembled as bytes in two
// zmm registers — low nibbles of the 64 ql bytes plus qh bit pairs 0–1 / 2–3 (values 0..63 of the
// half), high nibbles plus pairs 4–5 / 6–7 (values 64..127), each qh pair picked by a per-qword shift of
// qh duplicated into both register halves — then widened 16 at a time and scaled by d·scale_s. Same
// values as the group decode, measured 2.0× its throughput (one thread, L2-resident blocks).
// v[i]: values 128h + 16i .. + 15.
inline void q6_k_half(const BlockQ6_K& b, int h, __m512 v[8]) {
  const float d = half_to_f32(b.d);
  const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
  const __m256i qh_half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
  const __m512i qh = _mm512_inserti64x4(_mm512_castsi256_si512(qh_half), qh_half, 1);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x03), bias = _mm512_set1_epi8(32);
  const __m512i h_lo = _mm512_and_si512(_mm512_srlv_epi64(qh, _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2)), m2);
  const __m512i h_hi = _mm512_and_si512(_mm512_srlv_epi64(qh, _mm512_setr_epi64(4, 4, 4, 4, 6, 6, 6, 6)), m2);
  const __m512i q[2] = {
      _mm512_sub_epi8(_mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(h_lo, 4)), bias),
      _mm512_sub_epi8(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_slli_epi16(h_hi, 4)), bias)};
  const auto widen = [&](__m128i bytes, int s) {
    return _mm512_mul_ps(_mm512_set1_ps(d * static_cast<float>(b.scales[8 * h + s])),
                         _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)));
  };
  for (int j = 0; j < 2; ++j) {
    v[4 * j + 0] = widen(_mm512_extracti32x4_epi32(q[j], 0), 4 * j + 0);
    v[4 * j + 1] = widen(_mm512_extracti32x4_epi32(q[j], 1), 4 * j + 1);
    v[4 * j + 2] = widen(_mm512_extracti32x4_epi32(q[j], 2), 4 * j + 2);
    v[4 * j + 3] = widen(_mm512_extracti32x4_epi32(q[j], 3), 4 * j + 3);
  }
}
#endif

// Calls fn with a null Format* for a quantized dtype.
template <class Fn>
inline void with_quant_format(DType t, Fn&& fn) {
  switch (t) {
    case DType::Q8_0: fn(static_cast<const FormatQ8_0*>(nullptr)); return;
    case DType::Q4_K: fn(static_cast<const FormatQ4_K*>(nullptr)); return;
    case DType::Q5_K: fn(static_cast<const FormatQ5_K*>(nullptr)); return;
    case DType::Q6_K: fn(static_cast<const FormatQ6_K*>(nullptr)); return;
    default: throw OpError(std::string("quantized kernels: ") + dtype_name(t) + " is not a quantized dtype");
  }
}

// out[0 .. F::kValues) = the dequantized values of one block.
template <class F>
inline void decode_block(const typename F::Block& b, float* out) {
#if defined(__AVX512F__)
  if constexpr (kHasChunk64<F>) {
    for (int c = 0; c < 4; ++c) {
      __m512 v[4];
      chunk64(b, c, v);
      for (int i = 0; i < 4; ++i) vstore(out + 64 * c + 16 * i, v[i]);
    }
    return;
  }
#endif
#if defined(__AVX512BW__)
  if constexpr (std::is_same_v<F, FormatQ6_K>) {
    for (int h = 0; h < 2; ++h) {
      __m512 v[8];
      q6_k_half(b, h, v);
      for (int i = 0; i < 8; ++i) vstore(out + 128 * h + 16 * i, v[i]);
    }
    return;
  }
#endif
  float d[F::kGroups], m[F::kGroups];
  F::scales(b, d, m);
  for (int g = 0; g < F::kGroups; ++g) {
    vf v[kGroupVecs];
    q16_widen(F::group(b, g), d[g], m[g], v);
    for (int u = 0; u < kGroupVecs; ++u) vstore(out + kGroup * g + u * kLanes, v[u]);
  }
}

// out[0 .. n) = values [v0, v0 + n) of a quantized row (v0 and n whole blocks).
void decode_quantized(DType t, const void* row, int64_t v0, int64_t n, float* out);  // quant_matmul.cc
void matmul_quantized(Context& ctx, const MatmulArgs& a);                              // quant_matmul.cc

}  // namespace cpu
}  // namespace paralon
