#include "kernels.h"

// qk_norm_rope: Qwen3's per-head RMSNorm of q and k fused with rotate-half RoPE, in place.
//
// Thread mapping: a warp per head, 4 heads per CTA, the CTAs of all (token, head quad) pairs in one
// flat grid (q heads first, then k heads; a token's quads are neighbouring CTAs), so a decode step of
// a few tokens still spreads over Hq + Hkv heads / 4 SMs instead of one. The CTA first builds its
// token's cos/sin table (D/2 entries) in shared memory; lane l of a warp owns the rotation pairs
// (i, i + D/2) for i = l, l + 32, ... < D/2, so one pass loads the head, reduces Σx² with warp
// shuffles, applies the norm weight and rotates, and writes back; a warp's loads and stores are
// contiguous 128-byte runs.
// Angles: inv_freq (plain or YaRN frequencies, from the caller, in double) is staged; the device forms
// the angle pos · inv_freq and its sin/cos in double, once per CTA (D/2 values, shared by its 4
// heads), then rounds to f32. A float angle would lose ~pos·2^-24 rad (0.002 rad at 32k), so
// double is used where it is cheap. YaRN's attention factor scales the table (cos and sin alike),
// as transformers scales its cos/sin cache.
// Supports even head_dim ≤ 512.
// Memory traffic per call: num_tokens · (Hq + Hkv) · D · 8 bytes (read + write), plus the weights
// (from L1/L2) and D/2 doubles of inv_freq per CTA (L2).

#include <cmath>

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr int kHeadsPerCta = 4;  // one warp each
constexpr int kThreads = 32 * kHeadsPerCta;
constexpr int kMaxHalf = 256;  // head_dim ≤ 512

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }

// kPairs: rotation pairs per lane, ≥ D / 64.
template <typename W, int kPairs>
__global__ void qk_norm_rope_kernel(float* q, float* k, const W* q_weight, const W* k_weight,
                                    const int32_t* positions, const double* inv_freq, int num_q_heads,
                                    int num_kv_heads, int head_dim, float eps, float attention_factor) {
  __shared__ float cos_s[kMaxHalf];
  __shared__ float sin_s[kMaxHalf];
  const int half = head_dim / 2;
  const int heads = num_q_heads + num_kv_heads;
  const int quads = (heads + kHeadsPerCta - 1) / kHeadsPerCta;
  const int64_t t = blockIdx.x / quads;
  const int h = (blockIdx.x % quads) * kHeadsPerCta + threadIdx.x / 32;
  const double pos = positions[t];
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    double s, c;
    sincos(pos * inv_freq[i], &s, &c);
    cos_s[i] = static_cast<float>(attention_factor * c);
    sin_s[i] = static_cast<float>(attention_factor * s);
  }
  __syncthreads();  // the table is complete before any warp rotates

  const int lane = threadIdx.x % 32;
  if (h < heads) {  // the last quad of a token may be partial
    const bool is_q = h < num_q_heads;
    float* x = is_q ? q + (t * num_q_heads + h) * head_dim : k + (t * num_kv_heads + (h - num_q_heads)) * head_dim;
    const W* w = is_q ? q_weight : k_weight;
    float lo[kPairs], hi[kPairs];
    float sumsq = 0.0f;
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const int i = lane + 32 * j;
      lo[j] = i < half ? x[i] : 0.0f;
      hi[j] = i < half ? x[i + half] : 0.0f;
      sumsq += lo[j] * lo[j] + hi[j] * hi[j];
    }
    if (w) {
      for (int off = 16; off > 0; off >>= 1) sumsq += __shfl_xor_sync(0xffffffffu, sumsq, off);
      const float inv_rms = rsqrtf(sumsq / static_cast<float>(head_dim) + eps);
#pragma unroll
      for (int j = 0; j < kPairs; ++j) {
        const int i = lane + 32 * j;
        if (i < half) {
          lo[j] = lo[j] * inv_rms * to_f32(w[i]);
          hi[j] = hi[j] * inv_rms * to_f32(w[i + half]);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const int i = lane + 32 * j;
      if (i < half) {
        const float c = cos_s[i], s = sin_s[i];
        x[i] = lo[j] * c - hi[j] * s;
        x[i + half] = hi[j] * c + lo[j] * s;
      }
    }
  }
}

template <typename W, int kPairs>
void launch_pairs(const QkNormRopeArgs& a, const int32_t* positions, const double* inv_freq, LaunchContext& ctx) {
  const int64_t quads = (a.num_q_heads + a.num_kv_heads + kHeadsPerCta - 1) / kHeadsPerCta;
  PARALON_LAUNCH((qk_norm_rope_kernel<W, kPairs>), dim3(static_cast<unsigned>(a.num_tokens * quads)), dim3(kThreads), 0,
                 ctx.stream, a.q, a.k, static_cast<const W*>(a.q_weight), static_cast<const W*>(a.k_weight), positions,
                 inv_freq, static_cast<int>(a.num_q_heads), static_cast<int>(a.num_kv_heads),
                 static_cast<int>(a.head_dim), a.eps, a.attention_factor);
}

template <typename W>
void launch_typed(const QkNormRopeArgs& a, const int32_t* positions, const double* inv_freq, LaunchContext& ctx) {
  const int64_t half = a.head_dim / 2;
  if (half <= 32) launch_pairs<W, 1>(a, positions, inv_freq, ctx);
  else if (half <= 64) launch_pairs<W, 2>(a, positions, inv_freq, ctx);
  else if (half <= 128) launch_pairs<W, 4>(a, positions, inv_freq, ctx);
  else launch_pairs<W, 8>(a, positions, inv_freq, ctx);
}

}  // namespace

void launch_qk_norm_rope(const QkNormRopeArgs& a, LaunchContext& ctx) {
  if (a.num_tokens == 0) return;
  if ((a.num_q_heads + a.num_kv_heads + kHeadsPerCta - 1) / kHeadsPerCta * a.num_tokens > INT32_MAX) {
    throw OpError("qk_norm_rope: " + std::to_string(a.num_tokens) + " tokens of " +
                  std::to_string(a.num_q_heads + a.num_kv_heads) + " heads exceed the grid");
  }
  if (a.head_dim <= 0 || a.head_dim % 2 != 0 || a.head_dim > 2 * kMaxHalf) {
    throw OpError("qk_norm_rope: head_dim must be even and at most 512, got " + std::to_string(a.head_dim));
  }
  const size_t half = static_cast<size_t>(a.head_dim / 2);
  const double* inv_freq_d = static_cast<const double*>(ctx.constant_bytes(a.inv_freq_host, sizeof(double) * half));
  const int32_t* positions = ctx.stage_i32(a.positions_host, static_cast<size_t>(a.num_tokens));
  switch (a.weight_dtype) {
    case DType::F32: launch_typed<float>(a, positions, inv_freq_d, ctx); break;
    case DType::BF16: launch_typed<__nv_bfloat16>(a, positions, inv_freq_d, ctx); break;
    case DType::F16: launch_typed<__half>(a, positions, inv_freq_d, ctx); break;
    default: throw OpError(std::string("qk_norm_rope: unsupported weight dtype ") + dtype_name(a.weight_dtype));
  }
  PARALON_CHECK_LAUNCH("qk_norm_rope");
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
