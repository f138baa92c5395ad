// ggml's quantized blocks on the GPU (and the simulator): one 16-value group of a block decoded to f32
// (value = d_g·q − m_g), the unit every quantized kernel works in. A group is one sub-block of Q6_K,
// half a sub-block of Q4_K/Q5_K/Q8_0 (layouts: native/quant_blocks.h). Its quants come from one
// 16-byte load where the format keeps them 16-byte aligned (Q4_K, Q5_K: 144- and 176-byte blocks, quant
// fields at multiples of 16 in the block, on a 16-byte aligned W), else from eight 2-byte loads
// (Q6_K's 210-byte and Q8_0's 34-byte blocks are only 2-byte aligned).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "quant_blocks.h"

namespace paralon {
namespace PARALON_CUDA_NS {

constexpr int kQuantGroup = 16;

// 16 bytes at p as four little-endian words: one 16-byte load, or eight 2-byte loads.
template <bool kAligned16>
__device__ __forceinline__ void load_bytes16(const uint8_t* p, uint32_t (&w)[4]) {
  if constexpr (kAligned16) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    w[0] = v.x;
    w[1] = v.y;
    w[2] = v.z;
    w[3] = v.w;
  } else {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = static_cast<uint32_t>(__ldg(h + 2 * i)) | (static_cast<uint32_t>(__ldg(h + 2 * i + 1)) << 16);
  }
}

__device__ __forceinline__ float half_bits_to_f32(const uint16_t* p) { return __half2float(__ushort_as_half(__ldg(p))); }

// Byte i of the 16 (0..15) shifted right by s and masked.
__device__ __forceinline__ int byte_bits(const uint32_t (&w)[4], int i, int s, int mask) {
  return static_cast<int>((w[i >> 2] >> (8 * (i & 3) + s)) & mask);
}

// Per format: Block, kValues, kGroups, kAligned16 (whether 16-byte loads are possible on an aligned W),
// and decode(block, g, v) → v[i] = value i of group g.
struct CudaQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kValues = kQK8_0, kGroups = kValues / kQuantGroup;
  static constexpr bool kAligned16 = false;
  template <bool A>
  __device__ __forceinline__ static void decode(const Block* b, int g, float (&v)[kQuantGroup]) {
    const float d = half_bits_to_f32(&b->d);
    uint32_t w[4];
    load_bytes16<false>(reinterpret_cast<const uint8_t*>(b->qs) + kQuantGroup * g, w);
#pragma unroll
    for (int i = 0; i < kQuantGroup; ++i) v[i] = d * static_cast<float>(static_cast<int8_t>(byte_bits(w, i, 0, 0xFF)));
  }
};

struct CudaQ4_K {
  using Block = BlockQ4_K;
  static constexpr int kValues = kQK_K, kGroups = kValues / kQuantGroup;
  static constexpr bool kAligned16 = true;
  template <bool A>
  __device__ __forceinline__ static void decode(const Block* b, int g, float (&v)[kQuantGroup]) {
    const int j = g >> 1;
    int sc, mn;
    uint8_t s[12];
#pragma unroll
    for (int i = 0; i < 12; ++i) s[i] = __ldg(b->scales + i);
    k4_scale_min(s, j, &sc, &mn);
    const float d = half_bits_to_f32(&b->d) * static_cast<float>(sc);
    const float m = half_bits_to_f32(&b->dmin) * static_cast<float>(mn);
    uint32_t w[4];
    load_bytes16<A>(b->qs + 32 * (j >> 1) + 16 * (g & 1), w);
#pragma unroll
    for (int i = 0; i < kQuantGroup; ++i) v[i] = fmaf(d, static_cast<float>(byte_bits(w, i, 4 * (j & 1), 0xF)), -m);
  }
};

struct CudaQ5_K {
  using Block = BlockQ5_K;
  static constexpr int kValues = kQK_K, kGroups = kValues / kQuantGroup;
  static constexpr bool kAligned16 = true;
  template <bool A>
  __device__ __forceinline__ static void decode(const Block* b, int g, float (&v)[kQuantGroup]) {
    const int j = g >> 1;
    int sc, mn;
    uint8_t s[12];
#pragma unroll
    for (int i = 0; i < 12; ++i) s[i] = __ldg(b->scales + i);
    k4_scale_min(s, j, &sc, &mn);
    const float d = half_bits_to_f32(&b->d) * static_cast<float>(sc);
    const float m = half_bits_to_f32(&b->dmin) * static_cast<float>(mn);
    uint32_t lo[4], hi[4];
    load_bytes16<A>(b->qs + 32 * (j >> 1) + 16 * (g & 1), lo);
    load_bytes16<A>(b->qh + 16 * (g & 1), hi);
#pragma unroll
    for (int i = 0; i < kQuantGroup; ++i) {
      const int q = byte_bits(lo, i, 4 * (j & 1), 0xF) | (byte_bits(hi, i, j, 1) << 4);
      v[i] = fmaf(d, static_cast<float>(q), -m);
    }
  }
};

// Group g = sub-block g: half h = g/8, quarter r = (g%8)/2, values l0 .. l0+15 of the quarter
// (l0 = 16·(g%2)); low nibble from ql[64h + 32·(r%2) + l] (high nibble when r ≥ 2), top 2 bits at
// bit 2r of qh[32h + l].
struct CudaQ6_K {
  using Block = BlockQ6_K;
  static constexpr int kValues = kQK_K, kGroups = kValues / kQuantGroup;
  static constexpr bool kAligned16 = false;
  template <bool A>
  __device__ __forceinline__ static void decode(const Block* b, int g, float (&v)[kQuantGroup]) {
    const int h = g >> 3, r = (g & 7) >> 1, l0 = 16 * (g & 1);
    const float d = half_bits_to_f32(&b->d) * static_cast<float>(static_cast<int8_t>(__ldg(reinterpret_cast<const uint8_t*>(b->scales) + g)));
    uint32_t lo[4], hi[4];
    load_bytes16<false>(b->ql + 64 * h + 32 * (r & 1) + l0, lo);
    load_bytes16<false>(b->qh + 32 * h + l0, hi);
#pragma unroll
    for (int i = 0; i < kQuantGroup; ++i) {
      const int q = (byte_bits(lo, i, 4 * (r >> 1), 0xF) | (byte_bits(hi, i, 2 * r, 3) << 4)) - 32;
      v[i] = d * static_cast<float>(q);
    }
  }
};

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
