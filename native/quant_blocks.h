// ggml's block-quantized formats, bit for bit (ggml-common.h's block_q8_0, block_q4_K, block_q5_K,
// block_q6_K). Plain structs of bytes (f16 fields as raw bits), shared by the CPU and CUDA kernels; the
// TypeScript reference (src/quant/) documents the value of each field.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define PARALON_HOST_DEVICE __host__ __device__
#else
#define PARALON_HOST_DEVICE
#endif

namespace paralon {

constexpr int kQK8_0 = 32;  // values per Q8_0 block
constexpr int kQK_K = 256;  // values per K-format super-block

// x = d · qs[i]
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK8_0];
};

// Sub-block j (32 values): x = d·scale_j·q − dmin·min_j, q in 0..15; 6-bit scales and mins packed in
// `scales` (get_scale_min_k4). qs: 4 groups of 32 bytes, group c holds sub-block 2c in the low
// nibbles and 2c+1 in the high nibbles.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};

// As Q4_K with a 5th bit: value l of sub-block j (l in 0..31) has bit j of qh[l].
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};

// Sub-block s (16 values): x = d·scales[s]·(q − 32), q in 0..63 from a low nibble of ql and 2 bits of qh
// (see the CPU and CUDA decoders).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};

static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block is 144 bytes");
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block is 176 bytes");
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block is 210 bytes");
static_assert(alignof(BlockQ8_0) == 2 && alignof(BlockQ6_K) == 2, "blocks pack with 2-byte alignment, as in ggml");

// Scale and min (6 bits each) of sub-block j of a Q4_K/Q5_K block.
PARALON_HOST_DEVICE inline void k4_scale_min(const uint8_t* q, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace paralon
