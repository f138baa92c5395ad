// Mixture-of-experts ops: routing (softmax + top-k per token), the expert-grouped matmul and the
// experts' weighted sum.
//
// moe_matmul groups the (token, slot) pairs by expert, gathers each expert's input rows into one
// contiguous block and runs the dense matmul (matmul.cc, multi-threaded and SIMD) on that expert's
// [N, K] matrix: a chosen expert's weights are read once per call, through exactly the dense path
// (streaming kernel for a few rows, blocked GEMM for many), whatever the weight type: f32/bf16/f16,
// or ggml blocks (Q8_0/Q4_K/Q5_K/Q6_K) through the quantized kernels of quant_matmul.cc. Traffic: the
// chosen experts' matrices + T·k rows of x gathered and of y scattered.
#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"

namespace paralon {
namespace cpu {

namespace {
constexpr int64_t kMinRouteTokens = 16;       // tokens per routing chunk
constexpr int64_t kMinCombineElements = 16384;  // outputs per combine chunk

// True when expert a ranks before expert b: larger logit, then lower index (the deterministic tie order).
inline bool ranks_before(const float* logits, int64_t a, int64_t b) {
  return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
}
}  // namespace

void moe_route(Context& ctx, const MoeRouteArgs& a) {
  if (a.num_tokens <= 0) return;
  const int64_t E = a.num_experts, k = a.top_k;
  const int64_t chunk = chunk_size(a.num_tokens, ctx.pool, kMinRouteTokens);
  ctx.pool.parallel_for((a.num_tokens + chunk - 1) / chunk, [&](int64_t c, int) {
    const int64_t t1 = std::min(a.num_tokens, (c + 1) * chunk);
    for (int64_t t = c * chunk; t < t1; ++t) {
      const float* l = a.logits + t * E;
      int32_t* ids = a.ids + t * k;
      float* w = a.weights + t * k;
      // Insertion into a sorted list of k (k is small: 1..8 for Qwen3-MoE).
      int64_t n = 0;
      for (int64_t e = 0; e < E; ++e) {
        if (n == k && !ranks_before(l, e, ids[k - 1])) continue;
        int64_t at = n < k ? n++ : k - 1;
        while (at > 0 && ranks_before(l, e, ids[at - 1])) {
          ids[at] = ids[at - 1];
          --at;
        }
        ids[at] = static_cast<int32_t>(e);
      }
      const float max = l[ids[0]];
      float sum = 0.0f;
      for (int64_t e = 0; e < E; ++e) sum += std::exp(l[e] - max);
      float chosen = 0.0f;
      for (int64_t j = 0; j < k; ++j) chosen += (w[j] = std::exp(l[ids[j]] - max));
      const float denom = a.renormalize ? chosen : sum;
      for (int64_t j = 0; j < k; ++j) w[j] /= denom;
    }
  });
}

void moe_matmul(Context& ctx, const MoeMatmulArgs& a) {
  const int64_t slots = a.num_tokens * a.top_k, N = a.N, K = a.K, E = a.num_experts;
  if (slots <= 0 || N <= 0) return;
  // Counting sort of the slots by expert: order[begin[e] .. begin[e + 1]) are expert e's slots, in
  // slot order. An id outside [0, E) (ids come from device memory) gets y = 0.
  std::vector<int64_t>& begin = ctx.work_index;
  begin.assign(static_cast<size_t>(E + 1), 0);
  for (int64_t s = 0; s < slots; ++s) {
    const int32_t e = a.ids[s];
    if (e >= 0 && e < E) ++begin[static_cast<size_t>(e) + 1];
    else std::fill(a.y + s * N, a.y + (s + 1) * N, 0.0f);
  }
  for (int64_t e = 0; e < E; ++e) begin[e + 1] += begin[e];
  ctx.moe_order.resize(static_cast<size_t>(begin[E]));
  {
    std::vector<int64_t> next(begin.begin(), begin.end() - 1);
    for (int64_t s = 0; s < slots; ++s) {
      const int32_t e = a.ids[s];
      if (e >= 0 && e < E) ctx.moe_order[static_cast<size_t>(next[e]++)] = s;
    }
  }
  int64_t most = 0;
  for (int64_t e = 0; e < E; ++e) most = std::max(most, begin[e + 1] - begin[e]);
  ctx.moe_x.resize(static_cast<size_t>(most * K));
  ctx.moe_y.resize(static_cast<size_t>(most * N));
  const size_t expert_bytes = dtype_bytes(a.w_dtype, N * K);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t m = begin[e + 1] - begin[e];
    if (m == 0) continue;  // an expert no token chose: its weights are not read
    const int64_t* order = ctx.moe_order.data() + begin[e];
    for (int64_t i = 0; i < m; ++i) {
      const int64_t s = order[i];
      const float* src = a.x + (a.x_per_slot ? s : s / a.top_k) * K;
      std::copy(src, src + K, ctx.moe_x.data() + i * K);
    }
    MatmulArgs mm{ctx.moe_x.data(), static_cast<const char*>(a.w) + static_cast<size_t>(e) * expert_bytes, a.w_dtype,
                  nullptr, ctx.moe_y.data(), m, N, K};
    matmul(ctx, mm);
    for (int64_t i = 0; i < m; ++i) std::copy(ctx.moe_y.data() + i * N, ctx.moe_y.data() + (i + 1) * N, a.y + order[i] * N);
  }
}

void moe_combine(Context& ctx, const MoeCombineArgs& a) {
  if (a.num_tokens <= 0 || a.N <= 0) return;
  const int64_t N = a.N, k = a.top_k;
  const int64_t rows = chunk_size(a.num_tokens, ctx.pool, std::max<int64_t>(1, kMinCombineElements / N));
  ctx.pool.parallel_for((a.num_tokens + rows - 1) / rows, [&](int64_t c, int) {
    const int64_t t1 = std::min(a.num_tokens, (c + 1) * rows);
    for (int64_t t = c * rows; t < t1; ++t) {
      float* out = a.out + t * N;
      const float* res = a.residual ? a.residual + t * N : nullptr;
      const float* w = a.weights + t * k;
      for (int64_t n = 0; n < N; ++n) {
        float sum = res ? res[n] : 0.0f;
        for (int64_t j = 0; j < k; ++j) sum += w[j] * a.y[(t * k + j) * N + n];
        out[n] = sum;
      }
    }
  });
}

}  // namespace cpu
}  // namespace paralon
