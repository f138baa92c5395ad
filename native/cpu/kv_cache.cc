// kv_write: scatter each new token's K and V rows [Hkv, D] into its cache slot, converting to the
// cache dtype (bf16, f16 and fp8 round to nearest even; fp8 stores x / scale, saturating at ±448).
// Traffic: 2·T·Hkv·D·(4 + sizeof(cache)) bytes.
#include <algorithm>
#include <cstring>

#include "cpu/kernels.h"
#include "cpu/simd.h"
#include "fp8_e4m3.h"

namespace paralon {
namespace cpu {

namespace {

// `inv_scale` is 1 / the cache's per-tensor scale; only fp8 has one.
inline void store_row(const float* src, float* dst, int64_t n, float) { std::memcpy(dst, src, n * sizeof(float)); }
inline void store_row(const float* src, bf16* dst, int64_t n, float) {
  for (int64_t i = 0; i < n; ++i) dst[i] = to_bf16(src[i]);
}
inline void store_row(const float* src, f16* dst, int64_t n, float) {
  for (int64_t i = 0; i < n; ++i) dst[i] = to_f16(src[i]);
}
inline void store_row(const float* src, fp8_e4m3* dst, int64_t n, float inv_scale) {
  for (int64_t i = 0; i < n; ++i) dst[i].bits = f32_to_e4m3(src[i] * inv_scale);
}

template <class C>
void write_tokens(Context& ctx, const KvWriteArgs& a) {
  const int64_t row = a.cache.num_kv_heads * a.cache.head_dim;
  const int64_t num_slots = a.cache.num_blocks * a.cache.block_size;
  C* k_cache = static_cast<C*>(a.cache.k);
  C* v_cache = static_cast<C*>(a.cache.v);
  const float k_inv = 1.0f / a.cache.k_scale, v_inv = 1.0f / a.cache.v_scale;
  const int64_t per_chunk = chunk_size(a.num_tokens, ctx.pool, std::max<int64_t>(1, 8192 / std::max<int64_t>(row, 1)));
  ctx.pool.parallel_for((a.num_tokens + per_chunk - 1) / per_chunk, [&](int64_t c, int) {
    const int64_t t1 = std::min(a.num_tokens, (c + 1) * per_chunk);
    for (int64_t t = c * per_chunk; t < t1; ++t) {
      const int64_t slot = a.slots_host[t];
      if (slot < 0 || slot >= num_slots) continue;  // validated upstream; never write out of bounds
      store_row(a.k + t * row, k_cache + slot * row, row, k_inv);
      store_row(a.v + t * row, v_cache + slot * row, row, v_inv);
    }
  });
}

}  // namespace

void kv_write(Context& ctx, const KvWriteArgs& a) {
  if (a.num_tokens <= 0) return;
  switch (a.cache.dtype) {
    case DType::BF16: write_tokens<bf16>(ctx, a); break;
    case DType::F16: write_tokens<f16>(ctx, a); break;
    case DType::FP8_E4M3: write_tokens<fp8_e4m3>(ctx, a); break;
    default: write_tokens<float>(ctx, a); break;
  }
}

}  // namespace cpu
}  // namespace paralon
