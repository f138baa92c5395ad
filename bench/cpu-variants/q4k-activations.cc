// How activations meet Q4_K weights on the CPU, measured (AVX-512 VNNI machines): the kernel's way —
// f32 activations × weights table-decoded to f32 (native/cpu/quant.h chunk64) — against llama.cpp's —
// activations quantized to int8 per 32 values, integer dot products with vpdpbusd, scales applied per
// sub-block. Prints each one's relative RMS error against the f64 product of the dequantized weights
// and their throughput on one thread with L2-resident blocks (interleaved runs, best of 30).
//   c++ -std=c++17 -O3 -march=native -Inative -o /tmp/q4k-activations bench/cpu-variants/q4k-activations.cc && /tmp/q4k-activations
// Result on the 2-core AVX-512 dev VM (2026-12-05, machine shared and busy): error 7.3e-8 (f32) vs
// 6.8e-3 (int8); throughput 9.9 vs 8.7 Gweights/s — int8 is not faster in this form and 10^5× less exact.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include "cpu/quant.h"
using namespace paralon; using namespace paralon::cpu;
float dot_f32(const BlockQ4_K* row, int64_t nb, const float* x) {
  vf acc[4] = {vzero(), vzero(), vzero(), vzero()};
  for (int64_t b = 0; b < nb; ++b) for (int c = 0; c < 4; ++c) { __m512 v[4]; chunk64(row[b], c, v); const float* xc = x + b * 256 + 64 * c; for (int i = 0; i < 4; ++i) acc[i] = vfma(vload(xc + 16 * i), v[i], acc[i]); }
  return vreduce_add(vadd(vadd(acc[0], acc[1]), vadd(acc[2], acc[3])));
}
struct Q8x { std::vector<int8_t> q; std::vector<float> d; std::vector<int32_t> sum; };  // per 32 values
Q8x quantize_x(const float* x, int64_t K) {
  Q8x r; r.q.resize(K); r.d.resize(K / 32); r.sum.resize(K / 32);
  for (int64_t j = 0; j < K / 32; ++j) { float amax = 0; for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[32 * j + i]));
    float d = amax / 127, id = d ? 1 / d : 0; int s = 0; for (int i = 0; i < 32; ++i) { int q = (int)std::lround(x[32 * j + i] * id); r.q[32 * j + i] = q; s += q; } r.d[j] = d; r.sum[j] = s; }
  return r;
}
float dot_int8(const BlockQ4_K* row, int64_t nb, const Q8x& xq) {
  __m512 acc = _mm512_setzero_ps(); float mins = 0;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const float dd = half_to_f32(row[b].d), dm = half_to_f32(row[b].dmin);
    for (int c = 0; c < 4; ++c) {
      int s0, m0, s1, m1; k4_scale_min(row[b].scales, 2 * c, &s0, &m0); k4_scale_min(row[b].scales, 2 * c + 1, &s1, &m1);
      const __m256i q32 = _mm256_loadu_si256((const __m256i*)(row[b].qs + 32 * c));
      const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(q32), q32, 1);
      // bytes 0..31: low nibbles (sub-block 2c), 32..63: high nibbles (2c+1)
      const __m512i w = _mm512_and_si512(_mm512_srlv_epi64(both, _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4)), m4);
      const int64_t j = b * 8 + 2 * c;
      const __m512i xv = _mm512_loadu_si512(xq.q.data() + 32 * j);
      const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xv);  // lanes 0..7: 2c, 8..15: 2c+1
      const __m512 scale = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_castps_si256(_mm256_set1_ps(dd * s0 * xq.d[j]))), _mm256_castps_si256(_mm256_set1_ps(dd * s1 * xq.d[j + 1])), 1));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc);
      mins += dm * m0 * xq.d[j] * xq.sum[j] + dm * m1 * xq.d[j + 1] * xq.sum[j + 1];
    }
  }
  return _mm512_reduce_add_ps(acc) - mins;
}
int main() {
  const int64_t K = 1024, N = 192, nb = K / 256;
  std::mt19937 g(1); std::normal_distribution<float> nd;
  std::vector<BlockQ4_K> w(N * nb);
  unsigned char* p = reinterpret_cast<unsigned char*>(w.data());
  for (size_t i = 0; i < w.size() * sizeof(BlockQ4_K); ++i) p[i] = g() >> 7;
  for (auto& b : w) { b.d = 0x1c00; b.dmin = 0x1c00; }
  std::vector<float> x(K); for (auto& v : x) v = nd(g);
  // accuracy vs f64 of dequantized weights
  std::vector<float> deq(K); double e32 = 0, e8 = 0, ref2 = 0; Q8x xq = quantize_x(x.data(), K);
  for (int64_t n = 0; n < N; ++n) { double ref = 0; for (int64_t b = 0; b < nb; ++b) decode_block<FormatQ4_K>(w[n * nb + b], deq.data() + 256 * b); for (int k = 0; k < K; ++k) ref += (double)deq[k] * x[k];
    e32 += std::pow(dot_f32(w.data() + n * nb, nb, x.data()) - ref, 2); e8 += std::pow(dot_int8(w.data() + n * nb, nb, xq) - ref, 2); ref2 += ref * ref; }
  printf("relative rms error vs f64: f32 path %.2e, int8 activations %.2e\n", std::sqrt(e32 / ref2), std::sqrt(e8 / ref2));
  double best[2] = {1e9, 1e9}; float chk[2];
  for (int r = 0; r < 30; ++r) for (int v = 0; v < 2; ++v) {
    auto t0 = std::chrono::steady_clock::now(); float s = 0;
    for (int rep = 0; rep < 20; ++rep) { if (v) { Q8x q = quantize_x(x.data(), K); for (int64_t n = 0; n < N; ++n) s += dot_int8(w.data() + n * nb, nb, q); } else for (int64_t n = 0; n < N; ++n) s += dot_f32(w.data() + n * nb, nb, x.data()); }
    best[v] = std::min(best[v], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 20); chk[v] = s; }
  printf("f32 × table-decoded: %.2f Gw/s; int8 VNNI: %.2f Gw/s (ratio %.2f) [%g %g]\n", N * K / best[0] / 1e9, N * K / best[1] / 1e9, best[0] / best[1], chk[0], chk[1]);
}
