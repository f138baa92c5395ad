#include "kernels.h"

// rmsnorm with an optional fused residual add:
//   sum = x + residual;  sum_out = sum;  out = sum · rsqrt(mean(sum²) + eps) · weight.
//
// Thread mapping: one CTA per row, min(256, dim/4 rounded up to a warp) threads. Each thread owns
// the float4 groups i = tid, tid + blockDim, ... of its row (scalar elements when dim % 4 != 0 or a
// pointer is not 16-byte aligned) and touches exactly those in both passes, which is what makes the
// allowed aliasing (sum_out = x or residual, out = x) safe without extra barriers.
// Pass 1 forms sum, writes sum_out, accumulates sum² in f32; a block reduction (warp shuffles, then
// one f32 per warp in shared memory) gives the row's statistic; pass 2 re-reads sum (the row was
// just read by this thread, so it comes from L1/L2) and writes out.
// Memory traffic per call: rows · dim · 4 bytes × (1 read of x, 1 of residual, 1 write of sum_out,
// 1 write of out), plus dim weights per row from L2; the second read of the row hits cache.

#include <algorithm>

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr int kMaxThreads = 256;

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }

// Sum of v over the block; every thread gets the result. `partial` holds one float per warp.
__device__ __forceinline__ float block_sum(float v, float* partial) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();  // all warp partials written
  v = lane < warps ? partial[lane] : 0.0f;
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <typename W>
__device__ __forceinline__ float4 load_weight4(const W* w, int64_t i) {
  return make_float4(to_f32(w[i]), to_f32(w[i + 1]), to_f32(w[i + 2]), to_f32(w[i + 3]));
}
template <>
__device__ __forceinline__ float4 load_weight4<float>(const float* w, int64_t i) {
  return *reinterpret_cast<const float4*>(w + i);
}

template <typename W, bool kVec4>
__global__ void rmsnorm_kernel(const float* x, const float* residual, float* sum_out, const W* weight, float* out,
                               int64_t dim, float eps) {
  __shared__ float partial[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * dim;
  const float* xr = x + base;
  const float* rr = residual ? residual + base : nullptr;
  float* sr = sum_out ? sum_out + base : nullptr;
  float* outr = out + base;

  float sumsq = 0.0f;
  if (kVec4) {
    for (int64_t i = threadIdx.x * 4; i < dim; i += blockDim.x * 4) {
      float4 s = *reinterpret_cast<const float4*>(xr + i);
      if (rr) {
        const float4 r = *reinterpret_cast<const float4*>(rr + i);
        s.x += r.x; s.y += r.y; s.z += r.z; s.w += r.w;
      }
      if (sr) *reinterpret_cast<float4*>(sr + i) = s;
      sumsq += s.x * s.x + s.y * s.y + s.z * s.z + s.w * s.w;
    }
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
      const float s = rr ? xr[i] + rr[i] : xr[i];
      if (sr) sr[i] = s;
      sumsq += s * s;
    }
  }
  const float inv_rms = rsqrtf(block_sum(sumsq, partial) / static_cast<float>(dim) + eps);

  if (kVec4) {
    for (int64_t i = threadIdx.x * 4; i < dim; i += blockDim.x * 4) {
      float4 s;
      if (sr) {
        s = *reinterpret_cast<const float4*>(sr + i);
      } else {
        s = *reinterpret_cast<const float4*>(xr + i);
        if (rr) {
          const float4 r = *reinterpret_cast<const float4*>(rr + i);
          s.x += r.x; s.y += r.y; s.z += r.z; s.w += r.w;
        }
      }
      const float4 w = load_weight4(weight, i);
      *reinterpret_cast<float4*>(outr + i) =
          make_float4(s.x * inv_rms * w.x, s.y * inv_rms * w.y, s.z * inv_rms * w.z, s.w * inv_rms * w.w);
    }
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
      const float s = sr ? sr[i] : (rr ? xr[i] + rr[i] : xr[i]);
      outr[i] = s * inv_rms * to_f32(weight[i]);
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename W>
void launch_typed(const RmsNormArgs& a, LaunchContext& ctx) {
  const bool vec4 = a.dim % 4 == 0 && aligned16(a.x) && aligned16(a.residual) && aligned16(a.sum_out) &&
                    aligned16(a.out) && aligned16(a.weight);
  const int64_t slots = vec4 ? a.dim / 4 : a.dim;
  const int threads = static_cast<int>(std::min<int64_t>(kMaxThreads, (slots + 31) / 32 * 32));
  const W* w = static_cast<const W*>(a.weight);
  dim3 grid(static_cast<unsigned>(a.rows));
  if (vec4) {
    PARALON_LAUNCH((rmsnorm_kernel<W, true>), grid, dim3(threads), 0, ctx.stream, a.x, a.residual, a.sum_out, w, a.out,
                   a.dim, a.eps);
  } else {
    PARALON_LAUNCH((rmsnorm_kernel<W, false>), grid, dim3(threads), 0, ctx.stream, a.x, a.residual, a.sum_out, w, a.out,
                   a.dim, a.eps);
  }
}

}  // namespace

void launch_rmsnorm(const RmsNormArgs& a, LaunchContext& ctx) {
  if (a.rows == 0 || a.dim == 0) return;
  switch (a.weight_dtype) {
    case DType::F32: launch_typed<float>(a, ctx); break;
    case DType::BF16: launch_typed<__nv_bfloat16>(a, ctx); break;
    case DType::F16: launch_typed<__half>(a, ctx); break;
    default: throw OpError(std::string("rmsnorm: unsupported weight dtype ") + dtype_name(a.weight_dtype));
  }
  PARALON_CHECK_LAUNCH("rmsnorm");
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
