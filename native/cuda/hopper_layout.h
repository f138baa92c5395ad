// Layout facts of Hopper's wgmma and TMA shared by the nvcc build, the simulator's model (sim/wgmma.cc,
// sim/tma.cc) and kernels: the matrix-descriptor encoding, the swizzle patterns and the wgmma D
// fragment. Plain functions in namespace paralon (both builds see them); needs __host__/__device__
// defined (nvcc, or sim/device.h).
#pragma once

#include <cstdint>

namespace paralon {

// ---- shared-memory matrix descriptor (PTX ISA "Matrix Descriptor Format") ---------------------------
//   bits 0-13 start address >> 4, 16-29 leading-dimension byte offset >> 4, 32-45 stride-dimension byte
//   offset >> 4, 49-51 base offset (0: tiles aligned to the swizzle pattern's repeat), 62-63 swizzle.
// For K-major operands the "core matrix" is 8 rows × 16 bytes; LBO = bytes between core matrices
// adjacent in K (no-swizzle mode only; swizzled modes keep a row's k values within one swizzle row),
// SBO = bytes between 8-row groups.
enum class Swizzle : uint32_t { kNone = 0, k128B = 1, k64B = 2, k32B = 3 };

__host__ __device__ constexpr uint64_t wgmma_descriptor(uint32_t smem_address, uint32_t lbo_bytes, uint32_t sbo_bytes,
                                                        Swizzle swizzle) {
  return static_cast<uint64_t>((smem_address & 0x3FFFFu) >> 4) |
         static_cast<uint64_t>((lbo_bytes & 0x3FFFFu) >> 4) << 16 |
         static_cast<uint64_t>((sbo_bytes & 0x3FFFFu) >> 4) << 32 | static_cast<uint64_t>(swizzle) << 62;
}

// Bytes per swizzle row (the span whose 16-byte chunks are permuted): 128 / 64 / 32, 16 for none.
__host__ __device__ constexpr uint32_t swizzle_span(Swizzle s) {
  return s == Swizzle::k128B ? 128u : s == Swizzle::k64B ? 64u : s == Swizzle::k32B ? 32u : 16u;
}

// Where a swizzled layout stores the byte at shared address a: the 16-byte chunk index (address bits
// 4..) is XORed with the row index within the 8-row pattern (bits 7.. for 128B, i.e. address / span
// % 8 restricted to the chunks of one span): 128B: bits 4-6 ^= 7-9; 64B: 4-5 ^= 7-8; 32B: 4 ^= 7.
__host__ __device__ constexpr uint32_t swizzle_address(uint32_t a, Swizzle s) {
  return s == Swizzle::k128B ? a ^ (((a >> 7) & 7u) << 4)
         : s == Swizzle::k64B ? a ^ (((a >> 7) & 3u) << 4)
         : s == Swizzle::k32B ? a ^ (((a >> 7) & 1u) << 4)
                              : a;
}

// The D fragment of m64nNk16 (f32 accumulators): register i of thread t of the warpgroup.
__host__ __device__ constexpr int wgmma_d_row(int t, int i) { return 16 * (t / 32) + (t % 32) / 4 + 8 * ((i / 2) % 2); }
__host__ __device__ constexpr int wgmma_d_col(int t, int i) { return 8 * (i / 4) + 2 * (t % 4) + i % 2; }

constexpr int kTmaMaxBox = 256;  // elements per box dimension

}  // namespace paralon
