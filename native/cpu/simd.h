// SIMD vocabulary of the CPU kernels: one vector type `vf` of kLanes floats and a handful of
// operations, implemented for AVX-512, AVX2+FMA(+F16C) and a portable fallback (a plain 8-float
// struct the compiler vectorises as it can). Kernels are written once against this vocabulary.
// Weights are read in their storage type (float, bf16, f16) and widened to f32 on load.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ops.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace paralon {
namespace cpu {

// Storage types of 16-bit floats; plain bit patterns, widened to f32 on load.
struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float to_f32(float v) { return v; }
inline float to_f32(bf16 v) { return bits_to_f32(static_cast<uint32_t>(v.bits) << 16); }
inline float to_f32(f16 v) {
#if defined(__F16C__)
  return _cvtsh_ss(v.bits);
#else
  const uint32_t sign = static_cast<uint32_t>(v.bits & 0x8000u) << 16;
  const uint32_t exp = (v.bits >> 10) & 0x1Fu;
  uint32_t mant = v.bits & 0x3FFu;
  if (exp == 0x1F) return bits_to_f32(sign | 0x7F800000u | (mant << 13));  // inf / nan
  if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bits_to_f32(sign);
  // Subnormal half: value = mant · 2^-24, exactly representable in f32.
  const float mag = static_cast<float>(mant) * 5.9604644775390625e-8f;
  return sign ? -mag : mag;
#endif
}

// f32 → bf16, round to nearest even; NaN stays a (quiet) NaN.
inline bf16 to_bf16(float f) {
  const uint32_t u = f32_to_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40u)};
  const uint32_t rounded = u + 0x7FFFu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(rounded >> 16)};
}

// f32 → IEEE half, round to nearest even; overflow gives infinity, NaN stays a (quiet) NaN.
inline f16 to_f16(float f) {
#if defined(__F16C__)
  return f16{static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))};
#else
  const uint32_t x = f32_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exp = (x >> 23) & 0xFFu;
  uint32_t mant = x & 0x7FFFFFu;
  if (exp == 0xFF) return f16{static_cast<uint16_t>(sign | 0x7C00u | (mant ? 0x200u : 0u))};
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 0x1F) return f16{static_cast<uint16_t>(sign | 0x7C00u)};
  if (e <= 0) {  // subnormal half (or zero): shift the full significand into place, then round
    if (e < -10) return f16{static_cast<uint16_t>(sign)};
    mant |= 0x800000u;
    const int shift = 14 - e;
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return f16{static_cast<uint16_t>(sign | h)};
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is still correct
  return f16{static_cast<uint16_t>(sign | h)};
#endif
}

// Calls fn with a null pointer of the storage type of `t` (float, bf16 or f16) so the caller can
// instantiate a kernel per weight dtype: with_storage_type(t, [&](auto* tag) { using T = ...; }).
template <class Fn>
inline void with_storage_type(DType t, Fn&& fn) {
  switch (t) {
    case DType::BF16: fn(static_cast<const bf16*>(nullptr)); return;
    case DType::F16: fn(static_cast<const f16*>(nullptr)); return;
    default: fn(static_cast<const float*>(nullptr)); return;
  }
}

#if defined(__AVX512F__)

#define PARALON_CPU_ISA "avx512"
using vf = __m512;
constexpr int kLanes = 16;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset(float a) { return _mm512_set1_ps(a); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline vf vload(const bf16* p) {
  const __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
}
inline vf vload(const f16* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }  // a·b + c
inline float vreduce_add(vf v) { return _mm512_reduce_add_ps(v); }
inline float vreduce_max(vf v) { return _mm512_reduce_max_ps(v); }
// exp(x) for x in [-87.3, 88.7] (clamped outside): Cephes expf polynomial, ~2 ulp.
inline vf vexp(vf x) {
  x = _mm512_min_ps(_mm512_max_ps(x, vset(-87.3f)), vset(88.7f));
  const vf n = _mm512_roundscale_ps(_mm512_mul_ps(x, vset(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
  vf r = _mm512_fnmadd_ps(n, vset(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, vset(-2.12194440e-4f), r);
  vf p = vset(1.9875691500e-4f);
  p = vfma(p, r, vset(1.3981999507e-3f));
  p = vfma(p, r, vset(8.3334519073e-3f));
  p = vfma(p, r, vset(4.1665795894e-2f));
  p = vfma(p, r, vset(1.6666665459e-1f));
  p = vfma(p, r, vset(5.0000001201e-1f));
  p = vfma(p, vmul(r, r), vadd(r, vset(1.0f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return vmul(p, _mm512_castsi512_ps(e));
}

#elif defined(__AVX2__) && defined(__FMA__)

#define PARALON_CPU_ISA "avx2"
using vf = __m256;
constexpr int kLanes = 8;
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset(float a) { return _mm256_set1_ps(a); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
// bf16 → f32 is the 16-bit pattern moved to the high half: zero-extend, shift left 16.
inline vf vload(const bf16* p) {
  const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}
#if defined(__F16C__)
inline vf vload(const f16* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
#else
inline vf vload(const f16* p) {
  alignas(32) float t[8];
  for (int i = 0; i < 8; ++i) t[i] = to_f32(p[i]);
  return _mm256_load_ps(t);
}
#endif
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline float vreduce_add(vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float vreduce_max(vf v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline vf vexp(vf x) {
  x = _mm256_min_ps(_mm256_max_ps(x, vset(-87.3f)), vset(88.7f));
  const vf n =
      _mm256_round_ps(_mm256_mul_ps(x, vset(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  vf r = _mm256_fnmadd_ps(n, vset(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, vset(-2.12194440e-4f), r);
  vf p = vset(1.9875691500e-4f);
  p = vfma(p, r, vset(1.3981999507e-3f));
  p = vfma(p, r, vset(8.3334519073e-3f));
  p = vfma(p, r, vset(4.1665795894e-2f));
  p = vfma(p, r, vset(1.6666665459e-1f));
  p = vfma(p, r, vset(5.0000001201e-1f));
  p = vfma(p, vmul(r, r), vadd(r, vset(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return vmul(p, _mm256_castsi256_ps(e));
}

#else

// Portable fallback: 8 floats with element loops (auto-vectorised to SSE2 where possible).
#define PARALON_CPU_ISA "scalar"
struct vf {
  float v[8];
};
constexpr int kLanes = 8;
template <class Op>
inline vf vmap(Op op) {
  vf r;
  for (int i = 0; i < 8; ++i) r.v[i] = op(i);
  return r;
}
inline vf vzero() { return vmap([](int) { return 0.0f; }); }
inline vf vset(float a) { return vmap([a](int) { return a; }); }
template <class T>
inline vf vload(const T* p) {
  return vmap([p](int i) { return to_f32(p[i]); });
}
inline void vstore(float* p, vf v) { std::memcpy(p, v.v, sizeof v.v); }
inline vf vadd(vf a, vf b) { return vmap([&](int i) { return a.v[i] + b.v[i]; }); }
inline vf vsub(vf a, vf b) { return vmap([&](int i) { return a.v[i] - b.v[i]; }); }
inline vf vmul(vf a, vf b) { return vmap([&](int i) { return a.v[i] * b.v[i]; }); }
inline vf vdiv(vf a, vf b) { return vmap([&](int i) { return a.v[i] / b.v[i]; }); }
inline vf vmax(vf a, vf b) { return vmap([&](int i) { return a.v[i] > b.v[i] ? a.v[i] : b.v[i]; }); }
inline vf vfma(vf a, vf b, vf c) { return vmap([&](int i) { return a.v[i] * b.v[i] + c.v[i]; }); }
inline float vreduce_add(vf v) {
  return ((v.v[0] + v.v[4]) + (v.v[1] + v.v[5])) + ((v.v[2] + v.v[6]) + (v.v[3] + v.v[7]));
}
inline float vreduce_max(vf v) {
  float m = v.v[0];
  for (int i = 1; i < 8; ++i) m = v.v[i] > m ? v.v[i] : m;
  return m;
}
inline vf vexp(vf x) {
  return vmap([&](int i) { return std::exp(x.v[i] < -87.3f ? -87.3f : x.v[i] > 88.7f ? 88.7f : x.v[i]); });
}

#endif

// silu(g)·u = g·u / (1 + e^-g): the SwiGLU activation, as the swiglu op and the matmul epilogue
// compute it (one definition, so the fused and unfused MLPs agree).
inline vf vsilu_mul(vf g, vf u) { return vdiv(vmul(g, u), vadd(vset(1.0f), vexp(vsub(vzero(), g)))); }
inline float silu_mul(float g, float u) { return g * u / (1.0f + std::exp(-g)); }

// out[i] = silu(gate[i])·up[i] for i < n; out may alias gate or up.
inline void silu_mul_row(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vstore(out + i, vsilu_mul(vload(gate + i), vload(up + i)));
  for (; i < n; ++i) out[i] = silu_mul(gate[i], up[i]);
}

// Dot product of two f32 vectors of length n, two accumulators to hide FMA latency.
inline float dot_f32(const float* a, const float* b, int64_t n) {
  vf acc0 = vzero(), acc1 = vzero();
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    acc0 = vfma(vload(a + i), vload(b + i), acc0);
    acc1 = vfma(vload(a + i + kLanes), vload(b + i + kLanes), acc1);
  }
  for (; i + kLanes <= n; i += kLanes) acc0 = vfma(vload(a + i), vload(b + i), acc0);
  float s = vreduce_add(vadd(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// dst[0..n) = src[0..n) widened to f32.
template <class T>
inline void widen_row(const T* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vstore(dst + i, vload(src + i));
  for (; i < n; ++i) dst[i] = to_f32(src[i]);
}

}  // namespace cpu
}  // namespace paralon
