#include "kernels.h"
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>
namespace paralon { namespace PARALON_CUDA_NS {
// y[M,N] = x[M,K] · W[N,K]^T, W bf16, tile 32x64x16, 4 warps (2x2), each warp 16x32 = 4 mma n-tiles.
__global__ void __launch_bounds__(128) mm(const float* x, const __nv_bfloat16* W, float* y, int M, int N, int K) {
  __shared__ __align__(16) __nv_bfloat16 As[32][24];
  __shared__ __align__(16) __nv_bfloat16 Bs[64][24];
  const int t = threadIdx.x, lane = t % 32, w = t / 32, wm = w / 2, wn = w % 2;
  const int m0 = blockIdx.y * 32, n0 = blockIdx.x * 64;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += 16) {
    { const int row = t / 4, col = (t % 4) * 4;
      for (int i = 0; i < 4; ++i) { const int m = m0 + row, k = k0 + col + i;
        As[row][col + i] = __float2bfloat16(m < M && k < K ? x[(size_t)m * K + k] : 0.f); } }
    { const int row = t / 2, half = t % 2; const int n = n0 + row, k = k0 + half * 8;
      const bool ok = n < N && k + 8 <= K;
      cp_async_16(&Bs[row][half * 8], ok ? &W[(size_t)n * K + k] : W, ok); }
    cp_async_commit(); cp_async_wait<0>(); __syncthreads();
    uint32_t a[4]; ldmatrix_x4(a, &As[wm * 16 + lane % 16][(lane / 16) * 8]);
    for (int nt = 0; nt < 4; ++nt) { uint32_t b[2];
      ldmatrix_x2(b, &Bs[wn * 32 + nt * 8 + lane % 8][((lane / 8) % 2) * 8]);
      mma_bf16_16816(acc[nt], a, b, acc[nt]); }
    __syncthreads();
  }
  const int g = lane / 4, q = lane % 4;
  for (int nt = 0; nt < 4; ++nt) for (int h = 0; h < 2; ++h) for (int c = 0; c < 2; ++c) {
    const int m = m0 + wm * 16 + g + 8 * h, n = n0 + wn * 32 + nt * 8 + 2 * q + c;
    if (m < M && n < N) y[(size_t)m * N + n] = acc[nt][2 * h + c];
  }
}
int run(int M, int N, int K) {
  std::vector<float> x((size_t)M * K); std::vector<__nv_bfloat16> W((size_t)N * K); std::vector<float> Wf(W.size());
  unsigned s = 1; auto rnd = [&] { s = s * 1664525u + 1013904223u; return ((s >> 8) / 16777216.0f) * 2 - 1; };
  for (auto& v : x) v = rnd(); for (size_t i = 0; i < W.size(); ++i) { W[i] = __float2bfloat16(rnd()); Wf[i] = __bfloat162float(W[i]); }
  float *dx, *dy; __nv_bfloat16* dW;
  cudaMalloc((void**)&dx, x.size() * 4); cudaMalloc((void**)&dW, W.size() * 2); cudaMalloc((void**)&dy, (size_t)M * N * 4);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice); cudaMemcpy(dW, W.data(), W.size() * 2, cudaMemcpyHostToDevice);
  auto t0 = std::chrono::steady_clock::now();
  PARALON_LAUNCH(mm, dim3((N + 63) / 64, (M + 31) / 32), dim3(128), 0, nullptr, dx, dW, dy, M, N, K);
  cudaError_t e = cudaDeviceSynchronize();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<float> y((size_t)M * N); cudaMemcpy(y.data(), dy, y.size() * 4, cudaMemcpyDeviceToHost);
  double maxerr = 0;
  for (int m = 0; m < M; ++m) for (int n = 0; n < N; ++n) { double r = 0;
    for (int k = 0; k < K; ++k) r += (double)__bfloat162float(__float2bfloat16(x[(size_t)m * K + k])) * Wf[(size_t)n * K + k];
    maxerr = std::fmax(maxerr, std::fabs(r - y[(size_t)m * N + n])); }
  printf("M=%d N=%d K=%d: %s, %.1f ms, max abs err %.3g\n", M, N, K, cudaGetErrorString(e), ms, maxerr);
  cudaFree(dx); cudaFree(dW); cudaFree(dy); return 0;
}
}}
int main() { paralon::cuda_sim::run(17, 1000, 1000); paralon::cuda_sim::run(3, 37, 1000); paralon::cuda_sim::run(65, 1000, 96); }
