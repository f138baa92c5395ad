#include "kernels.h"
#include "quant.cuh"

// embedding: out[t, :] = f32(table[ids[t], :]).
//
// Thread mapping: grid (num_tokens, ceil(hidden / (4·256))), 256 threads; each thread converts one
// group of 4 consecutive elements (a float4 of f32, 8 bytes of bf16/f16) of one token's row, so a
// warp reads 256 (bf16) or 512 (f32) contiguous bytes. Rows whose hidden size is not a multiple
// of 4 take the scalar path (one element per thread-slot, same grid).
// An id outside [0, vocab) yields a NaN row: the addon rejects such ids, and the kernel never
// reads outside the table even if one slips through.
// Memory traffic per call: num_tokens · hidden · (sizeof(table dtype) + 4) bytes, no reuse.
//
// Quantized tables (embedding_quant_kernel): grid (num_tokens, ceil(groups / 256)), 256 threads; each
// thread decodes one 16-value group of the token's row (quant.cuh) and stores it as 4 float4 (or 16
// floats when out is not 16-byte aligned). Traffic: num_tokens · (row bytes + hidden · 4).

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

template <class F>
__global__ void embedding_quant_kernel(const int32_t* __restrict__ ids, const typename F::Block* __restrict__ table,
                                       float* __restrict__ out, int64_t vocab, int64_t hidden, bool out_aligned16) {
  const int64_t t = blockIdx.x;
  const int64_t id = ids[t];
  const bool valid = id >= 0 && id < vocab;
  const int64_t nb = hidden / F::kValues;
  const int64_t gi = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (gi >= nb * F::kGroups) return;
  float v[kQuantGroup];
  if (valid) {
    F::template decode<false>(table + id * nb + gi / F::kGroups, static_cast<int>(gi % F::kGroups), v);
  } else {
    for (float& f : v) f = NAN;
  }
  float* dst = out + t * hidden + gi * kQuantGroup;
  if (out_aligned16) {
    for (int q = 0; q < kQuantGroup / 4; ++q)
      reinterpret_cast<float4*>(dst)[q] = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
  } else {
    for (int i = 0; i < kQuantGroup; ++i) dst[i] = v[i];
  }
}

template <class F>
void launch_quant(const EmbeddingArgs& a, const int32_t* ids, LaunchContext& ctx) {
  if (reinterpret_cast<uintptr_t>(a.table) % 2 != 0)
    throw OpError("embedding: a quantized table must be 2-byte aligned (its blocks hold f16 fields)");
  const int64_t groups = a.hidden / F::kValues * F::kGroups;
  dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>((groups + kThreads - 1) / kThreads));
  PARALON_LAUNCH((embedding_quant_kernel<F>), grid, dim3(kThreads), 0, ctx.stream, ids,
                 static_cast<const typename F::Block*>(a.table), a.out, a.vocab, a.hidden,
                 reinterpret_cast<uintptr_t>(a.out) % 16 == 0);
}

}  // namespace

void launch_embedding(const EmbeddingArgs& a, LaunchContext& ctx) {
  if (a.num_tokens == 0 || a.hidden == 0) return;
  const int32_t* ids = ctx.stage_i32(a.ids_host, static_cast<size_t>(a.num_tokens));
  switch (a.table_dtype) {
    case DType::F32: launch_typed<float>(a, ids, ctx); break;
    case DType::BF16: launch_typed<__nv_bfloat16>(a, ids, ctx); break;
    case DType::F16: launch_typed<__half>(a, ids, ctx); break;
    case DType::Q8_0: launch_quant<CudaQ8_0>(a, ids, ctx); break;
    case DType::Q4_K: launch_quant<CudaQ4_K>(a, ids, ctx); break;
    case DType::Q5_K: launch_quant<CudaQ5_K>(a, ids, ctx); break;
    case DType::Q6_K: launch_quant<CudaQ6_K>(a, ids, ctx); break;
    default: throw OpError(std::string("embedding: unsupported table dtype ") + dtype_name(a.table_dtype));
  }
  PARALON_CHECK_LAUNCH("embedding");
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
