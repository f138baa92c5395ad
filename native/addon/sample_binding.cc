// The sample op as a Device method, and the sampling-parameter layout the addon exports. Every host
// input is validated here (ranges, lengths, unique ids, a mask that allows some token) and copied,
// so the backends may trust SampleArgs.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "device.h"
#include "op_check.h"

namespace paralon {

// The TypeScript names of SamplingParams' fields, in the order of a params row (ops.h's list).
Napi::Value SampleParamFields(Napi::Env env) {
  static const char* const names[] = {
#define PARALON_SAMPLING_NAME(name, type, js) js,
      PARALON_SAMPLING_FIELDS(PARALON_SAMPLING_NAME)
#undef PARALON_SAMPLING_NAME
  };
  Napi::Array out = Napi::Array::New(env, SamplingField::count);
  for (uint32_t i = 0; i < SamplingField::count; ++i) out.Set(i, names[i]);
  return out;
}

namespace {

// Checks a per-row list in CSR form (start has rows + 1 entries from 0 to `entries`, non-decreasing).
void check_csr(const OpCheck& c, const HostI32& start, int64_t rows, size_t entries, const std::string& name,
               const std::string& list) {
  if (static_cast<int64_t>(start.size()) != rows + 1 || start[0] != 0 || start[rows] != static_cast<int64_t>(entries))
    c.fail(name + " must have rows + 1 entries from 0 to " + list + ".length");
  for (int64_t r = 0; r < rows; ++r)
    if (start[r + 1] < start[r]) c.fail(name + " must be non-decreasing");
}

// One row's SamplingParams from its slice of the params Float64Array, each field checked by name.
SamplingParams parse_row(const OpCheck& c, const double* p, int64_t r) {
  using F = SamplingField;
  const std::string row = " (row " + std::to_string(r) + ")";
  for (int i = 0; i < F::count; ++i)
    if (!std::isfinite(p[i])) c.fail("params must be finite numbers" + row);
  const auto whole = [&](int i, const char* what) {
    if (p[i] < 0 || p[i] > 9007199254740991.0 || p[i] != std::floor(p[i]))
      c.fail(std::string(what) + " must be a non-negative integer" + row);
    return static_cast<uint64_t>(p[i]);
  };
  if (p[F::temperature] < 0) c.fail("temperature must be ≥ 0" + row);
  if (p[F::top_k] != std::floor(p[F::top_k])) c.fail("topK must be an integer" + row);
  if (!(p[F::top_p] > 0 && p[F::top_p] <= 1)) c.fail("topP must be in (0, 1]" + row);
  if (!(p[F::min_p] >= 0 && p[F::min_p] <= 1)) c.fail("minP must be in [0, 1]" + row);
  if (!(p[F::repetition_penalty] > 0)) c.fail("repetition penalty must be > 0" + row);
  SamplingParams sp;
  sp.temperature = static_cast<float>(p[F::temperature]);
  sp.top_k = static_cast<int32_t>(std::max(-1.0, std::min(p[F::top_k], 2147483647.0)));
  sp.top_p = static_cast<float>(p[F::top_p]);
  sp.min_p = static_cast<float>(p[F::min_p]);
  sp.presence_penalty = static_cast<float>(p[F::presence_penalty]);
  sp.frequency_penalty = static_cast<float>(p[F::frequency_penalty]);
  sp.repetition_penalty = static_cast<float>(p[F::repetition_penalty]);
  sp.seed = whole(F::seed, "seed");
  sp.offset = whole(F::offset, "offset");
  return sp;
}

}  // namespace

// sample(logits, params, penaltyStart, penaltyTokens, penaltyCounts, biasStart, biasTokens, biasValues,
//        maskRow, masks, numTop, targets)
//   → Promise<{ tokens: Int32Array, logprobs: Float32Array, topTokens: Int32Array, topLogprobs: Float32Array,
//               targetLogprobs: Float32Array, targetRanks: Int32Array }>
// params: Float64Array, sampleParamFields.length numbers per row in that order. Penalties and biases
// are per-row lists in CSR form (Int32Array starts; biasValues a Float64Array). maskRow: Int32Array of
// one entry per row (−1: no mask) or empty (no masks); masks: Int32Array [numMasks, ceil(vocab / 32)].
// targets: Int32Array of one token per row to score (−1: none) or empty (none); the target outputs are
// empty without targets, NaN / 0 in rows without one.
Napi::Value DeviceWrap::Sample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpCheck c(env, "sample", live("sample"));
  state_->refuse_while_capturing(env, "sample");  // it synchronises with the host
  TensorWrap* logits = c.tensor(info[0], "logits");
  c.dtype(logits, "logits", {DType::F32});
  c.writable(logits, "logits");
  const int64_t rows = c.rows(logits), vocab = c.last(logits);
  if (rows < 1 || vocab < 1) c.fail("logits " + logits->describe() + " must have at least one row and column");
  if (vocab > INT32_MAX) c.fail("logits " + logits->describe() + ": the vocabulary must fit int32 token ids");
  const std::vector<double> raw = c.f64(info[1], "params");
  if (static_cast<int64_t>(raw.size()) != rows * SamplingField::count)
    c.fail("params must hold " + std::to_string(SamplingField::count) + " numbers per row (sampleParamFields)");
  HostI32 p_start = c.i32(info[2], "penaltyStart");
  HostI32 p_tokens = c.i32(info[3], "penaltyTokens");
  HostI32 p_counts = c.i32(info[4], "penaltyCounts");
  HostI32 b_start = c.i32(info[5], "biasStart");
  HostI32 b_tokens = c.i32(info[6], "biasTokens");
  const std::vector<double> b_values = c.f64(info[7], "biasValues");
  HostI32 mask_row = c.i32(info[8], "maskRow");
  HostI32 masks = c.i32(info[9], "masks");
  const int64_t num_top = c.integer(info[10], "numTop", 0, 20);
  if (num_top > vocab) c.fail("numTop exceeds the vocabulary");
  HostI32 targets = c.i32(info[11], "targets");
  if (!targets.values.empty() && static_cast<int64_t>(targets.size()) != rows)
    c.fail("targets must be empty or have one entry per row");
  c.range(targets, "targets", -1, vocab);

  check_csr(c, p_start, rows, p_tokens.size(), "penaltyStart", "penaltyTokens");
  if (p_counts.size() != p_tokens.size()) c.fail("penaltyCounts must have one entry per penalty token");
  c.range(p_tokens, "penaltyTokens", 0, vocab);
  c.range(p_counts, "penaltyCounts", 0, INT32_MAX);

  check_csr(c, b_start, rows, b_tokens.size(), "biasStart", "biasTokens");
  if (b_values.size() != b_tokens.size()) c.fail("biasValues must have one entry per bias token");
  c.range(b_tokens, "biasTokens", 0, vocab);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int32_t> ids(b_tokens.values.begin() + b_start[r], b_tokens.values.begin() + b_start[r + 1]);
    std::sort(ids.begin(), ids.end());
    const auto dup = std::adjacent_find(ids.begin(), ids.end());
    if (dup != ids.end())
      c.fail("biasTokens lists token " + std::to_string(*dup) + " twice in row " + std::to_string(r));
  }
  for (size_t e = 0; e < b_values.size(); ++e)
    if (!std::isfinite(b_values[e])) c.fail("biasValues[" + std::to_string(e) + "] must be a finite number");

  const int64_t words = mask_words(vocab);
  if (!mask_row.values.empty() && static_cast<int64_t>(mask_row.size()) != rows)
    c.fail("maskRow must be empty or have one entry per row");
  if (static_cast<int64_t>(masks.size()) % words != 0)
    c.fail("masks must hold ceil(vocab / 32) = " + std::to_string(words) + " words per mask");
  const int64_t num_masks = static_cast<int64_t>(masks.size()) / words;
  c.range(mask_row, "maskRow", -1, num_masks);
  for (int64_t r = 0; r < static_cast<int64_t>(mask_row.size()); ++r) {
    if (mask_row[r] < 0) continue;
    const int32_t* m = masks.values.data() + static_cast<int64_t>(mask_row[r]) * words;
    bool any = false;
    for (int64_t w = 0; w < words && !any; ++w) {
      const int64_t bits = std::min<int64_t>(32, vocab - 32 * w);  // the last word may be partial
      const uint32_t valid = bits == 32 ? 0xffffffffu : (1u << bits) - 1u;
      any = (static_cast<uint32_t>(m[w]) & valid) != 0;
    }
    if (!any) c.fail("the token mask of row " + std::to_string(r) + " allows no token");
  }

  auto params = std::make_shared<std::vector<SamplingParams>>(rows);
  for (int64_t r = 0; r < rows; ++r) (*params)[r] = parse_row(c, &raw[r * SamplingField::count], r);

  struct Inputs {
    std::vector<int32_t> p_start, p_tokens, p_counts, b_start, b_tokens, mask_row, masks, targets;
    std::vector<float> b_values;
  };
  struct Result {
    std::vector<int32_t> token, top_token, target_rank;
    std::vector<float> logprob, top_logprob, target_logprob;
  };
  auto in = std::make_shared<Inputs>();
  in->p_start = std::move(p_start.values);
  in->p_tokens = std::move(p_tokens.values);
  in->p_counts = std::move(p_counts.values);
  in->b_start = std::move(b_start.values);
  in->b_tokens = std::move(b_tokens.values);
  in->b_values.assign(b_values.begin(), b_values.end());
  in->mask_row = std::move(mask_row.values);
  in->masks = std::move(masks.values);
  in->targets = std::move(targets.values);
  // Results start poisoned (token −2, logprob NaN), so an entry a backend fails to write shows.
  auto res = std::make_shared<Result>();
  res->token.assign(rows, -2);
  res->logprob.assign(rows, std::nanf(""));
  res->top_token.assign(rows * num_top, -2);
  res->top_logprob.assign(rows * num_top, std::nanf(""));
  // Rows without a target keep NaN / 0; with one, the poison shows if a backend skips it.
  const bool scored = !in->targets.empty();
  res->target_logprob.assign(scored ? rows : 0, std::nanf(""));
  res->target_rank.assign(scored ? rows : 0, 0);
  if (scored)
    for (int64_t r = 0; r < rows; ++r) res->target_rank[r] = in->targets[r] >= 0 ? -2 : 0;

  SampleArgs a{};
  a.logits = static_cast<float*>(logits->data());
  a.rows = rows;
  a.vocab = vocab;
  a.params_host = params->data();
  a.penalty_start_host = in->p_start.data();
  a.penalty_tokens_host = in->p_tokens.data();
  a.penalty_counts_host = in->p_counts.data();
  a.bias_start_host = in->b_start.data();
  a.bias_tokens_host = in->b_tokens.data();
  a.bias_values_host = in->b_values.data();
  a.mask_row_host = in->mask_row.empty() ? nullptr : in->mask_row.data();
  a.masks_host = in->masks.data();
  a.num_masks = num_masks;
  a.num_top = static_cast<int32_t>(num_top);
  a.token_host = res->token.data();
  a.logprob_host = res->logprob.data();
  a.top_token_host = res->top_token.data();
  a.top_logprob_host = res->top_logprob.data();
  a.target_host = scored ? in->targets.data() : nullptr;
  a.target_logprob_host = res->target_logprob.data();
  a.target_rank_host = res->target_rank.data();

  auto deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
  Backend* b = state_->backend.get();
  std::shared_ptr<DeviceState> keep_device = state_;
  state_->stream->enqueue(
      "sample", [b, a, params, in, res] { b->sample(a); },
      [deferred, res, keep_device](Napi::Env env, const std::string& error) {
        if (!error.empty()) {
          deferred->Reject(Napi::Error::New(env, error).Value());
          return;
        }
        auto i32 = [&](const std::vector<int32_t>& v) {
          Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
          std::copy(v.begin(), v.end(), a.Data());
          return a;
        };
        auto f32 = [&](const std::vector<float>& v) {
          Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
          std::copy(v.begin(), v.end(), a.Data());
          return a;
        };
        Napi::Object o = Napi::Object::New(env);
        o.Set("tokens", i32(res->token));
        o.Set("logprobs", f32(res->logprob));
        o.Set("topTokens", i32(res->top_token));
        o.Set("topLogprobs", f32(res->top_logprob));
        o.Set("targetLogprobs", f32(res->target_logprob));
        o.Set("targetRanks", i32(res->target_rank));
        deferred->Resolve(o);
      });
  return deferred->Promise();
}

}  // namespace paralon
