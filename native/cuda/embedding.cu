#include "kernels.h"

// embedding: out[t, :] = f32(table[ids[t], :]).
//
// Thread mapping: grid (num_tokens, ceil(hidden / (4·256))), 256 threads; each thread converts one
// group of 4 consecutive elements (a float4 of f32, 8 bytes of bf16/f16) of one token's row, so a
// warp reads 256 (bf16) or 512 (f32) contiguous bytes. Rows whose hidden size is not a multiple
// of 4 take the scalar path (one element per thread-slot, same grid).
// An id outside [0, vocab) yields a NaN row: the addon rejects such ids, and the kernel never
// reads outside the table even if one slips through.
// Memory traffic per call: num_tokens · hidden · (sizeof(table dtype) + 4) bytes, no reuse.

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }

// Four consecutive table elements as one aligned vector load (16 bytes of f32, 8 of bf16/f16).
__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 load4(const __nv_bfloat16* p) {
  const uint2 raw = *reinterpret_cast<const uint2*>(p);  // bf16 → f32 is a 16-bit shift
  return make_float4(__uint_as_float(raw.x << 16), __uint_as_float(raw.x & 0xffff0000u),
                     __uint_as_float(raw.y << 16), __uint_as_float(raw.y & 0xffff0000u));
}
__device__ __forceinline__ float4 load4(const __half* p) {
  const uint2 raw = *reinterpret_cast<const uint2*>(p);
  return make_float4(__half2float(__ushort_as_half(static_cast<unsigned short>(raw.x & 0xffffu))),
                     __half2float(__ushort_as_half(static_cast<unsigned short>(raw.x >> 16))),
                     __half2float(__ushort_as_half(static_cast<unsigned short>(raw.y & 0xffffu))),
                     __half2float(__ushort_as_half(static_cast<unsigned short>(raw.y >> 16))));
}

template <typename T, bool kVec4>
__global__ void embedding_kernel(const int32_t* __restrict__ ids, const T* __restrict__ table,
                                 float* __restrict__ out, int64_t vocab, int64_t hidden) {
  const int64_t t = blockIdx.x;
  const int64_t id = ids[t];
  const bool valid = id >= 0 && id < vocab;
  const T* row = table + (valid ? id : 0) * hidden;
  float* dst = out + t * hidden;
  if (kVec4) {
    const int64_t i = (static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x) * 4;
    if (i >= hidden) return;
    float4 v = valid ? load4(row + i) : make_float4(NAN, NAN, NAN, NAN);
    *reinterpret_cast<float4*>(dst + i) = v;
  } else {
    for (int k = 0; k < 4; ++k) {
      const int64_t i = static_cast<int64_t>(blockIdx.y) * kThreads * 4 + k * kThreads + threadIdx.x;
      if (i < hidden) dst[i] = valid ? to_f32(row[i]) : NAN;
    }
  }
}

template <typename T>
void launch_typed(const EmbeddingArgs& a, const int32_t* ids, LaunchContext& ctx) {
  const bool vec4 = a.hidden % 4 == 0 && reinterpret_cast<uintptr_t>(a.table) % (4 * sizeof(T)) == 0 &&
                    reinterpret_cast<uintptr_t>(a.out) % 16 == 0;
  dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>((a.hidden + kThreads * 4 - 1) / (kThreads * 4)));
  const T* table = static_cast<const T*>(a.table);
  if (vec4) {
    PARALON_LAUNCH((embedding_kernel<T, true>), grid, dim3(kThreads), 0, ctx.stream, ids, table, a.out, a.vocab, a.hidden);
  } else {
    PARALON_LAUNCH((embedding_kernel<T, false>), grid, dim3(kThreads), 0, ctx.stream, ids, table, a.out, a.vocab, a.hidden);
  }
}

}  // namespace

void launch_embedding(const EmbeddingArgs& a, LaunchContext& ctx) {
  if (a.num_tokens == 0 || a.hidden == 0) return;
  const int32_t* ids = ctx.stage_i32(a.ids_host, static_cast<size_t>(a.num_tokens));
  switch (a.table_dtype) {
    case DType::F32: launch_typed<float>(a, ids, ctx); break;
    case DType::BF16: launch_typed<__nv_bfloat16>(a, ids, ctx); break;
    case DType::F16: launch_typed<__half>(a, ids, ctx); break;
    default: throw OpError(std::string("embedding: unsupported table dtype ") + dtype_name(a.table_dtype));
  }
  PARALON_CHECK_LAUNCH("embedding");
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
