// The one spelling every CUDA source file uses, for both builds of native/cuda/*.cu:
//   nvcc            → namespace paralon::cuda, real hardware;
//   host C++ (sim)  → namespace paralon::cuda_sim, PARALON_CUDA_SIM=1, the simulator in sim/.
// Included first by every .cu (through kernels.h).
//
// Kernel authors write ordinary CUDA — __global__, __device__ __forceinline__, __launch_bounds__,
// __restrict__, threadIdx/blockIdx/blockDim/gridDim/warpSize, static `__shared__ T a[...]` inside
// kernels, __syncthreads(_count/_and/_or), __syncwarp, __shfl(_xor/_down/_up)_sync, __ballot_sync,
// __any_sync, __all_sync, __activemask, __reduce_{add,min,max,and,or,xor}_sync, atomics,
// __threadfence*, __nv_bfloat16/__half and their conversions, float4/uint4/int4 + make_*, the fast
// math intrinsics — plus the spellings below that differ between the builds:
//
//   PARALON_CUDA_NS                         the namespace: `namespace paralon { namespace PARALON_CUDA_NS {`
//   PARALON_CUDA_SIM_BUILD                  1 in the simulator build, 0 under nvcc (PARALON_CUDA_SIM is
//                                           defined only in the simulator build)
//   PARALON_LAUNCH(k, grid, block, smem, stream, args...)
//                                           every launch (<<<>>> does not compile on the host). A
//                                           template kernel goes in parentheses:
//                                           PARALON_LAUNCH((gemm<64, 4>), grid, block, 0, s, x, y);
//   PARALON_DYNAMIC_SHARED(T, name);        dynamic shared memory as `T* name`, 16-byte aligned
//   the tensor-core / async-copy wrappers   mma_bf16_16816, mma_f16_16816, ldmatrix_x{2,4}[_trans],
//                                           cp_async_16, cp_async_commit, cp_async_wait<N>
//
//   the Hopper wrappers (hopper.cuh)        wgmma_m64n128k16, wgmma_fence/commit/wait, tma_load_2d,
//                                           fence_proxy_async, mbarrier_*, make_tensor_map_2d,
//                                           shared_address
//
// Hopper instructions (wgmma, TMA, mbarrier) have a simulator model (sim/wgmma.cc, sim/tma.cc), so a
// Hopper kernel compiles and runs in both builds; under nvcc its PTX is emitted for sm_90a only
// (other archs get a trap: PARALON_SM90A_ASM), and the launcher dispatches it only when
// LaunchContext::cc_major == 9 and the build contains sm_90a (PARALON_HAS_SM90A). Clusters and
// multicast are not modelled.
//
// Only what this header provides compiles for the simulator: no CUB, cooperative_groups, raw inline
// PTX or cuda_runtime.h features beyond sim/runtime_api.h.
//
// Things the simulator checks that hardware does not report: a thread leaving the kernel while
// others wait at __syncthreads (barrier divergence), warp collectives whose lanes disagree on the
// mask or the operation, reads of memory nobody wrote (shared and device memory are filled with
// 0x7FF0 per 16-bit half — a NaN for f32, bf16 and f16, a huge index as an integer — before every
// block / at cudaMalloc), writes past the dynamic shared memory size, ldmatrix/cp.async on misaligned
// or non-shared addresses, data read from cp.async destinations before cp_async_wait (the copy lands
// only at the wait), in PARALON_SIM_CHECKS builds indices outside a static __shared__ array
// (-fsanitize=bounds), and, when asked (sim/sanitizers.h), shared-memory races, global accesses
// outside their allocation or after cudaFree, reads of never-written memory, and code that assumes
// the lanes of a warp run in step (seeded random schedules).
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__) && !defined(PARALON_CUDA_SIM)
// ================================================ nvcc ================================================
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define PARALON_CUDA_NS cuda
#define PARALON_CUDA_SIM_BUILD 0

#define PARALON_LAUNCH(kernel, grid, block, smem_bytes, stream, ...) \
  kernel<<<(grid), (block), (smem_bytes), (stream)>>>(__VA_ARGS__)

// One untyped extern array per translation unit, viewed as T: kernels of the same file may use
// different element types without the "declared with a different type" error of typed externs.
#define PARALON_DYNAMIC_SHARED(T, name)                                          \
  extern __shared__ __align__(16) unsigned char paralon_dynamic_shared_bytes[]; \
  T* const name = reinterpret_cast<T*>(paralon_dynamic_shared_bytes)

namespace paralon {
namespace cuda {

// ---- mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32 --------------------------------
// D[16x8] = A[16x16] · B[16x8] + C[16x8], one warp. With g = lane / 4 and t = lane % 4, each 32-bit
// register holds two 16-bit elements, the lower-numbered column (A) or row (B) in the low half:
//   a[0] = A[g    ][2t, 2t+1]     a[1] = A[g + 8][2t, 2t+1]
//   a[2] = A[g    ][2t+8, 2t+9]   a[3] = A[g + 8][2t+8, 2t+9]
//   b[0] = B[2t, 2t+1][g]         b[1] = B[2t+8, 2t+9][g]
//   c[0], c[1] = C[g    ][2t, 2t+1]   c[2], c[3] = C[g + 8][2t, 2t+1]   (d likewise)
// d may alias c.
__device__ __forceinline__ void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2],
                                               const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
}

__device__ __forceinline__ void mma_f16_16816(float d[4], const uint32_t a[4], const uint32_t b[2],
                                              const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
}

// ---- ldmatrix.sync.aligned.m8n8.{x2,x4}[.trans].shared.b16 -------------------------------------------
// Loads 8x8 matrices of 16-bit elements from shared memory, one warp. Matrix i's row r (8 elements,
// 16 contiguous bytes, 16-byte aligned) is at the address given by lane 8i + r (lanes 0-15 for x2,
// 0-31 for x4; the other lanes' addresses are ignored). Lane l receives in r[i] matrix i's elements
// [l/4][2(l%4)] (low half) and [l/4][2(l%4)+1] (high half) — exactly the A/B fragment layout above;
// with .trans it receives [2(l%4)][l/4] and [2(l%4)+1][l/4] (the matrix transposed).
__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(smem))
               : "memory");
}

__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(shared_address(smem))
               : "memory");
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(smem))
               : "memory");
}

__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(shared_address(smem))
               : "memory");
}

// ---- cp.async.cg.shared.global (16 bytes, L2 only) + commit/wait groups -----------------------------
// Copies 16 bytes (both addresses 16-byte aligned) from global to shared memory asynchronously; with
// pred false it reads nothing and writes 16 zero bytes (src-size 0). The copies a thread issues
// between two cp_async_commit() form a group; cp_async_wait<N>() blocks until at most the N most
// recently committed groups of this thread are still in flight. Other threads see the data only
// after the wait and a __syncthreads().
__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src, bool pred) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(smem_dst)),
               "l"(gmem_src), "r"(pred ? 16 : 0)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

}  // namespace cuda
}  // namespace paralon

#elif defined(PARALON_CUDA_SIM)
// ============================================= simulator ==============================================
// device.h redefines the CUDA keywords for the host compiler and declares everything above (same
// names, same semantics) in paralon::sim; runtime_api.h declares the runtime-API subset.
#define PARALON_CUDA_NS cuda_sim
#define PARALON_CUDA_SIM_BUILD 1

#include "sim/device.h"
#include "sim/runtime_api.h"

#define PARALON_LAUNCH(kernel, grid, block, smem_bytes, stream, ...) \
  ::paralon::sim::launch(#kernel, kernel, (grid), (block), (smem_bytes), (stream), ##__VA_ARGS__)

#define PARALON_DYNAMIC_SHARED(T, name) \
  T* const name = reinterpret_cast<T*>(::paralon::sim::dynamic_shared_memory())

namespace paralon {
namespace cuda_sim {
// The simulator's CUDA names (runtime API, intrinsics, wrappers) as if declared here.
using namespace ::paralon::sim::cuda_names;
}  // namespace cuda_sim
}  // namespace paralon

#else
#error "common.cuh: compile with nvcc, or with PARALON_CUDA_SIM=1 for the simulator"
#endif

#include "hopper.cuh"
