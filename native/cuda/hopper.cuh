// Hopper (sm_90a) wrappers: wgmma (warpgroup MMA from shared-memory descriptors), TMA (2-D tensor
// copies global → shared) and the mbarriers that TMA completes. Included by common.cuh in both builds:
// under nvcc inline PTX (bodies only for sm_90a: __CUDA_ARCH_FEAT_SM90_ALL, elsewhere a trap); in the
// simulator the model in sim/wgmma.cc and sim/tma.cc (written from the PTX ISA, see those files).
//
// wgmma.mma_async.sync.aligned.m64n128k16.f32.{bf16,f16}.{bf16,f16} (A and B in shared memory):
//   one warpgroup (4 consecutive warps, 128 threads; warpgroup w = threads 128w .. 128w + 127) computes
//   D[64x128] = A[64x16] · B[16x128] (+ D when scale_d ≠ 0); A is "K-major" (row m's 16 k values
//   contiguous), B likewise (column n's 16 k values contiguous: W's [N, K] rows), both described by a
//   64-bit matrix descriptor (wgmma_descriptor below). Thread t of the warpgroup (warp q = t / 32,
//   lane l) holds D in d[64]: d[i] = D[16q + l/4 + 8·((i/2) % 2)][8·(i/4) + 2·(l%4) + i%2]
//   (wgmma_d_row / wgmma_d_col). The MMA runs asynchronously: wgmma_fence() before the first wgmma of
//   a batch (orders earlier register and shared-memory accesses), wgmma_commit() closes a group,
//   wgmma_wait<N>() returns once at most N groups are in flight; only then may d be read or the
//   operands' shared memory be overwritten.
//
// cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes (tma_load_2d): one
//   thread copies a box (box[0] elements of the contiguous dimension × box[1] rows) at coordinates
//   (c0, c1) of a 2-D tensor described by a TensorMap into shared memory, laid out row after row and
//   swizzled as the map says; elements outside the tensor are written as zero; when the bytes have
//   landed it performs complete_tx(box bytes, including the zero-filled ones) on the mbarrier.
// mbarrier: mbarrier_init(bar, count) (one thread, then __syncthreads); mbarrier_arrive_expect_tx
//   (arrive once and expect bytes); a phase completes when all `count` arrivals happened and the
//   expected bytes landed; mbarrier_wait(bar, parity) returns once the phase with that parity has
//   completed (the first phase has parity 0).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "hopper_layout.h"

#if PARALON_CUDA_SIM_BUILD == 0
#include <cuda.h>  // CUtensorMap and the cuTensorMapEncodeTiled types only: libcuda is not linked
#include <cudaTypedefs.h>

// ================================================ nvcc ================================================
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PARALON_SM90A_ASM(...) __trap()
#else
#define PARALON_SM90A_ASM(...) asm volatile(__VA_ARGS__)
#endif

#define PARALON_WGMMA_D64(d) \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
  "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
  "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
  "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
  "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
  "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
  "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

namespace paralon {
namespace cuda {

using TensorMap = CUtensorMap;

__device__ __forceinline__ void mbarrier_init(uint64_t* bar, uint32_t count) {
  PARALON_SM90A_ASM("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(shared_address(bar)), "r"(count) : "memory");
}
// Makes the initialised barriers visible to the async proxy (TMA); then __syncthreads.
__device__ __forceinline__ void mbarrier_init_fence() {
  PARALON_SM90A_ASM("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  PARALON_SM90A_ASM("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(shared_address(bar)), "r"(bytes)
                    : "memory");
}
__device__ __forceinline__ bool mbarrier_try_wait_parity(uint64_t* bar, uint32_t parity) {
  uint32_t done = 0;
  PARALON_SM90A_ASM(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.b32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(shared_address(bar)), "r"(parity)
      : "memory");
  return done != 0;
}
__device__ __forceinline__ void mbarrier_wait(uint64_t* bar, uint32_t parity) {
  while (!mbarrier_try_wait_parity(bar, parity)) {
  }
}

// map: a __grid_constant__ kernel parameter (its generic address is what TMA takes).
__device__ __forceinline__ void tma_load_2d(void* smem_dst, const TensorMap* map, uint64_t* bar, int c0, int c1) {
  PARALON_SM90A_ASM(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(
          shared_address(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(shared_address(bar)), "r"(c0), "r"(c1)
      : "memory");
}

// Orders this thread's earlier generic-proxy shared-memory stores before later async-proxy reads (wgmma
// operands written with ordinary stores; TMA-written operands need none).
__device__ __forceinline__ void fence_proxy_async() { PARALON_SM90A_ASM("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_fence() { PARALON_SM90A_ASM("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { PARALON_SM90A_ASM("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  PARALON_SM90A_ASM("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// D[64x128] (+)= A·B, T16 = __nv_bfloat16 or __half.
template <typename T16>
__device__ __forceinline__ void wgmma_m64n128k16(float d[64], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  if constexpr (std::is_same_v<T16, __nv_bfloat16>) {
    PARALON_SM90A_ASM(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
        : PARALON_WGMMA_D64(d)
        : "l"(desc_a), "l"(desc_b), "r"(scale_d));
  } else {
    PARALON_SM90A_ASM(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
        : PARALON_WGMMA_D64(d)
        : "l"(desc_a), "l"(desc_b), "r"(scale_d));
  }
}

// Host: a 2-D tensor map of 16-bit elements, row-major [outer][inner] with row_bytes between rows (a
// multiple of 16; base 16-byte aligned), box box_inner × box_outer, out-of-bounds elements zero. The
// encoder comes from the driver at run time (cudaGetDriverEntryPointByVersion), so the addon needs no
// libcuda link. Empty on success, else why not.
inline std::string make_tensor_map_2d(TensorMap* map, const void* base, uint64_t inner, uint64_t outer,
                                      uint64_t row_bytes, uint32_t box_inner, uint32_t box_outer, Swizzle swizzle) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult status{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &status) !=
            cudaSuccess ||
        status != cudaDriverEntryPointSuccess) {
      fn = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (encode == nullptr) return "cuTensorMapEncodeTiled is not available from the driver";
  const cuuint64_t dims[2] = {inner, outer};
  const cuuint64_t strides[1] = {row_bytes};
  const cuuint32_t box[2] = {box_inner, box_outer};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUtensorMapSwizzle sw = swizzle == Swizzle::k128B  ? CU_TENSOR_MAP_SWIZZLE_128B
                                : swizzle == Swizzle::k64B ? CU_TENSOR_MAP_SWIZZLE_64B
                                : swizzle == Swizzle::k32B ? CU_TENSOR_MAP_SWIZZLE_32B
                                                           : CU_TENSOR_MAP_SWIZZLE_NONE;
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT16, 2, const_cast<void*>(base), dims, strides, box,
                            element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, sw, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? std::string() : "cuTensorMapEncodeTiled failed (CUresult " + std::to_string(r) + ")";
}

}  // namespace cuda
}  // namespace paralon

#else
// ============================================= simulator ==============================================
#include "sim/hopper.h"

namespace paralon {
namespace cuda_sim {
using ::paralon::sim::TensorMap;
// The address in the simulated shared window (what cvta.to.shared gives on hardware; sim/tma.cc).
inline uint32_t shared_address(const void* p) { return sim::shared_window_address(p); }
inline void mbarrier_init(uint64_t* bar, uint32_t count) { sim::model_mbarrier_init(bar, count); }
inline void mbarrier_init_fence() {}
inline void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) { sim::model_mbarrier_arrive_expect_tx(bar, bytes); }
inline bool mbarrier_try_wait_parity(uint64_t* bar, uint32_t parity) { return sim::model_mbarrier_try_wait_parity(bar, parity); }
inline void mbarrier_wait(uint64_t* bar, uint32_t parity) {
  while (!sim::model_mbarrier_try_wait_parity(bar, parity)) {
  }
}
inline void tma_load_2d(void* smem_dst, const TensorMap* map, uint64_t* bar, int c0, int c1) {
  sim::model_tma_load_2d(smem_dst, map, bar, c0, c1);
}
inline void fence_proxy_async() {}  // the simulator's wgmma reads shared memory as stored
inline void wgmma_fence() { sim::model_wgmma_fence(); }
inline void wgmma_commit() { sim::model_wgmma_commit(); }
template <int N>
inline void wgmma_wait() {
  static_assert(N >= 0 && N <= 7, "wgmma.wait_group takes 0..7");
  sim::model_wgmma_wait(N);
}
template <typename T16>
inline void wgmma_m64n128k16(float d[64], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  sim::model_wgmma_issue(d, 128, desc_a, desc_b, scale_d, std::is_same<T16, __nv_bfloat16>::value ? sim::kMmaBf16 : sim::kMmaF16);
}
inline std::string make_tensor_map_2d(TensorMap* map, const void* base, uint64_t inner, uint64_t outer,
                                      uint64_t row_bytes, uint32_t box_inner, uint32_t box_outer, Swizzle swizzle) {
  return sim::model_make_tensor_map_2d(map, base, 2, inner, outer, row_bytes, box_inner, box_outer, static_cast<int>(swizzle));
}
}  // namespace cuda_sim
}  // namespace paralon
#endif
