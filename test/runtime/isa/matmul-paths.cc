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

#include "cpu/gemm.h"
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

// Fast precision (matmul_bf16.cc, where built with AVX512-BF16 and the CPU has it): bf16 weights,
// x rounded to bf16. Two checks per case: against a float64 reference on the bf16-rounded x (only the
// f32 accumulation differs: 1e-5 normalised, as the exact path), and against the exact reference on
// the f32 x with the bound the rounding allows, |y − y_exact| ≤ 2^-8 · Σ|x·w| per element (each x
// moves by at most 2^-9 relative; 2^-8 leaves room for accumulation). Splits, residual and SwiGLU.
// With amx: the same cases through the AMX tile GEMM (matmul_amx.cc, built with target attributes on
// every path, so it runs wherever the CPU has AMX-BF16); rows below kMinAmxRows take the other kernels.
int fast_cases(std::mt19937& rng, bool amx) {
  Context ctx(2);
  ctx.bf16_dot = bf16_dot_supported();
  ctx.amx = amx;
  std::normal_distribution<float> xdist(0.0f, 1.0f);
  int failures = 0;
  for (int64_t M : {1, 3, 9, 17, 70, 300}) {
    if (amx && M < kMinAmxRows) continue;  // not the AMX kernel's rows (checked without amx)
    for (int mode = 0; mode < 3; ++mode) {  // 0: residual, 1: two-part split output, 2: SwiGLU
      const int64_t N = mode == 2 ? 2 * 75 : 133, K = M % 2 ? 1001 : 96 + 37;
      std::vector<float> x(M * K), residual(M * N);
      for (float& v : x) v = xdist(rng);
      for (float& v : residual) v = xdist(rng);
      const Weights w = make_weights(rng, DType::BF16, N * K);
      const int64_t out_cols = mode == 2 ? N / 2 : N;
      std::vector<float> y(M * out_cols, NAN);
      MatmulArgs a{x.data(), w.b16.data(), DType::BF16, mode == 0 ? residual.data() : nullptr, y.data(), M, N, K};
      std::vector<float> part1;
      const int64_t split = 61;  // part 0: W rows [0, 61) into y columns, part 1: the rest into part1
      if (mode == 1) {
        part1.assign(M * (N - split), NAN);
        y.assign(M * split, NAN);
        a.num_parts = 2;
        a.parts[0] = y.data();
        a.parts[1] = part1.data();
        a.part_start[1] = split;
        a.part_start[2] = N;
        a.part_w[0] = w.b16.data();
        a.part_w[1] = w.b16.data() + split * K;
        a.part_w_dtype[0] = a.part_w_dtype[1] = DType::BF16;
      }
      if (mode == 2) a.epilogue = MatmulEpilogue::Swiglu;
      matmul(ctx, a);
      std::vector<float> got(M * out_cols);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < out_cols; ++n)
          got[m * out_cols + n] = mode != 1 ? y[m * out_cols + n] : n < split ? y[m * split + n] : part1[m * (N - split) + n - split];
      std::vector<double> want_rounded(M * out_cols);
      double worst_bound = 0;  // max over elements of |got − exact| / allowed
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < out_cols; ++n) {
          double g = 0, u = 0, gr = 0, ur = 0, ga = 0, ua = 0;
          for (int64_t k = 0; k < K; ++k) {
            const double xv = x[m * K + k], xr = to_f32(to_bf16(x[m * K + k]));
            const double wg = w.used[n * K + k], wu = mode == 2 ? w.used[(out_cols + n) * K + k] : 0;
            g += xv * wg, gr += xr * wg, ga += std::fabs(xv * wg);
            u += xv * wu, ur += xr * wu, ua += std::fabs(xv * wu);
          }
          const double base = mode == 0 ? residual[m * N + n] : 0;
          const auto act = [&](double gg, double uu) { return mode == 2 ? gg / (1 + std::exp(-gg)) * uu : gg + base; };
          want_rounded[m * out_cols + n] = act(gr, ur);
          const double exact = act(g, u);
          // Bound through the epilogue: |Δ(silu(g)·u)| ≤ 1.1·|u|·|Δg| + |silu(g)|·|Δu| (|silu'| ≤ 1.1).
          const double dg = std::ldexp(ga, -8), du = std::ldexp(ua, -8);
          const double allowed = (mode == 2 ? 1.1 * (std::fabs(u) + du) * dg + (std::fabs(act(g, 1.0)) + 1.1 * dg) * du : dg) + 1e-6;
          const double e = std::fabs(got[m * out_cols + n] - exact) / allowed;
          worst_bound = std::isfinite(e) ? std::fmax(worst_bound, e) : INFINITY;
        }
      }
      const double e = max_error(got, want_rounded);
      const bool ok = e <= 1e-5 && worst_bound <= 1;
      failures += !ok;
      std::printf("%s fast%s bf16 M=%lld N=%lld K=%lld %s: max error %.3e vs bf16-rounded x, %.2f of the rounding bound\n", ok ? "ok" : "FAIL", amx ? " amx" : "",
                  static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K),
                  mode == 0 ? "residual" : mode == 1 ? "split" : "epilogue=swiglu", e, worst_bound);
    }
  }
  return failures;
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
  if (bf16_dot_supported()) {
    failures += fast_cases(rng, false);
    std::printf("fast precision: checked\n");
  } else {
    std::printf("fast precision: not built or no AVX512-BF16 on this CPU\n");
  }
  if (amx_supported()) {
    failures += fast_cases(rng, true);
    std::printf("AMX tiles: checked\n");
  } else {
    std::printf("AMX tiles: no AMX-BF16 on this CPU (or Linux refused the tile state)\n");
  }
  std::printf("ISA %s, %d failures\n", PARALON_CPU_ISA, failures);
  return failures == 0 ? 0 : 1;
}
