// Sampling, one row per work item, exactly as ops.h orders it:
//   raw logprobs (log_softmax of the raw logits), the top-N alternatives and the target's logprob and rank
//   → logit bias → token mask (−∞) → penalties (repetition, then frequency and presence) → temperature 0: argmax
//   → l/T → top-k → top-p → min-p → Gumbel-max draw with Philox noise over the kept tokens.
// Each filter is a threshold, so "kept" is a predicate evaluated per token, never a list:
//   kept(i) ⇔ v_i ≥ kth_largest  and  e_i ≥ max(top_p_cut, min_p),   e_i = exp(v_i − v_max)
// (min-p's p_i ≥ min_p·p_max is e_i ≥ min_p because p_i / p_max = e_i).
// Cost per row: a few passes over the vocab; top-k is one nth_element on a copy; top-p sorts
// only as many of the largest probabilities as it needs (growing prefixes); the draw skips every
// token whose logit is too far below the best score for any Gumbel noise to lift it.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <utility>

#include "cpu/kernels.h"
#include "cpu/simd.h"
#include "philox.h"

namespace paralon {
namespace cpu {

namespace {

// Upper bound of the Gumbel noise -log(-log u) for u ≤ 1 - 2^-25 (the largest philox_uniform):
// about 17.33. A token with v + kGumbelMax < best score can neither win nor tie.
constexpr float kGumbelMax = 17.5f;

inline float gumbel(uint64_t seed, uint64_t offset, int64_t i) {
  return -std::log(-std::log(philox_uniform(seed, offset, static_cast<uint32_t>(i))));
}

float row_max(const float* x, int64_t n) {
  vf acc = vset(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc = vmax(acc, vload(x + i));
  float m = vreduce_max(acc);
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// log Σ exp(x_i) over the row: f32 lanes per block of 1024 exponentials, blocks summed in double
// (a 150K vocabulary summed in f32 lanes alone drifts by ~1e-5).
double row_logsumexp(const float* x, int64_t n, float max) {
  const vf mv = vset(max);
  double sum = 0.0;
  int64_t i = 0;
  while (i + kLanes <= n) {
    const int64_t block_end = std::min(n, i + 1024);
    vf acc = vzero();
    for (; i + kLanes <= block_end; i += kLanes) acc = vadd(acc, vexp(vsub(vload(x + i), mv)));
    sum += vreduce_add(acc);
  }
  for (; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - max);
  return max + std::log(sum);
}

// The num_top largest raw logits, descending, ties by lower index (a strict comparison while
// scanning upwards keeps the earlier index).
void top_alternatives(const float* x, int64_t n, int32_t num_top, double lse, int32_t* tokens, float* logprobs) {
  int32_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (count == num_top && !(v > x[tokens[count - 1]])) continue;
    int32_t at = count < num_top ? count++ : num_top - 1;
    while (at > 0 && v > x[tokens[at - 1]]) {
      tokens[at] = tokens[at - 1];
      --at;
    }
    tokens[at] = static_cast<int32_t>(i);
  }
  for (int32_t k = 0; k < num_top; ++k) {
    if (k < count) {
      logprobs[k] = static_cast<float>(x[tokens[k]] - lse);
    } else {  // fewer tokens than alternatives asked for
      tokens[k] = -1;
      logprobs[k] = -std::numeric_limits<float>::infinity();
    }
  }
}

// Whether the row's token mask (null: none) allows token i.
inline bool allowed(const int32_t* mask, int64_t i) {
  return !mask || ((static_cast<uint32_t>(mask[i >> 5]) >> (i & 31)) & 1u);
}

// The largest allowed value, lowest index on ties; the first allowed token when none compares
// greater (all −∞ or NaN). The addon guarantees a mask allows some token.
int64_t argmax(const float* x, int64_t n, const int32_t* mask) {
  int64_t best = 0;
  while (!allowed(mask, best)) ++best;
  for (int64_t i = best + 1; i < n; ++i)
    if (x[i] > x[best] && allowed(mask, i)) best = i;
  return best;
}

// Smallest e kept by top-p: sort the survivors' e = exp(v − v_max) descending in growing prefixes
// until their running sum reaches top_p of the total; all ties of that value are kept by the
// caller's e ≥ cut test. `pairs` holds the survivors (e, index).
float top_p_cut(std::pair<float, int32_t>* pairs, int64_t count, double total, float top_p) {
  const double target = static_cast<double>(top_p) * total;
  const auto larger = [](const std::pair<float, int32_t>& x, const std::pair<float, int32_t>& y) {
    return x.first > y.first;
  };
  double cumulative = 0.0;
  for (int64_t begin = 0, prefix = 64; begin < count; begin += prefix, prefix *= 4) {
    const int64_t end = std::min(count, begin + prefix);
    if (end < count) std::nth_element(pairs + begin, pairs + end - 1, pairs + count, larger);
    std::sort(pairs + begin, pairs + end, larger);
    for (int64_t i = begin; i < end; ++i) {
      cumulative += pairs[i].first;
      if (cumulative >= target) return pairs[i].first;
    }
  }
  return 0.0f;  // rounding kept the sum below target: keep every survivor
}

struct RowScratch {
  float* scaled;                     // [vocab] penalised logits / temperature
  float* select;                     // [vocab] copy of `scaled` for the top-k selection
  std::pair<float, int32_t>* pairs;  // [vocab] top-p survivors
  float* saved;                      // [penalties] logits of penalised tokens before the penalty
  float* bias_saved;                 // [biases] raw logits of biased tokens
};

void sample_row(const SampleArgs& a, int64_t r, RowScratch scratch) {
  const int64_t V = a.vocab;
  float* l = a.logits + r * V;
  const SamplingParams& sp = a.params_host[r];

  const float raw_max = row_max(l, V);
  const double lse = row_logsumexp(l, V, raw_max);
  if (a.num_top > 0)
    top_alternatives(l, V, a.num_top, lse, a.top_token_host + r * a.num_top, a.top_logprob_host + r * a.num_top);
  if (a.target_host && a.target_host[r] >= 0) {  // scored before anything below edits the row
    const float v = l[a.target_host[r]];
    int64_t above = 0;
    for (int64_t i = 0; i < V; ++i) above += l[i] > v;
    a.target_logprob_host[r] = static_cast<float>(v - lse);
    a.target_rank_host[r] = static_cast<int32_t>(above + 1);
  }

  // Bias, then mask, in place; the raw values of biased tokens are kept for the sampled token's
  // logprob (a masked token is never sampled).
  const int32_t b0 = a.bias_start_host ? a.bias_start_host[r] : 0;
  const int32_t b1 = a.bias_start_host ? a.bias_start_host[r + 1] : 0;
  for (int32_t e = b0; e < b1; ++e) {
    const int32_t tok = a.bias_tokens_host[e];
    scratch.bias_saved[e - b0] = l[tok];
    l[tok] += a.bias_values_host[e];
  }
  const int32_t* mask = a.mask_row_host && a.mask_row_host[r] >= 0
                            ? a.masks_host + static_cast<int64_t>(a.mask_row_host[r]) * mask_words(V)
                            : nullptr;
  if (mask)
    for (int64_t i = 0; i < V; ++i)
      if (!allowed(mask, i)) l[i] = -std::numeric_limits<float>::infinity();

  // Penalties, in place; the values before them are kept for the sampled token's logprob.
  const int32_t p0 = a.penalty_start_host ? a.penalty_start_host[r] : 0;
  const int32_t p1 = a.penalty_start_host ? a.penalty_start_host[r + 1] : 0;
  for (int32_t e = p0; e < p1; ++e) {
    const int32_t tok = a.penalty_tokens_host[e];
    if (tok < 0 || tok >= V) continue;
    const int32_t count = a.penalty_counts_host[e];
    float v = l[tok];
    scratch.saved[e - p0] = v;
    if (sp.repetition_penalty != 1.0f) v = v > 0.0f ? v / sp.repetition_penalty : v * sp.repetition_penalty;
    v -= sp.frequency_penalty * static_cast<float>(count);
    if (count > 0) v -= sp.presence_penalty;
    l[tok] = v;
  }
  auto raw_logit = [&](int64_t tok) {
    for (int32_t e = b0; e < b1; ++e)
      if (a.bias_tokens_host[e] == tok) return scratch.bias_saved[e - b0];
    for (int32_t e = p0; e < p1; ++e)
      if (a.penalty_tokens_host[e] == tok) return scratch.saved[e - p0];
    return l[tok];
  };

  int64_t token;
  if (!(sp.temperature > 0.0f)) {
    token = argmax(l, V, mask);
  } else {
    float* v = scratch.scaled;  // l / T, kept apart so the penalised logits stay for the logprob
    for (int64_t i = 0; i < V; ++i) v[i] = l[i] / sp.temperature;
    const int64_t top_index = argmax(v, V, mask);  // always kept by every filter
    const float v_max = v[top_index];

    float v_cut = -std::numeric_limits<float>::infinity();
    if (sp.top_k > 0 && sp.top_k < V) {
      std::copy(v, v + V, scratch.select);
      std::nth_element(scratch.select, scratch.select + sp.top_k - 1, scratch.select + V, std::greater<float>());
      v_cut = scratch.select[sp.top_k - 1];
    }
    float e_cut = sp.min_p > 0.0f ? sp.min_p : 0.0f;
    if (sp.top_p < 1.0f) {
      int64_t count = 0;
      double total = 0.0;
      for (int64_t i = 0; i < V; ++i) {
        if (!(v[i] >= v_cut) || !allowed(mask, i)) continue;
        const float e = std::exp(v[i] - v_max);
        scratch.pairs[count++] = {e, static_cast<int32_t>(i)};
        total += e;
      }
      e_cut = std::max(e_cut, top_p_cut(scratch.pairs, count, total, sp.top_p));
    }
    const auto kept = [&](int64_t i) {
      return v[i] >= v_cut && allowed(mask, i) && (e_cut <= 0.0f || std::exp(v[i] - v_max) >= e_cut);
    };

    // Gumbel-max, seeded with the top token so the bound prunes from the start.
    token = top_index;
    float best = v_max + gumbel(sp.seed, sp.offset, top_index);
    for (int64_t i = 0; i < V; ++i) {
      if (v[i] + kGumbelMax < best || i == top_index || !kept(i)) continue;
      const float score = v[i] + gumbel(sp.seed, sp.offset, i);
      if (score > best || (score == best && i < token)) {
        best = score;
        token = i;
      }
    }
  }
  a.token_host[r] = static_cast<int32_t>(token);
  a.logprob_host[r] = static_cast<float>(raw_logit(token) - lse);
}

}  // namespace

void sample(Context& ctx, const SampleArgs& a) {
  if (a.rows <= 0 || a.vocab <= 0) return;
  // The longest per-row list of `start` (a CSR offsets array, or null).
  const auto longest = [&](const int32_t* start) {
    int64_t most = 0;
    if (start)
      for (int64_t r = 0; r < a.rows; ++r) most = std::max<int64_t>(most, start[r + 1] - start[r]);
    return most;
  };
  const int64_t max_penalties = longest(a.penalty_start_host), max_biases = longest(a.bias_start_host);
  ctx.scratch.reserve(2 * arena_bytes<float>(a.vocab) + arena_bytes<std::pair<float, int32_t>>(a.vocab) +
                          arena_bytes<float>(max_penalties) + arena_bytes<float>(max_biases),
                      "sample");
  ctx.pool.parallel_for(a.rows, [&](int64_t r, int thread) {
    ArenaCursor arena(ctx.scratch.arena(thread));
    RowScratch scratch;
    scratch.scaled = arena.carve<float>(a.vocab);
    scratch.select = arena.carve<float>(a.vocab);
    scratch.pairs = arena.carve<std::pair<float, int32_t>>(a.vocab);
    scratch.saved = arena.carve<float>(max_penalties);
    scratch.bias_saved = arena.carve<float>(max_biases);
    sample_row(a, r, scratch);
  });
}

}  // namespace cpu
}  // namespace paralon
