// measureReadBandwidth(bytes, threads, repeats) → GB/s: the host memory read ceiling that CPU kernel
// benchmarks are compared against. Each thread sums its share of a buffer much larger than the caches
// with independent accumulators; the best of `repeats` passes is reported.
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "device.h"

namespace paralon {

namespace {

uint64_t sum_range(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}

}  // namespace

Napi::Value MeasureReadBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double bytes_d = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  int threads = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 1;
  int repeats = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 5;
  if (!(bytes_d >= (1 << 20) && bytes_d <= 64.0 * (1ull << 30)) || threads < 1 || threads > 1024 || repeats < 1)
    throw_op_error(env, "measureReadBandwidth", "bytes must be 1 MiB … 64 GiB, threads ≥ 1, repeats ≥ 1");
  size_t n = static_cast<size_t>(bytes_d) / sizeof(uint64_t);
  std::unique_ptr<uint64_t, decltype(&std::free)> buf(
      static_cast<uint64_t*>(std::aligned_alloc(64, ((n * 8 + 63) / 64) * 64)), &std::free);
  if (!buf) throw_op_error(env, "measureReadBandwidth", "out of memory");
  for (size_t i = 0; i < n; ++i) buf.get()[i] = i * 2654435761u;  // touch every page, non-zero data
  double best = 0;
  volatile uint64_t sink = 0;
  for (int r = 0; r < repeats; ++r) {
    std::vector<uint64_t> partial(threads);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        size_t lo = n * t / threads, hi = n * (t + 1) / threads;
        partial[t] = sum_range(buf.get() + lo, hi - lo);
      });
    for (auto& th : pool) th.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (uint64_t p : partial) sink = sink + p;
    best = std::max(best, static_cast<double>(n * 8) / s / 1e9);
  }
  return Napi::Number::New(env, best);
}

}  // namespace paralon
