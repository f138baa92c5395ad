// The simulator's Hopper instructions (native/cuda/hopper.cuh's wrappers call these): wgmma in
// sim/wgmma.cc, TMA and mbarriers in sim/tma.cc. Kernel-side semantics are documented in hopper.cuh;
// what the model checks beyond hardware is listed in each .cc file's header.
#pragma once

#include <cstdint>
#include <string>

#include "sim/device.h"
#include "hopper_layout.h"

namespace paralon {
namespace sim {

// The simulator's CUtensorMap: a 2-D row-major tensor of elem_bytes-byte elements.
struct TensorMap {
  static constexpr uint32_t kMagic = 0x544D4150u;  // "TMAP": a map built by make_tensor_map_2d
  uint32_t magic;
  uint32_t elem_bytes;
  const void* base;
  uint64_t dims[2];     // elements: inner (contiguous), outer
  uint64_t row_bytes;   // between outer indices
  uint32_t box[2];      // elements per box: inner, outer
  int swizzle;          // Swizzle of hopper.cuh: 0 none, 1 128B, 2 64B, 3 32B
};
std::string model_make_tensor_map_2d(TensorMap* map, const void* base, uint32_t elem_bytes, uint64_t inner, uint64_t outer,
                               uint64_t row_bytes, uint32_t box_inner, uint32_t box_outer, int swizzle);

// Shared window addresses: static __shared__ at [0, 0x20000), dynamic shared memory at 0x20000 + offset
// (so the dynamic arena's alignment in the window is that of its offsets, as on hardware where it
// starts at a 1024-byte boundary or after the static variables).
constexpr uint32_t kDynamicWindowBase = 0x20000;
uint32_t shared_window_address(const void* p);
unsigned char* shared_window_pointer(uint32_t address, size_t bytes);  // faults when outside

void model_mbarrier_init(uint64_t* bar, uint32_t count);
void model_mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes);
bool model_mbarrier_try_wait_parity(uint64_t* bar, uint32_t parity);
void model_tma_load_2d(void* smem_dst, const TensorMap* map, uint64_t* bar, int c0, int c1);

void model_wgmma_fence();
void model_wgmma_commit();
void model_wgmma_wait(int n);
void model_wgmma_issue(float* d, int n, uint64_t desc_a, uint64_t desc_b, int scale_d, MmaType type);

// block_runner.cc: per block; hopper_end_block returns what a thread left in flight (empty when none).
void hopper_begin_block(int num_threads);
std::string hopper_end_block();

}  // namespace sim
}  // namespace paralon
