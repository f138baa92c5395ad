// silu(g) · u = g / (1 + e^−g) · u: the SwiGLU activation, shared by the swiglu op (swiglu.cu) and the
// matmul's Swiglu epilogue (matmul.cu, quant_matmul.cu) so the fused and unfused paths round alike.
#pragma once

#include "common.cuh"

namespace paralon {
namespace PARALON_CUDA_NS {

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
