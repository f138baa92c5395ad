// RMSNorm (with the fused residual add) and Qwen3's per-head QK-norm fused with rotate-half RoPE.
// Both are memory-bound row ops: one pass to sum squares, one to scale; rows split across threads.
#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"
#include "cpu/simd.h"

namespace paralon {
namespace cpu {

namespace {

// Sum of squares of row[0..n).
inline float sum_squares(const float* row, int64_t n) {
  vf acc0 = vzero(), acc1 = vzero();
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    const vf a = vload(row + i), b = vload(row + i + kLanes);
    acc0 = vfma(a, a, acc0);
    acc1 = vfma(b, b, acc1);
  }
  for (; i + kLanes <= n; i += kLanes) {
    const vf a = vload(row + i);
    acc0 = vfma(a, a, acc0);
  }
  float s = vreduce_add(vadd(acc0, acc1));
  for (; i < n; ++i) s += row[i] * row[i];
  return s;
}

// out[i] = in[i] · scale · weight[i]; out may alias in.
template <class T>
inline void scale_by_weight(const float* in, float scale, const T* weight, float* out, int64_t n) {
  const vf s = vset(scale);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vstore(out + i, vmul(vmul(vload(in + i), s), vload(weight + i)));
  for (; i < n; ++i) out[i] = in[i] * scale * to_f32(weight[i]);
}

template <class T>
void rmsnorm_rows(Context& ctx, const RmsNormArgs& a) {
  const T* weight = static_cast<const T*>(a.weight);
  const int64_t dim = a.dim;
  const int64_t rows_per_chunk = chunk_size(a.rows, ctx.pool, std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1)));
  ctx.pool.parallel_for((a.rows + rows_per_chunk - 1) / rows_per_chunk, [&](int64_t c, int) {
    const int64_t r1 = std::min(a.rows, (c + 1) * rows_per_chunk);
    for (int64_t r = c * rows_per_chunk; r < r1; ++r) {
      const float* x = a.x + r * dim;
      float* out = a.out + r * dim;
      const float* sum = x;  // the row to normalise
      if (a.residual) {
        // sum_out may alias x or residual: each element is read before it is written.
        float* dst = a.sum_out ? a.sum_out + r * dim : out;
        const float* res = a.residual + r * dim;
        int64_t i = 0;
        for (; i + kLanes <= dim; i += kLanes) vstore(dst + i, vadd(vload(x + i), vload(res + i)));
        for (; i < dim; ++i) dst[i] = x[i] + res[i];
        sum = dst;
      } else if (a.sum_out && a.sum_out + r * dim != x) {
        std::copy(x, x + dim, a.sum_out + r * dim);
      }
      const float inv_rms = 1.0f / std::sqrt(sum_squares(sum, dim) / static_cast<float>(dim) + a.eps);
      scale_by_weight(sum, inv_rms, weight, out, dim);
    }
  });
}

// One head in place: RMSNorm with `weight` (skipped when null), then rotate-half RoPE with the
// token's cos/sin table (half = D/2 entries each).
template <class T>
inline void norm_rope_head(float* x, const T* weight, float eps, int64_t D, const float* cos_t, const float* sin_t) {
  if (weight) {
    const float inv_rms = 1.0f / std::sqrt(sum_squares(x, D) / static_cast<float>(D) + eps);
    scale_by_weight(x, inv_rms, weight, x, D);
  }
  const int64_t half = D / 2;
  float* lo = x;
  float* hi = x + half;
  int64_t i = 0;
  for (; i + kLanes <= half; i += kLanes) {
    const vf a = vload(lo + i), b = vload(hi + i), c = vload(cos_t + i), s = vload(sin_t + i);
    vstore(lo + i, vsub(vmul(a, c), vmul(b, s)));
    vstore(hi + i, vfma(a, s, vmul(b, c)));
  }
  for (; i < half; ++i) {
    const float a = lo[i], b = hi[i];
    lo[i] = a * cos_t[i] - b * sin_t[i];
    hi[i] = b * cos_t[i] + a * sin_t[i];
  }
}

template <class T>
void qk_norm_rope_tokens(Context& ctx, const QkNormRopeArgs& a) {
  const T* q_weight = static_cast<const T*>(a.q_weight);
  const T* k_weight = static_cast<const T*>(a.k_weight);
  const int64_t D = a.head_dim, half = D / 2;
  ctx.scratch.reserve(2 * arena_bytes<float>(half), "qk_norm_rope");
  const int64_t tokens_per_chunk = chunk_size(a.num_tokens, ctx.pool, 1);
  ctx.pool.parallel_for((a.num_tokens + tokens_per_chunk - 1) / tokens_per_chunk, [&](int64_t c, int thread) {
    ArenaCursor arena(ctx.scratch.arena(thread));
    float* cos_t = arena.carve<float>(half);
    float* sin_t = arena.carve<float>(half);
    // The angles in double: cos/sin of large positions stay accurate to f32.
    const double* inv_freq = a.inv_freq_host;
    const double scale = a.attention_factor;
    const int64_t t1 = std::min(a.num_tokens, (c + 1) * tokens_per_chunk);
    for (int64_t t = c * tokens_per_chunk; t < t1; ++t) {
      const double pos = static_cast<double>(a.positions_host[t]);
      for (int64_t i = 0; i < half; ++i) {
        const double angle = pos * inv_freq[i];
        cos_t[i] = static_cast<float>(scale * std::cos(angle));
        sin_t[i] = static_cast<float>(scale * std::sin(angle));
      }
      for (int64_t h = 0; h < a.num_q_heads; ++h)
        norm_rope_head(a.q + (t * a.num_q_heads + h) * D, q_weight, a.eps, D, cos_t, sin_t);
      for (int64_t h = 0; h < a.num_kv_heads; ++h)
        norm_rope_head(a.k + (t * a.num_kv_heads + h) * D, k_weight, a.eps, D, cos_t, sin_t);
    }
  });
}

}  // namespace

void rmsnorm(Context& ctx, const RmsNormArgs& a) {
  if (a.rows <= 0 || a.dim <= 0) return;
  with_storage_type(a.weight_dtype, [&](auto* tag) {
    rmsnorm_rows<std::remove_const_t<std::remove_pointer_t<decltype(tag)>>>(ctx, a);
  });
}

void qk_norm_rope(Context& ctx, const QkNormRopeArgs& a) {
  if (a.num_tokens <= 0 || a.head_dim <= 0) return;
  with_storage_type(a.weight_dtype, [&](auto* tag) {
    qk_norm_rope_tokens<std::remove_const_t<std::remove_pointer_t<decltype(tag)>>>(ctx, a);
  });
}

}  // namespace cpu
}  // namespace paralon
