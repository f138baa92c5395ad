// fp8 e4m3 ("e4m3fn", as vLLM's fp8 KV cache and CUDA's __nv_fp8_e4m3): 1 sign, 4 exponent bits
// (bias 7), 3 mantissa bits; no infinities, 0x7F/0xFF are NaN; largest finite ±448, smallest subnormal
// 2^-9. The KV cache stores x / scale with a per-tensor scale (KvCacheView::k_scale, v_scale); f32 → fp8
// rounds to nearest even and saturates at ±448 (vLLM's saturating conversion), NaN stays NaN.
// Plain bit arithmetic shared by the CPU and CUDA kernels (and mirrored by src/runtime/dtype.ts).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define PARALON_FP8_FN __host__ __device__ __forceinline__
#else
#define PARALON_FP8_FN inline
#endif

namespace paralon {

struct fp8_e4m3 {
  uint8_t bits;
};

PARALON_FP8_FN uint32_t fp8_f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
PARALON_FP8_FN float fp8_bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

PARALON_FP8_FN uint8_t f32_to_e4m3(float f) {
  const uint32_t x = fp8_f32_bits(f);
  const uint8_t sign = static_cast<uint8_t>((x >> 24) & 0x80u);
  const uint32_t a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7Fu;                           // NaN
  if (a >= 0x43E00000u) return sign | 0x7Eu;                          // |x| ≥ 448 (and ∞): saturate
  if (a < 0x3C800000u) {                                              // |x| < 2^-6: subnormal steps of 2^-9
    const float scaled = fp8_bits_f32(a) * 512.0f;                    // exact: a power-of-two product
    // Round to nearest even without a rounding-mode dependency: add then subtract 2^23.
    const float r = (scaled + 8388608.0f) - 8388608.0f;
    return sign | static_cast<uint8_t>(r);                            // r = 8 is the smallest normal
  }
  // Normal: keep 3 mantissa bits, round to nearest even on the 20 dropped bits (a carry bumps the
  // exponent, which is still right), then rebias 127 → 7. 448 + half a step already saturated above.
  const uint32_t rounded = a + 0x7FFFFu + ((a >> 20) & 1u);
  const uint32_t e4m3 = (rounded >> 20) - (120u << 3);
  return sign | static_cast<uint8_t>(e4m3 > 0x7Eu ? 0x7Eu : e4m3);
}

// The exact value (every e4m3 value is an f32 value): rebias the exponent 7 → 127.
PARALON_FP8_FN float e4m3_to_f32(uint8_t b) {
  const uint32_t sign = static_cast<uint32_t>(b & 0x80u) << 24;
  const uint32_t e = (b >> 3) & 0xFu, m = b & 0x7u;
  if (e == 0xF && m == 0x7) return fp8_bits_f32(sign | 0x7FC00000u);  // NaN
  if (e == 0) return sign ? -0.001953125f * static_cast<float>(m) : 0.001953125f * static_cast<float>(m);  // m · 2^-9
  return fp8_bits_f32(sign | ((e + 120u) << 23) | (m << 20));
}

}  // namespace paralon
