// 16-byte loads of a cache or weight element type, widened to f32: the unit bandwidth-bound kernels
// issue several of before using any (one 16-byte load per lane is a full 512-byte warp request).
//   Vec16<C>::kElems   elements per load (4 for f32, 8 for bf16 and f16: 16 bytes; 8 for fp8: an
//                      8-byte load, so an fp8 cache keeps the bf16 lane geometry and register budget)
//   Vec16<C>::Raw      the raw register form (float4 or uint4), loaded by Vec16<C>::load
//   Vec16<C>::widen    raw → kElems floats (bf16 is a 16-bit shift, f16 a hardware conversion)
// An element type is supported by adding a specialisation here; the kernels are generic in it.
#pragma once

#include "common.cuh"
#include "fp8_e4m3.h"

namespace paralon {
namespace PARALON_CUDA_NS {

template <typename C>
struct Vec16;

template <>
struct Vec16<float> {
  static constexpr int kElems = 4;
  using Raw = float4;
  static __device__ __forceinline__ Raw zero() { return make_float4(0.f, 0.f, 0.f, 0.f); }
  static __device__ __forceinline__ Raw load(const float* p) { return *reinterpret_cast<const float4*>(p); }
  static __device__ __forceinline__ void widen(const Raw& r, float out[kElems]) {
    out[0] = r.x;
    out[1] = r.y;
    out[2] = r.z;
    out[3] = r.w;
  }
};

template <>
struct Vec16<__nv_bfloat16> {
  static constexpr int kElems = 8;
  using Raw = uint4;
  static __device__ __forceinline__ Raw zero() { return make_uint4(0u, 0u, 0u, 0u); }
  static __device__ __forceinline__ Raw load(const __nv_bfloat16* p) { return *reinterpret_cast<const uint4*>(p); }
  static __device__ __forceinline__ void widen(const Raw& r, float out[kElems]) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {  // element 2i in the low half
      out[2 * i] = __uint_as_float(w[i] << 16);
      out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};

template <>
struct Vec16<__half> {
  static constexpr int kElems = 8;
  using Raw = uint4;
  static __device__ __forceinline__ Raw zero() { return make_uint4(0u, 0u, 0u, 0u); }
  static __device__ __forceinline__ Raw load(const __half* p) { return *reinterpret_cast<const uint4*>(p); }
  static __device__ __forceinline__ void widen(const Raw& r, float out[kElems]) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = __half2float(__ushort_as_half(static_cast<unsigned short>(w[i] & 0xffffu)));
      out[2 * i + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(w[i] >> 16)));
    }
  }
};

template <>
struct Vec16<fp8_e4m3> {
  static constexpr int kElems = 8;
  using Raw = uint2;
  static __device__ __forceinline__ Raw zero() { return make_uint2(0u, 0u); }
  static __device__ __forceinline__ Raw load(const fp8_e4m3* p) { return *reinterpret_cast<const uint2*>(p); }
  static __device__ __forceinline__ void widen(const Raw& r, float out[kElems]) {  // unscaled (see attention.cu)
    const uint32_t w[2] = {r.x, r.y};
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int b = 0; b < 4; ++b) out[4 * i + b] = e4m3_to_f32((w[i] >> (8 * b)) & 0xffu);
  }
};

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
