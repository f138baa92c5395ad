// The CPU matmul kernels (native/cpu/matmul.cc, quant_matmul.cc) built for one instruction-set path and
// run against a float64 reference: f32/bf16/f16 weights, row counts on both sides of every kernel
// threshold (streaming ≤ 8, widened dot tiles ≤ 64, blocked GEMM above), awkward N and K, plain,
// with a residual, and with the SwiGLU epilogue; outputs poisoned with NaN before each run. Prints one
// line per case and exits non-zero on the first error above 1e-5 (normalised max error).
// Compiled by test/runtime/cpu-isa-matmul.test.ts once per path (scalar, AVX2, AVX-512).
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/simd.h"

using namespace paralon;
using namespace paralon::cpu;

namespace {

struct Weights {
  std::vector<float> f32;
  std::vector<bf16> b16;
  std::vector<f16> h16;
  std::vector<double> used;  // the values the kernel multiplies by
  const void* data(DType t) const {
    return t == DType::BF16 ? static_cast<const void*>(b16.data()) : t == DType::F16 ? static_cast<const void*>(h16.data()) : f32.data();
  }
};

Weights make_weights(std::mt19937& rng, DType t, int64_t n) {
  std::normal_distribution<float> dist(0.0f, 0.05f);
  Weights w;
  for (int64_t i = 0; i < n; ++i) {
    const float v = dist(rng);
    w.f32.push_back(v);
    w.b16.push_back(to_bf16(v));
    w.h16.push_back(to_f16(v));
    w.used.push_back(t == DType::BF16 ? to_f32(w.b16.back()) : t == DType::F16 ? to_f32(w.h16.back()) : v);
  }
  return w;
}

double max_error(const std::vector<float>& got, const std::vector<double>& want) {
  double ref = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ref = std::fmax(ref, std::fabs(want[i]));
    const double e = std::fabs(got[i] - want[i]);
    err = std::isfinite(e) ? std::fmax(err, e) : INFINITY;
  }
  return ref > 0 ? err / ref : err;
}

}  // namespace

int main() {
  Context ctx(2);
  std::mt19937 rng(42);
  std::normal_distribution<float> xdist(0.0f, 1.0f);
  const DType types[] = {DType::F32, DType::BF16, DType::F16};
  const int64_t rows[] = {1, 3, 8, 9, 16, 33, 64, 65, 130};
  int failures = 0;
  for (DType t : types) {
    for (int64_t M : rows) {
      for (int swiglu = 0; swiglu < 2; ++swiglu) {
        const int64_t N = swiglu ? 2 * 75 : 133, K = M % 2 ? 1001 : 96;
        std::vector<float> x(M * K), residual(M * N);
        for (float& v : x) v = xdist(rng);
        for (float& v : residual) v = xdist(rng);
        const Weights w = make_weights(rng, t, N * K);
        const int64_t out_cols = swiglu ? N / 2 : N;
        std::vector<float> y(M * out_cols, NAN);
        MatmulArgs a{x.data(), w.data(t), t, swiglu ? nullptr : residual.data(), y.data(), M, N, K};
        if (swiglu) a.epilogue = MatmulEpilogue::Swiglu;
        matmul(ctx, a);
        std::vector<double> want(M * out_cols);
        for (int64_t m = 0; m < M; ++m) {
          for (int64_t n = 0; n < out_cols; ++n) {
            double g = 0, u = 0;
            for (int64_t k = 0; k < K; ++k) {
              g += static_cast<double>(x[m * K + k]) * w.used[n * K + k];
              if (swiglu) u += static_cast<double>(x[m * K + k]) * w.used[(out_cols + n) * K + k];
            }
            want[m * out_cols + n] = swiglu ? g / (1 + std::exp(-g)) * u : g + residual[m * N + n];
          }
        }
        const double e = max_error(y, want);
        const bool ok = e <= 1e-5;
        failures += !ok;
        std::printf("%s %s M=%lld N=%lld K=%lld%s: max error %.3e\n", ok ? "ok" : "FAIL", dtype_name(t),
                    static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K),
                    swiglu ? " epilogue=swiglu" : " residual", e);
      }
    }
  }
  std::printf("ISA %s, %d failures\n", PARALON_CPU_ISA, failures);
  return failures == 0 ? 0 : 1;
}
