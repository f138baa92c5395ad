#include "kernels.h"

// sample: per row, log_softmax statistics and top-N of the raw logits → logit bias, token mask (−∞)
// and penalties (in place) →
// greedy argmax, or l/T → top-k → top-p → min-p → Gumbel-max draw with Philox noise over the kept
// tokens. The kept set is defined exactly as on the CPU backend (native/cpu/sampling.cc):
//   kept(i) ⇔ v_i ≥ v_cut  and  (e_cut ≤ 0 or e_i ≥ e_cut),   v_i = l_i / T,  e_i = expf(v_i − v_max)
// with v_cut the k-th largest v, and e_cut = max(min_p, top-p cut), the top-p cut being the largest
// e whose "mass of all e ≥ it" reaches top_p · (mass of the top-k survivors).
//
// First pass: row_stats_kernel, grid (⌈vocab / 8192⌉, rows) of 256 threads, gives each 8192-logit
// stretch's (max, Σ exp(x − max), argmax); sample_kernel merges the stretches in a fixed order. A
// greedy row that nothing modifies (no bias, mask or penalties) takes that argmax and never sweeps
// its row on one SM.
// Then: one CTA of 1024 threads per row; thread t visits tokens t, t + 1024, ... in every
// pass (coalesced 4-byte loads; the row, 600 KB at vocab 151,936, stays in L2 between passes).
// No sort: thresholds come from a radix descent on order-preserving 32-bit keys of the floats —
// 4 passes of an 8-bit digit, a 256-bin histogram in shared memory (shared atomics, warp-aggregated:
// lanes whose keys share a bin add one sum), the bin holding
// the threshold found by one warp's scan, each pass restricted to the keys matching the digits found
// so far. The k-th largest value counts tokens; the top-p cut sums e in 2^-44 fixed point (64-bit
// integer atomics), so it is exact and deterministic — no float-atomic ordering effects.
// top-N: the N-th largest raw key, then the candidates at or above it (ties beyond the buffer: a
// second descent on the token index keeps the lowest indices) ranked by (value desc, index asc).
// The draw computes Philox + two logf only for kept tokens that could still win (v + 17.5 ≥ the
// thread's best score; Gumbel noise is below 17.33), then a block argmax (lowest index on ties).
// Logprobs are formed in double from a double logsumexp, as on the CPU. A row's target (prompt
// scoring) costs one more pass: its rank counts the raw logits above it.
// A masked token is skipped by every argmax and by the draw (not only given −∞), so a mask that
// allows only tokens of −∞ logit still yields an allowed token.
// Passes over the row: 1 (stats, multi-CTA) + 5 (top-N, when asked) + 1 (mask, when given) + 1 (argmax/v_max)
// + 4 (top-k) + 5 (top-p) + 1 (draw): ≤ 18 × 4 · vocab bytes, L2-resident. Host traffic: the
// params, bias lists and masks in; ids, logprobs and top-N out, into pinned memory
// (LaunchContext::host_results), waited on through an event recorded after the copy.

#include <climits>
#include <cmath>
#include <cstring>

#include "philox.h"

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;
constexpr int kMaxCandidates = 1024;
constexpr int kAggregateRounds = 2;
constexpr int kStatsThreads = 256;
constexpr int kStatsChunk = 8192;  // logits per CTA of the first pass (32 per thread)  // bins per warp sweep added as one warp-wide sum
constexpr float kGumbelMax = 17.5f;        // > -log(-log(1 - 2^-25)) ≈ 17.33, the largest noise
constexpr double kMassScale = 17592186044416.0;  // 2^44: e ≤ 1 summed over < 2^20 tokens fits 64 bits

struct Shared {
  unsigned long long hist[kBins];
  uint32_t cand_key[kMaxCandidates];
  int32_t cand_index[kMaxCandidates];
  int cand_count, above_count, match, bias_match;
  uint32_t digit;
  unsigned long long remaining;
  float red_f[kWarps], red_g[kWarps];
  int red_i[kWarps];
  unsigned long long red_u[kWarps];
  float result_f, result_g;
  int result_i;
  unsigned long long result_u;
};

// Monotone map of floats to unsigned keys: a < b ⇔ key(a) < key(b) (for non-NaN values).
__device__ __forceinline__ uint32_t order_key(float v) {
  const uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// (max, Σ exp(x − max)) pairs, merged.
__device__ __forceinline__ void merge_max_sum(float& m, float& s, float m2, float s2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;  // both empty
  s = s * expf(m - mx) + s2 * expf(m2 - mx);
  m = mx;
}

__device__ void block_max_sum(float& m, float& s, Shared& sh) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int off = 16; off > 0; off >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, off), s2 = __shfl_xor_sync(0xffffffffu, s, off);
    merge_max_sum(m, s, m2, s2);
  }
  if (lane == 0) {
    sh.red_f[warp] = m;
    sh.red_g[warp] = s;
  }
  __syncthreads();  // per-warp pairs written
  if (warp == 0) {
    m = sh.red_f[lane];
    s = sh.red_g[lane];
    for (int off = 16; off > 0; off >>= 1) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m, off), s2 = __shfl_xor_sync(0xffffffffu, s, off);
      merge_max_sum(m, s, m2, s2);
    }
    if (lane == 0) {
      sh.result_f = m;
      sh.result_g = s;
    }
  }
  __syncthreads();  // result visible
  m = sh.result_f;
  s = sh.result_g;
}

// The largest value and its lowest index (NaNs never win; an all −inf row gives its first index).
__device__ __forceinline__ void merge_argmax(float& v, int& i, float v2, int i2) {
  if (v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

// log_softmax statistics and argmax of one stretch of a row's raw logits (the first pass).
struct RowStats {
  float max, sum;  // max and Σ exp(x − max) over values > −inf (NaN ignored)
  int argmax;      // lowest index of max; INT_MAX when no value is > −inf
};

__device__ __forceinline__ void merge_stats(RowStats& a, const RowStats& b) {
  if (b.max > a.max || (b.max == a.max && b.argmax < a.argmax)) a.argmax = b.argmax;
  merge_max_sum(a.max, a.sum, b.max, b.sum);
}

__device__ __forceinline__ RowStats shfl_xor_stats(const RowStats& a, int off) {
  return RowStats{__shfl_xor_sync(0xffffffffu, a.max, off), __shfl_xor_sync(0xffffffffu, a.sum, off),
                  __shfl_xor_sync(0xffffffffu, a.argmax, off)};
}

// The first pass, over many CTAs: grid (chunks, rows), CTA c of row r covering logits
// [c · kStatsChunk, (c + 1) · kStatsChunk). One CTA per row would take a whole row's sweep on one SM.
__global__ void __launch_bounds__(kStatsThreads) row_stats_kernel(const float* logits, int n, RowStats* stats) {
  __shared__ RowStats red[kStatsThreads / 32];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, chunk = blockIdx.x, r = blockIdx.y;
  const float* l = logits + static_cast<int64_t>(r) * n;
  const int end = min(n, (chunk + 1) * kStatsChunk);
  RowStats st{-INFINITY, 0.0f, INT_MAX};
  for (int i = chunk * kStatsChunk + tid; i < end; i += kStatsThreads) {
    const float v = l[i];
    if (!(v > -INFINITY)) continue;  // −inf adds nothing; NaN is ignored
    if (v > st.max) {                // indices rise: a tie keeps the first
      st.sum = st.sum * expf(st.max - v) + 1.0f;
      st.max = v;
      st.argmax = i;
    } else {
      st.sum += expf(v - st.max);
    }
  }
  for (int off = 16; off > 0; off >>= 1) merge_stats(st, shfl_xor_stats(st, off));
  if (lane == 0) red[warp] = st;
  __syncthreads();  // per-warp statistics written
  if (tid == 0) {
    for (int w = 1; w < kStatsThreads / 32; ++w) merge_stats(st, red[w]);  // fixed order
    stats[static_cast<int64_t>(r) * gridDim.x + chunk] = st;
  }
}

__device__ void block_argmax(float& v, int& i, Shared& sh) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int off = 16; off > 0; off >>= 1) {
    merge_argmax(v, i, __shfl_xor_sync(0xffffffffu, v, off), __shfl_xor_sync(0xffffffffu, i, off));
  }
  if (lane == 0) {
    sh.red_f[warp] = v;
    sh.red_i[warp] = i;
  }
  __syncthreads();  // per-warp winners written
  if (warp == 0) {
    v = sh.red_f[lane];
    i = sh.red_i[lane];
    for (int off = 16; off > 0; off >>= 1) {
      merge_argmax(v, i, __shfl_xor_sync(0xffffffffu, v, off), __shfl_xor_sync(0xffffffffu, i, off));
    }
    if (lane == 0) {
      sh.result_f = v;
      sh.result_i = i;
    }
  }
  __syncthreads();  // result visible
  v = sh.result_f;
  i = sh.result_i;
}

__device__ unsigned long long block_sum_u64(unsigned long long v, Shared& sh) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  if (lane == 0) sh.red_u[warp] = v;
  __syncthreads();  // per-warp sums written
  if (warp == 0) {
    v = sh.red_u[lane];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0) sh.result_u = v;
  }
  __syncthreads();  // result visible
  return sh.result_u;
}

// Radix descent: the largest key K such that the total weight of the members with key ≥ K reaches
// `target` (clamped to [1, total weight]). With unit weights this is the target-th largest key.
// member(i, key, weight) says whether token i takes part and gives its key and weight.
template <typename Member>
__device__ uint32_t radix_descend(int n, unsigned long long target, Member member, Shared& sh) {
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  uint32_t prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = tid; b < kBins; b += kThreads) sh.hist[b] = 0;
    __syncthreads();  // histogram cleared; the previous digit has been read by every thread
    // Warp-aggregated: similar logits share a bin (on the first digit most of a row lands in a few
    // bins), and 32 lanes adding 64-bit values to one shared word serialise. So per round the lanes
    // of the lowest pending lane's bin add their sum once (kAggregateRounds rounds per warp sweep);
    // lanes left over, in rarer bins, add on their own. Sums are integers: the order cannot matter.
    for (int i0 = tid - lane; i0 < n; i0 += kThreads) {  // a warp-uniform trip count
      const int i = i0 + lane;
      uint32_t key = 0;
      unsigned long long w = 0;
      bool pending = i < n && member(i, key, w) && (key & mask) == prefix && w != 0;
      const uint32_t bin = (key >> shift) & 0xffu;
#pragma unroll
      for (int round = 0; round < kAggregateRounds; ++round) {
        const unsigned lanes = __ballot_sync(0xffffffffu, pending);
        if (lanes == 0) break;  // uniform: every lane saw the same ballot
        const int leader = __ffs(static_cast<int>(lanes)) - 1;
        const uint32_t leader_bin = __shfl_sync(0xffffffffu, bin, leader);
        const bool peer = pending && bin == leader_bin;
        unsigned long long sum = peer ? w : 0;
        for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
        if (lane == leader) atomicAdd(&sh.hist[leader_bin], sum);
        pending = pending && !peer;
      }
      if (pending) atomicAdd(&sh.hist[bin], w);
    }
    __syncthreads();  // histogram complete
    if (warp == 0) {
      // Lane L owns digits 255 − 8L − j, j = 0..7 (descending), so lane order is value order.
      unsigned long long own = 0;
      for (int j = 0; j < 8; ++j) own += sh.hist[kBins - 1 - 8 * lane - j];
      unsigned long long incl = own;
      for (int off = 1; off < 32; off <<= 1) {
        const unsigned long long up = __shfl_up_sync(0xffffffffu, incl, off);
        if (lane >= off) incl += up;
      }
      const unsigned long long total = __shfl_sync(0xffffffffu, incl, 31);
      const unsigned long long want = total == 0 ? 1 : (target < 1 ? 1 : (target > total ? total : target));
      const unsigned long long excl = incl - own;
      if (total == 0 && lane == 0) {  // no member matches (cannot happen for callers' inputs)
        sh.digit = 0;
        sh.remaining = 1;
      }
      if (excl < want && want <= incl) {
        unsigned long long cum = excl;
        for (int j = 0; j < 8; ++j) {
          const int d = kBins - 1 - 8 * lane - j;
          const unsigned long long c = sh.hist[d];
          if (cum + c >= want) {
            sh.digit = static_cast<uint32_t>(d);
            sh.remaining = want - cum;
            break;
          }
          cum += c;
        }
      }
    }
    __syncthreads();  // digit chosen
    prefix |= sh.digit << shift;
    mask |= 0xffu << shift;
    target = sh.remaining;
  }
  return prefix;
}

__device__ __forceinline__ float gumbel(uint64_t seed, uint64_t offset, int i) {
  return -logf(-logf(philox_uniform(seed, offset, static_cast<uint32_t>(i))));
}

// The num_top largest raw logits, descending, ties by lower index; -1 / −inf past the vocabulary.
__device__ void top_alternatives(const float* l, int n, int num_top, double lse, int32_t* top_token, float* top_logprob,
                                 Shared& sh) {
  const int tid = threadIdx.x;
  const int want = min(num_top, n);
  const auto raw_member = [&](int i, uint32_t& key, unsigned long long& w) {
    const float v = l[i];
    if (v != v) return false;
    key = order_key(v);
    w = 1;
    return true;
  };
  const uint32_t threshold = radix_descend(n, static_cast<unsigned long long>(want), raw_member, sh);

  // Gather everything at or above the threshold; if its ties overflow the buffer, keep only the
  // lowest-index ties (their count is `want` minus the tokens strictly above).
  uint32_t max_tie_index = 0xffffffffu;
  for (int pass = 0; pass < 2; ++pass) {
    if (tid == 0) {
      sh.cand_count = 0;
      sh.above_count = 0;
    }
    __syncthreads();  // counters reset
    for (int i = tid; i < n; i += kThreads) {
      const float v = l[i];
      if (v != v) continue;
      const uint32_t key = order_key(v);
      if (key < threshold || (key == threshold && static_cast<uint32_t>(i) > max_tie_index)) continue;
      if (key > threshold) atomicAdd(&sh.above_count, 1);
      const int slot = atomicAdd(&sh.cand_count, 1);
      if (slot < kMaxCandidates) {
        sh.cand_key[slot] = key;
        sh.cand_index[slot] = i;
      }
    }
    __syncthreads();  // candidates and counts complete
    if (sh.cand_count <= kMaxCandidates) break;
    const int ties_needed = want - sh.above_count;
    const auto tie_member = [&](int i, uint32_t& key, unsigned long long& w) {
      const float v = l[i];
      if (v != v || order_key(v) != threshold) return false;
      key = ~static_cast<uint32_t>(i);  // larger key = lower index
      w = 1;
      return true;
    };
    max_tie_index = ~radix_descend(n, static_cast<unsigned long long>(ties_needed), tie_member, sh);
  }

  const int count = sh.cand_count;
  for (int c = tid; c < count; c += kThreads) {
    const uint32_t key = sh.cand_key[c];
    const int index = sh.cand_index[c];
    int rank = 0;
    for (int j = 0; j < count; ++j) {
      const uint32_t kj = sh.cand_key[j];
      rank += kj > key || (kj == key && sh.cand_index[j] < index);
    }
    if (rank < want) {
      top_token[rank] = index;
      top_logprob[rank] = static_cast<float>(static_cast<double>(key_value(key)) - lse);
    }
  }
  for (int k = want + tid; k < num_top; k += kThreads) {
    top_token[k] = -1;
    top_logprob[k] = -INFINITY;
  }
  __syncthreads();  // candidate buffers are free again
}

// Device copies of SampleArgs' host inputs (ops.h describes each).
struct SampleIn {
  const SamplingParams* params;  // [rows]
  const int32_t* penalty_start;  // [rows + 1] or null
  const int32_t* penalty_tokens;
  const int32_t* penalty_counts;
  const int32_t* bias_start;  // [rows + 1] or null
  const int32_t* bias_tokens;
  const float* bias_values;
  const int32_t* mask_row;  // [rows] or null
  const int32_t* masks;     // [num_masks, mask_words]
  int mask_words;
  const int32_t* target;  // [rows] or null
};

struct SampleOut {
  int32_t* token;      // [rows]
  float* logprob;      // [rows]
  int32_t* top_token;  // [rows, num_top]
  float* top_logprob;  // [rows, num_top]
  float* target_logprob;  // [rows]
  int32_t* target_rank;   // [rows]
  float* saved;        // [penalty entries] logits of penalised tokens before the penalty
  float* bias_saved;   // [bias entries] raw logits of biased tokens
};

// Whether the row's mask (null: none) allows token i.
__device__ __forceinline__ bool allowed(const int32_t* mask, int i) {
  return !mask || ((static_cast<uint32_t>(mask[i >> 5]) >> (i & 31)) & 1u);
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(float* logits, int n, const RowStats* stats, int chunks, SampleIn in, int num_top, SampleOut out) {
  __shared__ Shared sh;
  const int tid = threadIdx.x, r = blockIdx.x;
  float* l = logits + static_cast<int64_t>(r) * n;
  const SamplingParams sp = in.params[r];
  const int32_t* penalty_tokens = in.penalty_tokens;
  const int32_t* mask =
      in.mask_row && in.mask_row[r] >= 0 ? in.masks + static_cast<int64_t>(in.mask_row[r]) * in.mask_words : nullptr;

  // 1. log_softmax statistics and argmax of the raw logits: the first pass's chunks merged.
  RowStats st{-INFINITY, 0.0f, INT_MAX};
  for (int c = tid; c < chunks; c += kThreads) merge_stats(st, stats[static_cast<int64_t>(r) * chunks + c]);
  float raw_max = st.max, m = st.max, s = st.sum;
  int raw_top = st.argmax;
  block_argmax(raw_max, raw_top, sh);  // lowest index of the row's max (INT_MAX: no value > −inf)
  block_max_sum(m, s, sh);
  const double lse = static_cast<double>(m) + log(static_cast<double>(s));
  if (num_top > 0) {
    top_alternatives(l, n, num_top, lse, out.top_token + static_cast<int64_t>(r) * num_top,
                     out.top_logprob + static_cast<int64_t>(r) * num_top, sh);
  }
  if (in.target && in.target[r] >= 0) {  // the target's logprob and rank, before step 2 edits the row
    const float v = l[in.target[r]];
    unsigned long long above = 0;
    for (int i = tid; i < n; i += kThreads) above += l[i] > v;
    above = block_sum_u64(above, sh);
    if (tid == 0) {
      out.target_logprob[r] = static_cast<float>(static_cast<double>(v) - lse);
      out.target_rank[r] = static_cast<int32_t>(above + 1);
    }
  }

  // 2. Bias, mask and penalties in place (bias and penalty tokens are unique per row); the values
  // they replace are saved for the chosen token's raw logprob. Each pass may write a token another
  // thread reads or writes in the next, hence a barrier after each.
  const int b0 = in.bias_start ? in.bias_start[r] : 0, b1 = in.bias_start ? in.bias_start[r + 1] : 0;
  for (int e = b0 + tid; e < b1; e += kThreads) {
    const int tok = in.bias_tokens[e];
    out.bias_saved[e] = l[tok];
    l[tok] += in.bias_values[e];
  }
  __syncthreads();  // biased logits written before the mask may overwrite them
  if (mask) {
    for (int i = tid; i < n; i += kThreads)
      if (!allowed(mask, i)) l[i] = -INFINITY;
  }
  __syncthreads();  // masked logits written before the penalties read them
  const int p0 = in.penalty_start ? in.penalty_start[r] : 0, p1 = in.penalty_start ? in.penalty_start[r + 1] : 0;
  for (int e = p0 + tid; e < p1; e += kThreads) {
    const int tok = penalty_tokens[e];
    if (tok < 0 || tok >= n) continue;
    const int count = in.penalty_counts[e];
    float v = l[tok];
    out.saved[e] = v;
    if (sp.repetition_penalty != 1.0f) v = v > 0.0f ? v / sp.repetition_penalty : v * sp.repetition_penalty;
    v -= sp.frequency_penalty * static_cast<float>(count);
    if (count > 0) v -= sp.presence_penalty;
    l[tok] = v;
  }
  __syncthreads();  // penalised logits visible to the whole block

  int token;
  if (!(sp.temperature > 0.0f)) {
    if (!mask && b0 == b1 && p0 == p1 && raw_top != INT_MAX) {
      token = raw_top;  // nothing changed the row: the first pass's argmax
    } else {
      float best = -INFINITY;
      token = INT_MAX;
      for (int i = tid; i < n; i += kThreads)
        if (allowed(mask, i)) merge_argmax(best, token, l[i], i);
      block_argmax(best, token, sh);
    }
  } else {
    // 3. Temperature (applied on the fly, so unpenalised raw logits stay readable) and filters.
    const float T = sp.temperature;
    float v_max = -INFINITY;
    int top_index = INT_MAX;
    for (int i = tid; i < n; i += kThreads)
      if (allowed(mask, i)) merge_argmax(v_max, top_index, l[i] / T, i);
    block_argmax(v_max, top_index, sh);

    float v_cut = -INFINITY;
    if (sp.top_k > 0 && sp.top_k < n) {
      const auto member = [&](int i, uint32_t& key, unsigned long long& w) {
        const float v = l[i] / T;
        if (v != v) return false;
        key = order_key(v);
        w = 1;
        return true;
      };
      v_cut = key_value(radix_descend(n, static_cast<unsigned long long>(sp.top_k), member, sh));
    }
    float e_cut = sp.min_p > 0.0f ? sp.min_p : 0.0f;
    if (sp.top_p < 1.0f) {
      const auto mass = [&](int i, uint32_t& key, unsigned long long& w) {
        const float v = l[i] / T;
        if (!(v >= v_cut)) return false;
        const float e = expf(v - v_max);
        key = order_key(e);
        w = static_cast<unsigned long long>(static_cast<double>(e) * kMassScale + 0.5);
        return true;
      };
      unsigned long long total = 0;
      for (int i = tid; i < n; i += kThreads) {
        uint32_t key;
        unsigned long long w;
        if (mass(i, key, w)) total += w;
      }
      total = block_sum_u64(total, sh);
      const double target = ceil(static_cast<double>(sp.top_p) * static_cast<double>(total));
      const unsigned long long target_mass = target < 1.0 ? 1ull : static_cast<unsigned long long>(target);
      e_cut = fmaxf(e_cut, key_value(radix_descend(n, target_mass, mass, sh)));
    }

    // 4. Gumbel-max draw over the kept tokens.
    float best = -INFINITY;
    token = INT_MAX;
    for (int i = tid; i < n; i += kThreads) {
      const float v = l[i] / T;
      if (!(v >= v_cut) || v + kGumbelMax < best || !allowed(mask, i)) continue;
      if (e_cut > 0.0f && !(expf(v - v_max) >= e_cut)) continue;
      merge_argmax(best, token, v + gumbel(sp.seed, sp.offset, i), i);
    }
    block_argmax(best, token, sh);
    if (token == INT_MAX) token = top_index;  // every score NaN: fall back to the top token
  }
  if (token == INT_MAX) {  // every allowed logit NaN: the first allowed token (token 0 without a mask)
    float zero = -INFINITY;
    for (int i = tid; i < n; i += kThreads)
      if (allowed(mask, i)) merge_argmax(zero, token, 0.0f, i);
    block_argmax(zero, token, sh);
  }

  // 5. The chosen token's raw logprob: its value before bias, else before penalties, else as is.
  if (tid == 0) sh.match = sh.bias_match = INT_MAX;
  __syncthreads();  // matches reset
  for (int e = b0 + tid; e < b1; e += kThreads) {
    if (in.bias_tokens[e] == token) atomicMin(&sh.bias_match, e);
  }
  for (int e = p0 + tid; e < p1; e += kThreads) {
    if (penalty_tokens[e] == token) atomicMin(&sh.match, e);
  }
  __syncthreads();  // matches found
  if (tid == 0) {
    const float raw = sh.bias_match != INT_MAX ? out.bias_saved[sh.bias_match]
                      : sh.match != INT_MAX    ? out.saved[sh.match]
                                               : l[token];
    out.token[r] = token;
    out.logprob[r] = static_cast<float>(static_cast<double>(raw) - lse);
  }
}

}  // namespace

void launch_sample(const SampleArgs& a, LaunchContext& ctx) {
  if (a.rows <= 0 || a.vocab <= 0) return;
  if (a.vocab > INT_MAX / 2) throw OpError("sample: vocab too large");
  const int rows = static_cast<int>(a.rows), n = static_cast<int>(a.vocab), num_top = a.num_top;

  SampleIn in{};
  in.params = static_cast<const SamplingParams*>(
      ctx.stage_bytes(a.params_host, sizeof(SamplingParams) * static_cast<size_t>(rows)));
  const int32_t total_penalties = a.penalty_start_host ? a.penalty_start_host[rows] : 0;
  in.penalty_start = a.penalty_start_host ? ctx.stage_i32(a.penalty_start_host, rows + 1) : nullptr;
  if (total_penalties > 0) {
    in.penalty_tokens = ctx.stage_i32(a.penalty_tokens_host, total_penalties);
    in.penalty_counts = ctx.stage_i32(a.penalty_counts_host, total_penalties);
  }
  const int32_t total_biases = a.bias_start_host ? a.bias_start_host[rows] : 0;
  in.bias_start = a.bias_start_host ? ctx.stage_i32(a.bias_start_host, rows + 1) : nullptr;
  if (total_biases > 0) {
    in.bias_tokens = ctx.stage_i32(a.bias_tokens_host, total_biases);
    in.bias_values = static_cast<const float*>(ctx.stage_bytes(a.bias_values_host, sizeof(float) * total_biases));
  }
  in.mask_words = static_cast<int>(mask_words(n));
  if (a.mask_row_host && a.num_masks > 0) {
    in.mask_row = ctx.stage_i32(a.mask_row_host, rows);
    in.masks = ctx.stage_i32(a.masks_host, static_cast<size_t>(a.num_masks) * in.mask_words);
  }
  in.target = a.target_host ? ctx.stage_i32(a.target_host, rows) : nullptr;

  // Scratch: the host-bound results first (one contiguous copy back), then the saved logits.
  const size_t result_words = static_cast<size_t>(rows) * (4 + 2 * static_cast<size_t>(num_top));
  const size_t saved_words = std::max(total_penalties, 1), bias_saved_words = std::max(total_biases, 1);
  const int chunks = (n + kStatsChunk - 1) / kStatsChunk;
  const size_t stats_words = static_cast<size_t>(rows) * chunks * (sizeof(RowStats) / 4);
  char* scratch =
      static_cast<char*>(ctx.scratch((result_words + saved_words + bias_saved_words + stats_words) * 4));
  SampleOut out;
  out.token = reinterpret_cast<int32_t*>(scratch);
  out.logprob = reinterpret_cast<float*>(out.token + rows);
  out.top_token = reinterpret_cast<int32_t*>(out.logprob + rows);
  out.top_logprob = reinterpret_cast<float*>(out.top_token + static_cast<size_t>(rows) * num_top);
  out.target_logprob = out.top_logprob + static_cast<size_t>(rows) * num_top;
  out.target_rank = reinterpret_cast<int32_t*>(out.target_logprob + rows);
  out.saved = reinterpret_cast<float*>(scratch + result_words * 4);
  out.bias_saved = out.saved + saved_words;
  RowStats* stats = reinterpret_cast<RowStats*>(out.bias_saved + bias_saved_words);

  if (rows > 65535) throw OpError("sample: more than 65535 rows in one call");
  PARALON_LAUNCH(row_stats_kernel, dim3(chunks, rows), dim3(kStatsThreads), 0, ctx.stream,
                 static_cast<const float*>(a.logits), n, stats);
  PARALON_CHECK_LAUNCH("sample");
  PARALON_LAUNCH(sample_kernel, dim3(rows), dim3(kThreads), 0, ctx.stream, a.logits, n,
                 static_cast<const RowStats*>(stats), chunks, in, num_top, out);
  PARALON_CHECK_LAUNCH("sample");

  // Results come back into pinned memory; the event after the copy marks them (and, the stream being
  // in order, everything queued before) complete.
  int32_t* h = static_cast<int32_t*>(ctx.host_results(result_words * 4));
  PARALON_CUDA_CHECK("sample", cudaMemcpyAsync(h, scratch, result_words * 4, cudaMemcpyDeviceToHost, ctx.stream));
  PARALON_CUDA_CHECK("sample", cudaEventRecord(ctx.results_ready(), ctx.stream));
  PARALON_CUDA_CHECK("sample", cudaEventSynchronize(ctx.results_ready()));
  std::memcpy(a.token_host, h, sizeof(int32_t) * rows);
  std::memcpy(a.logprob_host, h + rows, sizeof(float) * rows);
  if (num_top > 0) {
    std::memcpy(a.top_token_host, h + 2 * rows, sizeof(int32_t) * rows * num_top);
    std::memcpy(a.top_logprob_host, h + 2 * rows + static_cast<size_t>(rows) * num_top,
                sizeof(float) * rows * num_top);
  }
  if (a.target_host) {
    const int32_t* t = h + 2 * rows + 2 * static_cast<size_t>(rows) * num_top;
    for (int r = 0; r < rows; ++r) {
      if (a.target_host[r] < 0) continue;
      std::memcpy(&a.target_logprob_host[r], t + r, sizeof(float));
      a.target_rank_host[r] = t[rows + r];
    }
  }
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
