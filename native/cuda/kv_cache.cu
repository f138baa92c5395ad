#include "kernels.h"
#include "fp8_e4m3.h"

// kv_write: cache.k[slot[t]] = k[t], cache.v[slot[t]] = v[t]; cache rows are [Hkv, D] inside blocks
// laid out [num_blocks, block_size, Hkv, D], so slot s starts at element s · Hkv · D.
//
// Thread mapping: grid (num_tokens, ceil(Hkv·D / (4·128))), 128 threads; each thread moves one
// group of 4 consecutive elements of K and the same group of V (float4 loads; float4 or 4 × bf16/f16/
// fp8 stores, round-to-nearest-even; fp8 stores x / scale, saturating). Scalar path when Hkv·D % 4 != 0 or a pointer is misaligned.
// A slot outside [0, num_blocks · block_size) — e.g. -1 for a padded token — is skipped.
// Memory traffic per call: num_tokens · Hkv · D · (8 bytes read + 2 · sizeof(cache dtype) written).

#include <algorithm>

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr int kThreads = 128;

__device__ __forceinline__ void store4(float* dst, float4 v) { *reinterpret_cast<float4*>(dst) = v; }
__device__ __forceinline__ uint32_t bf16_bits(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
__device__ __forceinline__ void store4(__nv_bfloat16* dst, float4 v) {
  *reinterpret_cast<uint2*>(dst) =
      make_uint2(bf16_bits(v.x) | (bf16_bits(v.y) << 16), bf16_bits(v.z) | (bf16_bits(v.w) << 16));
}
__device__ __forceinline__ uint32_t f16_bits(float v) { return __half_as_ushort(__float2half_rn(v)); }
__device__ __forceinline__ void store4(__half* dst, float4 v) {
  *reinterpret_cast<uint2*>(dst) =
      make_uint2(f16_bits(v.x) | (f16_bits(v.y) << 16), f16_bits(v.z) | (f16_bits(v.w) << 16));
}
__device__ __forceinline__ void store4(fp8_e4m3* dst, float4 v) {  // 4 bytes, saturating RNE
  *reinterpret_cast<uint32_t*>(dst) = uint32_t(f32_to_e4m3(v.x)) | (uint32_t(f32_to_e4m3(v.y)) << 8) |
                                      (uint32_t(f32_to_e4m3(v.z)) << 16) | (uint32_t(f32_to_e4m3(v.w)) << 24);
}
__device__ __forceinline__ void store1(float* dst, float v) { *dst = v; }
__device__ __forceinline__ void store1(__nv_bfloat16* dst, float v) { *dst = __float2bfloat16_rn(v); }
__device__ __forceinline__ void store1(__half* dst, float v) { *dst = __float2half_rn(v); }
__device__ __forceinline__ void store1(fp8_e4m3* dst, float v) { dst->bits = f32_to_e4m3(v); }
__device__ __forceinline__ float4 times(float4 v, float s) { return make_float4(v.x * s, v.y * s, v.z * s, v.w * s); }

template <typename C, bool kVec4>
__global__ void kv_write_kernel(C* cache_k, C* cache_v, const float* __restrict__ k, const float* __restrict__ v,
                                const int32_t* __restrict__ slots, int64_t num_slots, int64_t row, float k_inv,
                                float v_inv) {  // 1 / the per-tensor scales: 1 (exact) but for fp8
  const int64_t t = blockIdx.x;
  const int64_t slot = slots[t];
  if (slot < 0 || slot >= num_slots) return;
  const float* ks = k + t * row;
  const float* vs = v + t * row;
  C* kd = cache_k + slot * row;
  C* vd = cache_v + slot * row;
  if (kVec4) {
    const int64_t i = (static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x) * 4;
    if (i >= row) return;
    store4(kd + i, times(*reinterpret_cast<const float4*>(ks + i), k_inv));
    store4(vd + i, times(*reinterpret_cast<const float4*>(vs + i), v_inv));
  } else {
    for (int j = 0; j < 4; ++j) {
      const int64_t i = static_cast<int64_t>(blockIdx.y) * kThreads * 4 + j * kThreads + threadIdx.x;
      if (i < row) {
        store1(kd + i, ks[i] * k_inv);
        store1(vd + i, vs[i] * v_inv);
      }
    }
  }
}

bool aligned(const void* p, size_t n) { return reinterpret_cast<uintptr_t>(p) % n == 0; }

template <typename C>
void launch_typed(const KvWriteArgs& a, const int32_t* slots, LaunchContext& ctx) {
  const int64_t row = a.cache.num_kv_heads * a.cache.head_dim;
  const int64_t num_slots = a.cache.num_blocks * a.cache.block_size;
  const bool vec4 = row % 4 == 0 && aligned(a.k, 16) && aligned(a.v, 16) && aligned(a.cache.k, 4 * sizeof(C)) &&
                    aligned(a.cache.v, 4 * sizeof(C));
  dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>((row + 4 * kThreads - 1) / (4 * kThreads)));
  C* ck = static_cast<C*>(a.cache.k);
  C* cv = static_cast<C*>(a.cache.v);
  const float k_inv = 1.0f / a.cache.k_scale, v_inv = 1.0f / a.cache.v_scale;
  if (vec4) {
    PARALON_LAUNCH((kv_write_kernel<C, true>), grid, dim3(kThreads), 0, ctx.stream, ck, cv, a.k, a.v, slots, num_slots,
                   row, k_inv, v_inv);
  } else {
    PARALON_LAUNCH((kv_write_kernel<C, false>), grid, dim3(kThreads), 0, ctx.stream, ck, cv, a.k, a.v, slots,
                   num_slots, row, k_inv, v_inv);
  }
}

}  // namespace

void launch_kv_write(const KvWriteArgs& a, LaunchContext& ctx) {
  if (a.num_tokens == 0 || a.cache.num_kv_heads * a.cache.head_dim == 0) return;
  const int32_t* slots = ctx.stage_i32(a.slots_host, static_cast<size_t>(a.num_tokens));
  switch (a.cache.dtype) {
    case DType::F32: launch_typed<float>(a, slots, ctx); break;
    case DType::BF16: launch_typed<__nv_bfloat16>(a, slots, ctx); break;
    case DType::F16: launch_typed<__half>(a, slots, ctx); break;
    case DType::FP8_E4M3: launch_typed<fp8_e4m3>(a, slots, ctx); break;
    default: throw OpError(std::string("kv_write: unsupported cache dtype ") + dtype_name(a.cache.dtype));
  }
  PARALON_CHECK_LAUNCH("kv_write");
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
