// Integer dot products of ggml blocks with int8 activations (quant_int8.h). Every K-format block is
// brought to one form: 256 unsigned quants q (Q4_K 0..15, Q5_K 0..31, Q6_K 0..63), a scale sc_g and a
// "min" mn_g per 16 values, and two f16-derived factors d, dm, so that value = d·sc_g·q − dm·mn_g
// (Q6_K: dm = d, mn_g = 32·sc_g for its q − 32). Against a q8_K row (d_x, quants x, per-16 sums s_g):
//   W·x over a block = d_x · (d · Σ_g sc_g Σ q·x − dm · Σ_g mn_g s_g),
// exactly ggml's vec_dot_q*_K_q8_K. Q8_0 against q8_0: d_w · d_x · Σ w·x per 32 values.
// SIMD: unsigned quants × signed activations with vpmaddubsw (pairs to int16; at most 2·63·127, no
// saturation), then the per-16 scales in the int16 → int32 step (AVX512-VNNI vpdpwssd, AVX2
// vpmaddwd); Q8_0's signed quants via |w| and sign(x, w) and vpdpbusd (AVX2: vpmaddubsw + vpmaddwd).
// Integer sums are exact; rounding happens only in the activation quantization and the f32
// accumulation of the per-block products.
#include "cpu/quant_int8.h"

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "cpu/quant.h"
#include "cpu/simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PARALON_INT8_X86 1
#define PARALON_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define PARALON_TARGET_VNNI512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#endif

namespace paralon {
namespace cpu {

// ---------------------------------------------------------------------------------------------
// Activation quantization, as ggml's quantize_row_q8_0 (x86 SIMD form) and quantize_row_q8_K_ref.
// nearbyint rounds half to even (the default rounding mode), as _mm256_round_ps and nearest_int do.
// A non-finite x value makes its block's scale NaN, so the output is NaN as on the exact path.

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void quantize_q8_0(const float* x, int64_t K, int8_t* q, float* d) {
  for (int64_t b = 0; b < K / kQK8_0; ++b) {
    const float* xb = x + kQK8_0 * b;
    int8_t* qb = q + kQK8_0 * b;
    float amax = 0.0f;
    bool finite = true;
    for (int j = 0; j < kQK8_0; ++j) {
      const float a = std::fabs(xb[j]);
      finite = finite && a <= FLT_MAX;
      amax = a > amax ? a : amax;
    }
    if (!finite) {
      std::memset(qb, 0, kQK8_0);
      d[b] = kNaN;
      continue;
    }
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < kQK8_0; ++j) qb[j] = static_cast<int8_t>(std::nearbyint(xb[j] * id));
    d[b] = to_f32(to_f16(amax / 127.0f));  // ggml stores the scale as f16
  }
}

void quantize_q8_K(const float* x, int64_t K, int8_t* q, float* d, int16_t* bsums) {
  for (int64_t b = 0; b < K / kQK_K; ++b) {
    const float* xb = x + kQK_K * b;
    int8_t* qb = q + kQK_K * b;
    int16_t* sb = bsums + 16 * b;
    float amax = 0.0f, max = 0.0f;  // the value of largest magnitude, with its sign
    bool finite = true;
    for (int j = 0; j < kQK_K; ++j) {
      const float a = std::fabs(xb[j]);
      finite = finite && a <= FLT_MAX;
      if (a > amax) {
        amax = a;
        max = xb[j];
      }
    }
    const float iscale = amax != 0.0f ? -127.0f / max : 0.0f;
    if (!finite || !(std::fabs(iscale) <= FLT_MAX) || amax == 0.0f) {  // NaN/inf, an all-zero block, or x ≈ 1e-40
      std::memset(qb, 0, kQK_K);
      std::memset(sb, 0, 16 * sizeof(int16_t));
      d[b] = finite ? 0.0f : kNaN;
      continue;
    }
    for (int j = 0; j < kQK_K; ++j) {
      const int v = static_cast<int>(std::nearbyint(iscale * xb[j]));
      qb[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += qb[16 * g + j];
      sb[g] = static_cast<int16_t>(s);
    }
    d[b] = 1.0f / iscale;
  }
}

// ---------------------------------------------------------------------------------------------
// K-format block scales: sc_g, mn_g per 16 values (int16, the SIMD paths load them as vectors), d, dm.

struct KScales {
  alignas(32) int16_t sc[16];
  alignas(32) int16_t mn[16];
  float d, dm;
};

inline void k4_scales(const uint8_t* packed, uint16_t d, uint16_t dmin, KScales& s) {
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    k4_scale_min(packed, j, &sc, &mn);
    s.sc[2 * j] = s.sc[2 * j + 1] = static_cast<int16_t>(sc);
    s.mn[2 * j] = s.mn[2 * j + 1] = static_cast<int16_t>(mn);
  }
  s.d = half_to_f32(d);
  s.dm = half_to_f32(dmin);
}
inline void k_scales(const BlockQ4_K& b, KScales& s) { k4_scales(b.scales, b.d, b.dmin, s); }
inline void k_scales(const BlockQ5_K& b, KScales& s) { k4_scales(b.scales, b.d, b.dmin, s); }
inline void k_scales(const BlockQ6_K& b, KScales& s) {
  for (int g = 0; g < 16; ++g) {
    s.sc[g] = b.scales[g];
    s.mn[g] = static_cast<int16_t>(32 * b.scales[g]);
  }
  s.d = s.dm = half_to_f32(b.d);
}

// ---------------------------------------------------------------------------------------------
// Scalar reference: the unsigned quants of a block in value order, then plain integer sums.

void unpack_scalar(const BlockQ4_K& b, uint8_t q[kQK_K]) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = b.qs[32 * c + l] & 0xF;
      q[64 * c + 32 + l] = b.qs[32 * c + l] >> 4;
    }
}
void unpack_scalar(const BlockQ5_K& b, uint8_t q[kQK_K]) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = static_cast<uint8_t>((b.qs[32 * c + l] & 0xF) | (((b.qh[l] >> (2 * c)) & 1) << 4));
      q[64 * c + 32 + l] = static_cast<uint8_t>((b.qs[32 * c + l] >> 4) | (((b.qh[l] >> (2 * c + 1)) & 1) << 4));
    }
}
void unpack_scalar(const BlockQ6_K& b, uint8_t q[kQK_K]) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* ql = b.ql + 64 * h;
      const int qh = b.qh[32 * h + l];
      q[128 * h + l] = static_cast<uint8_t>((ql[l] & 0xF) | ((qh & 3) << 4));
      q[128 * h + 32 + l] = static_cast<uint8_t>((ql[32 + l] & 0xF) | (((qh >> 2) & 3) << 4));
      q[128 * h + 64 + l] = static_cast<uint8_t>((ql[l] >> 4) | (((qh >> 4) & 3) << 4));
      q[128 * h + 96 + l] = static_cast<uint8_t>((ql[32 + l] >> 4) | (((qh >> 6) & 3) << 4));
    }
}

template <class Block>
void dot_k_scalar(const void* wrow, int64_t nb, const ActQ8& x, int64_t r0, int R, float* out) {
  const Block* w = static_cast<const Block*>(wrow);
  for (int r = 0; r < R; ++r) out[r] = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t q[kQK_K];
    KScales s;
    unpack_scalar(w[b], q);
    k_scales(w[b], s);
    for (int r = 0; r < R; ++r) {
      const int8_t* xq = x.q + (r0 + r) * x.K + b * kQK_K;
      const int16_t* bs = x.bsums + (r0 + r) * (x.K / 16) + b * 16;
      int32_t sumi = 0, summ = 0;
      for (int g = 0; g < 16; ++g) {
        int32_t dot = 0;
        for (int j = 0; j < 16; ++j) dot += q[16 * g + j] * xq[16 * g + j];
        sumi += s.sc[g] * dot;
        summ += s.mn[g] * bs[g];
      }
      const float dx = x.d[(r0 + r) * (x.K / kQK_K) + b];
      out[r] += dx * (s.d * static_cast<float>(sumi) - s.dm * static_cast<float>(summ));
    }
  }
}

void dot_q8_0_scalar(const void* wrow, int64_t nb, const ActQ8& x, int64_t r0, int R, float* out) {
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(wrow);
  for (int r = 0; r < R; ++r) {
    const int8_t* xq = x.q + (r0 + r) * x.K;
    const float* dx = x.d + (r0 + r) * (x.K / kQK8_0);
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      int32_t dot = 0;
      for (int j = 0; j < kQK8_0; ++j) dot += w[b].qs[j] * xq[kQK8_0 * b + j];
      acc += half_to_f32(w[b].d) * dx[b] * static_cast<float>(dot);
    }
    out[r] = acc;
  }
}

#if defined(PARALON_INT8_X86)
// ---------------------------------------------------------------------------------------------
// SIMD unpacking, 32 values per ymm in value order (q[j]: values 32j .. 32j + 31), AVX2 instructions
// (also run inside the AVX-512 kernels).

PARALON_TARGET_AVX2 inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

PARALON_TARGET_AVX2 inline void unpack_simd(const BlockQ4_K& b, __m256i q[8]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int c = 0; c < 4; ++c) {
    const __m256i v = load256(b.qs + 32 * c);
    q[2 * c] = _mm256_and_si256(v, m4);
    q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  }
}
PARALON_TARGET_AVX2 inline void unpack_simd(const BlockQ5_K& b, __m256i q[8]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m1 = _mm256_set1_epi8(0x01);
  const __m256i qh = load256(b.qh);
  for (int c = 0; c < 4; ++c) {
    const __m256i v = load256(b.qs + 32 * c);
    // bit j of each qh byte to bit 4 (a 16-bit shift, masked to the byte's own bit)
    const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), m1), 4);
    const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), m1), 4);
    q[2 * c] = _mm256_or_si256(_mm256_and_si256(v, m4), h0);
    q[2 * c + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), h1);
  }
}
// Bits s, s+1 of each qh byte moved to bits 4, 5 (lambdas would not inherit the target attribute).
PARALON_TARGET_AVX2 inline __m256i q6_high(__m256i qh, int s) {
  return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, s), _mm256_set1_epi8(0x03)), 4);
}
PARALON_TARGET_AVX2 inline void unpack_simd(const BlockQ6_K& b, __m256i q[8]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int h = 0; h < 2; ++h) {
    const __m256i l0 = load256(b.ql + 64 * h), l1 = load256(b.ql + 64 * h + 32), qh = load256(b.qh + 32 * h);
    q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), q6_high(qh, 0));
    q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), q6_high(qh, 2));
    q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), q6_high(qh, 4));
    q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), q6_high(qh, 6));
  }
}

// The block's scales in registers (no round trip through memory: stores of small pieces read back as
// one vector stall store forwarding): sc and mn as 16 int16 lanes, one per 16 values.
struct KScalesSimd {
  __m256i sc, mn;
  float d, dm;
};
// Q4_K/Q5_K: the 12 packed bytes to 8 scales and 8 mins with 32-bit masks (k4_scale_min four at a
// time), then each duplicated for the two 16-value halves of its sub-block.
PARALON_TARGET_AVX2 inline void k4_scales_simd(const uint8_t* packed, uint16_t d, uint16_t dmin, KScalesSimd& s) {
  uint32_t u[3];
  std::memcpy(u, packed, 12);
  const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
  const __m128i v = _mm_setr_epi32(static_cast<int>(u[0] & m6), static_cast<int>((u[2] & m4) | (((u[0] >> 6) & m2) << 4)),
                                   static_cast<int>(u[1] & m6), static_cast<int>(((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4)));
  s.sc = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v, v));
  s.mn = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(v, v));
  s.d = half_to_f32(d);
  s.dm = half_to_f32(dmin);
}
PARALON_TARGET_AVX2 inline void k_scales_simd(const BlockQ4_K& b, KScalesSimd& s) { k4_scales_simd(b.scales, b.d, b.dmin, s); }
PARALON_TARGET_AVX2 inline void k_scales_simd(const BlockQ5_K& b, KScalesSimd& s) { k4_scales_simd(b.scales, b.d, b.dmin, s); }
PARALON_TARGET_AVX2 inline void k_scales_simd(const BlockQ6_K& b, KScalesSimd& s) {
  s.sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  s.mn = _mm256_slli_epi16(s.sc, 5);  // 32·sc: the bias of q − 32
  s.d = s.dm = half_to_f32(b.d);
}

PARALON_TARGET_AVX2 inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---------------------------------------------------------------------------------------------
// AVX2: per 32 values vpmaddubsw then vpmaddwd by the two per-16 scales of that ymm.

template <class Block, int R>
PARALON_TARGET_AVX2 void dot_k_avx2(const void* wrow, int64_t nb, const ActQ8& x, int64_t r0, float* out) {
  const Block* w = static_cast<const Block*>(wrow);
  const int64_t nbx = x.K / kQK_K;
  // vpshufb control: each 128-bit lane takes its own int16 of the broadcast dword j (sc[2j], sc[2j+1]).
  const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2,
                                        3, 2, 3, 2, 3);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i q[8], scl[8];
    KScalesSimd s;
    unpack_simd(w[b], q);
    k_scales_simd(w[b], s);
    for (int j = 0; j < 8; ++j) scl[j] = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(s.sc, _mm256_set1_epi32(j)), pick);
    const __m256i mn = s.mn;
    for (int r = 0; r < R; ++r) {
      const int8_t* xq = x.q + (r0 + r) * x.K + b * kQK_K;
      __m256i sumi = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j)
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q[j], load256(xq + 32 * j)), scl[j]));
      const __m256i summ = _mm256_madd_epi16(load256(x.bsums + (r0 + r) * (x.K / 16) + b * 16), mn);
      const float dx = x.d[(r0 + r) * nbx + b];
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(dx * s.d), acc[r]);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_set1_ps(-dx * s.dm), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum256(acc[r]);
}

template <int R>
PARALON_TARGET_AVX2 void dot_q8_0_avx2(const void* wrow, int64_t nb, const ActQ8& x, int64_t r0, float* out) {
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(wrow);
  const int64_t nbx = x.K / kQK8_0;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i wq = load256(w[b].qs);
    const __m256i aw = _mm256_abs_epi8(wq);  // -128 → 128 as an unsigned byte: still exact
    const float dw = half_to_f32(w[b].d);
    for (int r = 0; r < R; ++r) {
      const __m256i sx = _mm256_sign_epi8(load256(x.q + (r0 + r) * x.K + b * kQK8_0), wq);  // |x| ≤ 127
      const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), ones);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * x.d[(r0 + r) * nbx + b]), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum256(acc[r]);
}

// ---------------------------------------------------------------------------------------------
// AVX512-VNNI: 64 values per zmm, vpmaddubsw then vpdpwssd by the four per-16 scales of that zmm;
// Q8_0 with vpdpbusd on |w| and sign(x, w), two blocks per zmm.

template <class Block, int R>
PARALON_TARGET_VNNI512 void dot_k_vnni512(const void* wrow, int64_t nb, const ActQ8& x, int64_t r0, float* out) {
  const Block* w = static_cast<const Block*>(wrow);
  const int64_t nbx = x.K / kQK_K;
  // vpermw indices of chunk c (values 64c .. 64c+63): int16 lane l (values 2l, 2l+1) takes sc[4c + l/8].
  __m512i pick[4];
  for (int c = 0; c < 4; ++c)
    pick[c] = _mm512_add_epi16(_mm512_set_epi64(0x0003000300030003ll, 0x0003000300030003ll, 0x0002000200020002ll,
                                                0x0002000200020002ll, 0x0001000100010001ll, 0x0001000100010001ll, 0, 0),
                               _mm512_set1_epi16(static_cast<int16_t>(4 * c)));
  __m512 acc[R];
  __m256 accm[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm512_setzero_ps();
    accm[r] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    __m256i q8[8];
    __m512i q[4], scl[4];
    KScalesSimd s;
    unpack_simd(w[b], q8);
    k_scales_simd(w[b], s);
    const __m512i sc = _mm512_zextsi256_si512(s.sc);
    for (int c = 0; c < 4; ++c) {
      q[c] = _mm512_inserti64x4(_mm512_zextsi256_si512(q8[2 * c]), q8[2 * c + 1], 1);
      scl[c] = _mm512_permutexvar_epi16(pick[c], sc);
    }
    const __m256i mn = s.mn;
    for (int r = 0; r < R; ++r) {
      const int8_t* xq = x.q + (r0 + r) * x.K + b * kQK_K;
      __m512i sumi = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c)
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q[c], _mm512_loadu_si512(xq + 64 * c)), scl[c]);
      const __m256i summ = _mm256_madd_epi16(load256(x.bsums + (r0 + r) * (x.K / 16) + b * 16), mn);
      const float dx = x.d[(r0 + r) * nbx + b];
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(dx * s.d), acc[r]);
      accm[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_set1_ps(-dx * s.dm), accm[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) + hsum256(accm[r]);
}

// [lo ×8 | hi ×8] (AVX512F only: insertf32x8 is AVX512DQ).
PARALON_TARGET_VNNI512 inline __m512 halves_ps(float lo, float hi) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(lo)), _mm256_castps_pd(_mm256_set1_ps(hi)), 1));
}

template <int R>
PARALON_TARGET_VNNI512 void dot_q8_0_vnni512(const void* wrow, int64_t nb, const ActQ8& x, int64_t r0, float* out) {
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(wrow);
  const int64_t nbx = x.K / kQK8_0;
  const __m512i halves = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  __m512 acc[R];
  __m256 tail[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm512_setzero_ps();
    tail[r] = _mm256_setzero_ps();
  }
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {  // two blocks per zmm: x's quants of blocks b, b+1 are contiguous
    const __m512i wq = _mm512_inserti64x4(_mm512_zextsi256_si512(load256(w[b].qs)), load256(w[b + 1].qs), 1);
    const __m512i aw = _mm512_abs_epi8(wq);
    const __mmask64 neg = _mm512_movepi8_mask(wq);
    const __m512 dw = halves_ps(half_to_f32(w[b].d), half_to_f32(w[b + 1].d));
    for (int r = 0; r < R; ++r) {
      const __m512i xq = _mm512_loadu_si512(x.q + (r0 + r) * x.K + b * kQK8_0);
      const __m512i sx = _mm512_mask_sub_epi8(xq, neg, _mm512_setzero_si512(), xq);  // sign(x, w); |x| ≤ 127
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sx);
      double dx2;  // the two f32 scales of x's blocks b, b+1
      std::memcpy(&dx2, x.d + (r0 + r) * nbx + b, 8);
      const __m512 dx = _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(_mm_castpd_ps(_mm_set_sd(dx2))));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, dx), acc[r]);
    }
  }
  for (; b < nb; ++b) {
    const __m256i wq = load256(w[b].qs);
    const __m256i aw = _mm256_abs_epi8(wq);
    const float dw = half_to_f32(w[b].d);
    for (int r = 0; r < R; ++r) {
      const __m256i sx = _mm256_sign_epi8(load256(x.q + (r0 + r) * x.K + b * kQK8_0), wq);
      const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw, sx);
      tail[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * x.d[(r0 + r) * nbx + b]), tail[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) + hsum256(tail[r]);
}

// Runtime R → the kernel instantiated for it (the accumulators live in registers).
template <template <int> class K>
void by_rows(int R, const void* wrow, int64_t nb, const ActQ8& x, int64_t r0, float* out) {
  switch (R) {
    case 1: return K<1>::run(wrow, nb, x, r0, out);
    case 2: return K<2>::run(wrow, nb, x, r0, out);
    case 3: return K<3>::run(wrow, nb, x, r0, out);
    case 4: return K<4>::run(wrow, nb, x, r0, out);
    case 5: return K<5>::run(wrow, nb, x, r0, out);
    case 6: return K<6>::run(wrow, nb, x, r0, out);
    case 7: return K<7>::run(wrow, nb, x, r0, out);
    default: return K<8>::run(wrow, nb, x, r0, out);
  }
}

template <class Block>
struct KAvx2 {
  template <int R>
  struct At {
    static void run(const void* w, int64_t nb, const ActQ8& x, int64_t r0, float* out) { dot_k_avx2<Block, R>(w, nb, x, r0, out); }
  };
  static void dot(const void* w, int64_t nb, const ActQ8& x, int64_t r0, int R, float* out) { by_rows<At>(R, w, nb, x, r0, out); }
};
template <class Block>
struct KVnni512 {
  template <int R>
  struct At {
    static void run(const void* w, int64_t nb, const ActQ8& x, int64_t r0, float* out) { dot_k_vnni512<Block, R>(w, nb, x, r0, out); }
  };
  static void dot(const void* w, int64_t nb, const ActQ8& x, int64_t r0, int R, float* out) { by_rows<At>(R, w, nb, x, r0, out); }
};
template <int R>
struct Q8Avx2 {
  static void run(const void* w, int64_t nb, const ActQ8& x, int64_t r0, float* out) { dot_q8_0_avx2<R>(w, nb, x, r0, out); }
};
template <int R>
struct Q8Vnni512 {
  static void run(const void* w, int64_t nb, const ActQ8& x, int64_t r0, float* out) { dot_q8_0_vnni512<R>(w, nb, x, r0, out); }
};
void dot_q8_0_avx2_any(const void* w, int64_t nb, const ActQ8& x, int64_t r0, int R, float* out) { by_rows<Q8Avx2>(R, w, nb, x, r0, out); }
void dot_q8_0_vnni512_any(const void* w, int64_t nb, const ActQ8& x, int64_t r0, int R, float* out) {
  by_rows<Q8Vnni512>(R, w, nb, x, r0, out);
}
#endif  // PARALON_INT8_X86

bool cpu_has(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::Scalar: return true;
#if defined(PARALON_INT8_X86)
    case Int8Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case Int8Isa::Vnni512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") && cpu_has(Int8Isa::Avx2);
#endif
    default: return false;
  }
}

}  // namespace

void quantize_act_row(DType w, const float* x, int64_t K, int8_t* q, float* d, int16_t* bsums) {
  if (w == DType::Q8_0) {
    quantize_q8_0(x, K, q, d);
  } else {
    quantize_q8_K(x, K, q, d, bsums);
  }
}

int64_t act_block(DType w) { return w == DType::Q8_0 ? kQK8_0 : kQK_K; }

const char* int8_isa_name(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::Scalar: return "scalar";
    case Int8Isa::Avx2: return "avx2";
    case Int8Isa::Vnni512: return "vnni512";
    default: return "off";
  }
}

Int8Isa int8_isa_best() {
  if (cpu_has(Int8Isa::Vnni512)) return Int8Isa::Vnni512;
  if (cpu_has(Int8Isa::Avx2)) return Int8Isa::Avx2;
  return Int8Isa::Off;
}

Int8Isa int8_isa_for_backend() {
  const char* forced = std::getenv("PARALON_CPU_INT8_ISA");
  if (!forced || !*forced) return int8_isa_best();
  for (Int8Isa isa : {Int8Isa::Scalar, Int8Isa::Avx2, Int8Isa::Vnni512}) {
    if (std::string(forced) != int8_isa_name(isa)) continue;
    if (!cpu_has(isa)) throw OpError(std::string("PARALON_CPU_INT8_ISA=") + forced + ": this CPU lacks the instructions");
    return isa;
  }
  throw OpError(std::string("PARALON_CPU_INT8_ISA must be scalar, avx2 or vnni512, got '") + forced + "'");
}

Int8RowDot int8_row_dot(DType w, Int8Isa isa) {
#if defined(PARALON_INT8_X86)
  if (isa == Int8Isa::Vnni512) {
    switch (w) {
      case DType::Q8_0: return dot_q8_0_vnni512_any;
      case DType::Q4_K: return KVnni512<BlockQ4_K>::dot;
      case DType::Q5_K: return KVnni512<BlockQ5_K>::dot;
      case DType::Q6_K: return KVnni512<BlockQ6_K>::dot;
      default: break;
    }
  }
  if (isa == Int8Isa::Avx2) {
    switch (w) {
      case DType::Q8_0: return dot_q8_0_avx2_any;
      case DType::Q4_K: return KAvx2<BlockQ4_K>::dot;
      case DType::Q5_K: return KAvx2<BlockQ5_K>::dot;
      case DType::Q6_K: return KAvx2<BlockQ6_K>::dot;
      default: break;
    }
  }
#endif
  switch (w) {
    case DType::Q8_0: return dot_q8_0_scalar;
    case DType::Q4_K: return dot_k_scalar<BlockQ4_K>;
    case DType::Q5_K: return dot_k_scalar<BlockQ5_K>;
    case DType::Q6_K: return dot_k_scalar<BlockQ6_K>;
    default: throw OpError(std::string("int8 dot products: ") + dtype_name(w) + " is not a quantized dtype");
  }
}

}  // namespace cpu
}  // namespace paralon
