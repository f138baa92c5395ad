// The ops as Device methods: validate every argument (op_check.h), copy host metadata, queue the op.
#include <cmath>
#include <memory>
#include <vector>

#include "device.h"
#include "op_check.h"

namespace paralon {

namespace {

constexpr std::initializer_list<DType> kWeightTypes = {DType::F32, DType::BF16, DType::F16};
// Matmul weights and embedding tables may also be quantized (where the backend supports it).
constexpr std::initializer_list<DType> kMatrixTypes = {DType::F32,  DType::BF16, DType::F16,  DType::Q8_0,
                                                       DType::Q4_K, DType::Q5_K, DType::Q6_K};

// scales: undefined, or a Float64Array [kScale, vScale] of positive finite numbers (an fp8 cache's
// per-tensor scales; the float caches take only [1, 1]).
KvCacheView cache_view(const OpCheck& c, TensorWrap* kc, TensorWrap* vc, const Napi::Value& scales) {
  c.dtype(kc, "kCache", {DType::F32, DType::BF16, DType::F16, DType::FP8_E4M3});
  c.rank(kc, "kCache", 4);
  c.same_shape(vc, "vCache", kc, "kCache");
  c.dtype(vc, "vCache", {kc->dtype()});
  c.writable(kc, "kCache");
  c.writable(vc, "vCache");
  KvCacheView v;
  v.k = kc->data();
  v.v = vc->data();
  v.dtype = kc->dtype();
  v.num_blocks = kc->shape()[0];
  v.block_size = kc->shape()[1];
  v.num_kv_heads = kc->shape()[2];
  v.head_dim = kc->shape()[3];
  if (v.num_blocks < 1 || v.block_size < 1 || v.num_kv_heads < 1 || v.head_dim < 1)
    c.fail("kCache " + kc->describe() + " must be [numBlocks, blockSize, numKvHeads, headDim], all ≥ 1");
  if (!scales.IsUndefined()) {
    const std::vector<double> s = c.f64(scales, "kvScales");
    if (s.size() != 2) c.fail("kvScales must hold [kScale, vScale]");
    for (double x : s)
      if (!(std::isfinite(x) && x > 0 && x < 3.4e38)) c.fail("kvScales must be positive finite f32 numbers");
    if (v.dtype != DType::FP8_E4M3 && (s[0] != 1 || s[1] != 1)) c.fail("kvScales other than [1, 1] need an fp8 cache");
    v.k_scale = static_cast<float>(s[0]);
    v.v_scale = static_cast<float>(s[1]);
  }
  return v;
}

}  // namespace

// copy(dst, src): device-to-device copy of equal-sized tensors (any dtype and shape).
void DeviceWrap::Copy(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "copy", live("copy"));
  TensorWrap* dst = c.tensor(info[0], "dst");
  TensorWrap* src = c.tensor(info[1], "src");
  c.writable(dst, "dst");
  if (dst->bytes() != src->bytes()) c.fail("dst " + dst->describe() + " and src " + src->describe() + " differ in size");
  c.no_overlap(dst, "dst", src, "src");
  Backend* b = state_->backend.get();
  void* d = dst->data();
  const void* s = src->data();
  size_t n = dst->bytes();
  state_->stream->enqueue("copy", [b, d, s, n] { b->copy(d, s, n); });
}

// embedding(ids: Int32Array, table, out)
void DeviceWrap::Embedding(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "embedding", live("embedding"));
  auto ids = c.i32(info[0], "ids");
  TensorWrap* table = c.tensor(info[1], "table");
  TensorWrap* out = c.tensor(info[2], "out");
  c.dtype(table, "table", kMatrixTypes);
  c.supported(Op::Embedding, table, "table");
  c.rank(table, "table", 2);
  c.dtype(out, "out", {DType::F32});
  c.writable(out, "out");
  int64_t vocab = table->shape()[0], hidden = table->shape()[1];
  if (c.rows(out) != static_cast<int64_t>(ids.size()) || c.last(out) != hidden)
    c.fail("out " + out->describe() + " must be [" + std::to_string(ids.size()) + ", " + std::to_string(hidden) + "]");
  c.range(ids, "ids", 0, vocab);
  const int64_t n = static_cast<int64_t>(ids.size());
  auto held = c.hold(std::move(ids));
  EmbeddingArgs a{held.get(), n, table->data(), table->dtype(), vocab, hidden, static_cast<float*>(out->data())};
  Backend* b = state_->backend.get();
  state_->stream->enqueue("embedding", [b, a, held] { b->embedding(a); });
}

// matmul(x, w | w[], out | out[], residual | null, epilogue?): out[M, N] = x[M, K] · w[N, K]ᵀ (+ residual). With a
// list of outputs the product's columns are split among them (a fused projection): w is one stacked
// [N, K] matrix, or one [n_j, K] matrix per output, each in its own dtype.
void DeviceWrap::Matmul(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "matmul", live("matmul"));
  TensorWrap* x = c.tensor(info[0], "x");
  TensorWrap* r = c.tensor(info[3], "residual", true);
  c.dtype(x, "x", {DType::F32});
  const int64_t M = c.rows(x), K = c.last(x);
  const auto list = [&](const Napi::Value& v, const char* what) {
    std::vector<TensorWrap*> ts;
    if (!v.IsArray()) {
      ts.push_back(c.tensor(v, what));
      return ts;
    }
    Napi::Array items = v.As<Napi::Array>();
    if (items.Length() < 1 || items.Length() > kMaxMatmulParts)
      c.fail(std::string(what) + " must be a tensor or a list of 1 to " + std::to_string(kMaxMatmulParts) + " tensors");
    for (uint32_t j = 0; j < items.Length(); ++j) ts.push_back(c.tensor(items.Get(j), what));
    return ts;
  };
  const std::vector<TensorWrap*> ws = list(info[1], "w"), outs = list(info[2], "out");
  const Napi::Value epilogue = info[4];
  if (!epilogue.IsUndefined() && !epilogue.IsNull()) {
    if (!epilogue.IsString() || epilogue.As<Napi::String>().Utf8Value() != "swiglu")
      c.fail("epilogue must be 'swiglu' or absent");
    return MatmulSwiglu(c, x, r, ws, outs, info[2].IsArray());
  }
  const bool split = info[2].IsArray();
  if (info[1].IsArray() && (!split || ws.size() != outs.size()))
    c.fail("a list of " + std::to_string(ws.size()) + " weights needs a list of as many outputs, one per weight");
  int64_t N = 0;
  for (TensorWrap* w : ws) {
    c.dtype(w, "w", kMatrixTypes);
    c.supported(Op::Matmul, w, "w");
    c.rank(w, "w", 2);
    if (w->shape()[1] != K) c.fail("x " + x->describe() + " and w " + w->describe() + " disagree on K");
    N += w->shape()[0];
  }
  if (split && r) c.fail("a residual needs a single output tensor");
  MatmulArgs a{static_cast<const float*>(x->data()), ws[0]->data(), ws[0]->dtype(), nullptr, nullptr, M, N, K};

  int64_t cols = 0;
  for (size_t j = 0; j < outs.size(); ++j) {
    TensorWrap* y = outs[j];
    c.dtype(y, "out", {DType::F32});
    c.writable(y, "out");
    if (c.rows(y) != M) c.fail("out " + y->describe() + " must have " + std::to_string(M) + " rows, like x");
    c.no_overlap(x, "x", y, "out");
    for (size_t i = 0; i < j; ++i) c.no_overlap(outs[i], "out", y, "another out");
    if (ws.size() > 1 && c.last(y) != ws[j]->shape()[0])
      c.fail("out " + y->describe() + " must have " + std::to_string(ws[j]->shape()[0]) + " columns, the rows of w " + ws[j]->describe());
    if (split) {
      a.parts[j] = static_cast<float*>(y->data());
      a.part_start[j] = cols;
      TensorWrap* w = ws.size() > 1 ? ws[j] : ws[0];
      const int64_t row0 = ws.size() > 1 ? 0 : cols;  // rows inside one stacked W: whole rows are whole blocks
      a.part_w[j] = static_cast<const char*>(w->data()) + dtype_bytes(w->dtype(), row0 * K);
      a.part_w_dtype[j] = w->dtype();
    }
    cols += c.last(y);
  }
  if (cols != N) {
    std::string shapes;
    for (TensorWrap* y : outs) shapes += (shapes.empty() ? "" : " + ") + y->describe();
    c.fail("out " + shapes + " must have " + std::to_string(N) + " columns in all, the rows of w " + ws[0]->describe());
  }
  if (split) {
    a.num_parts = static_cast<int>(outs.size());
    a.part_start[a.num_parts] = N;
  } else {
    a.y = static_cast<float*>(outs[0]->data());
  }
  if (r) {
    c.dtype(r, "residual", {DType::F32});
    c.same_shape(r, "residual", outs[0], "out");
    if (r->data() != outs[0]->data()) c.no_overlap(r, "residual", outs[0], "out (unless it is the same tensor)");
    a.residual = static_cast<const float*>(r->data());
  }
  Backend* b = state_->backend.get();
  state_->stream->enqueue("matmul", [b, a] { b->matmul(a); });
}

// matmul(x, wGateUp | [wGate, wUp], out, null, 'swiglu'): out[M, I] = silu(x · wGateᵀ) · (x · wUpᵀ), the
// gate/up product [M, 2I] never written. One stacked [2I, K] matrix (gate rows first) or two [I, K]
// matrices in one dtype.
void DeviceWrap::MatmulSwiglu(OpCheck& c, TensorWrap* x, TensorWrap* r, const std::vector<TensorWrap*>& ws,
                              const std::vector<TensorWrap*>& outs, bool out_list) {
  if (r) c.fail("the swiglu epilogue takes no residual");
  if (out_list) c.fail("the swiglu epilogue writes one output tensor, not a list");
  if (ws.size() > 2) c.fail("the swiglu epilogue takes one stacked gate/up matrix or two matrices [gate, up]");
  const int64_t M = c.rows(x), K = c.last(x);
  for (TensorWrap* w : ws) {
    c.dtype(w, "w", kMatrixTypes);
    c.rank(w, "w", 2);
    if (w->shape()[1] != K) c.fail("x " + x->describe() + " and w " + w->describe() + " disagree on K");
    if (!state_->backend->supports(Op::MatmulSwiglu, w->dtype()))
      c.fail(std::string("the swiglu epilogue with ") + dtype_name(w->dtype()) + " weights is not supported on the " +
             state_->backend->name() + " backend (see supports('matmulSwiglu'))");
  }
  int64_t N = 0;
  if (ws.size() == 2) {
    if (ws[0]->dtype() != ws[1]->dtype() || ws[0]->shape() != ws[1]->shape())
      c.fail("gate w " + ws[0]->describe() + " and up w " + ws[1]->describe() + " must have one dtype and shape");
    N = 2 * ws[0]->shape()[0];
  } else {
    N = ws[0]->shape()[0];
    if (N % 2 != 0) c.fail("the stacked gate/up w " + ws[0]->describe() + " must have an even number of rows");
  }
  TensorWrap* y = outs[0];
  c.dtype(y, "out", {DType::F32});
  c.writable(y, "out");
  if (c.rows(y) != M || c.last(y) != N / 2)
    c.fail("out " + y->describe() + " must be [" + std::to_string(M) + ", " + std::to_string(N / 2) + "]");
  c.no_overlap(x, "x", y, "out");
  MatmulArgs a{static_cast<const float*>(x->data()), ws[0]->data(), ws[0]->dtype(), nullptr,
               static_cast<float*>(y->data()), M, N, K};
  a.epilogue = MatmulEpilogue::Swiglu;
  if (ws.size() == 2) {
    a.num_parts = 2;
    a.part_start[1] = N / 2;
    a.part_start[2] = N;
    for (int j = 0; j < 2; ++j) {
      a.part_w[j] = ws[j]->data();
      a.part_w_dtype[j] = ws[j]->dtype();
    }
  }
  Backend* b = state_->backend.get();
  state_->stream->enqueue("matmul", [b, a] { b->matmul(a); });
}

// rmsnorm(x, residual | null, sumOut | null, weight, out, eps)
void DeviceWrap::RmsNorm(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "rmsnorm", live("rmsnorm"));
  TensorWrap* x = c.tensor(info[0], "x");
  TensorWrap* r = c.tensor(info[1], "residual", true);
  TensorWrap* s = c.tensor(info[2], "sumOut", true);
  TensorWrap* w = c.tensor(info[3], "weight");
  TensorWrap* out = c.tensor(info[4], "out");
  double eps = c.positive(info[5], "eps");
  c.dtype(x, "x", {DType::F32});
  c.dtype(out, "out", {DType::F32});
  c.writable(out, "out");
  c.same_shape(out, "out", x, "x");
  c.dtype(w, "weight", kWeightTypes);
  c.rank(w, "weight", 1);
  c.dim(w, "weight", 0, c.last(x));
  if (r) {
    c.dtype(r, "residual", {DType::F32});
    c.same_shape(r, "residual", x, "x");
  }
  if (s) {
    c.dtype(s, "sumOut", {DType::F32});
    c.writable(s, "sumOut");
    c.same_shape(s, "sumOut", x, "x");
  }
  RmsNormArgs a{static_cast<const float*>(x->data()), r ? static_cast<const float*>(r->data()) : nullptr,
                s ? static_cast<float*>(s->data()) : nullptr, w->data(), w->dtype(),
                static_cast<float*>(out->data()), c.rows(x), c.last(x), static_cast<float>(eps)};
  Backend* b = state_->backend.get();
  state_->stream->enqueue("rmsnorm", [b, a] { b->rmsnorm(a); });
}

// qkNormRope(q, k, qWeight | null, kWeight | null, positions: Int32Array, eps, invFreq: Float64Array [D/2],
//            attentionFactor)
void DeviceWrap::QkNormRope(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "qkNormRope", live("qkNormRope"));
  TensorWrap* q = c.tensor(info[0], "q");
  TensorWrap* k = c.tensor(info[1], "k");
  TensorWrap* qw = c.tensor(info[2], "qWeight", true);
  TensorWrap* kw = c.tensor(info[3], "kWeight", true);
  auto pos = c.i32(info[4], "positions");
  double eps = c.positive(info[5], "eps");
  std::vector<double> inv_freq = c.f64(info[6], "invFreq");
  double attention_factor = c.positive(info[7], "attentionFactor");
  c.dtype(q, "q", {DType::F32});
  c.dtype(k, "k", {DType::F32});
  c.rank(q, "q", 3);
  c.rank(k, "k", 3);
  c.writable(q, "q");
  c.writable(k, "k");
  int64_t T = q->shape()[0], D = q->shape()[2];
  c.dim(k, "k", 0, T);
  c.dim(k, "k", 2, D);
  if (D % 2 != 0) c.fail("head dimension " + std::to_string(D) + " must be even");
  if (static_cast<int64_t>(inv_freq.size()) != D / 2)
    c.fail("invFreq has " + std::to_string(inv_freq.size()) + " entries for head dimension " + std::to_string(D) +
           " (one per rotation pair: " + std::to_string(D / 2) + ")");
  for (double f : inv_freq)
    if (!std::isfinite(f) || f < 0) c.fail("invFreq must hold finite, non-negative inverse frequencies");
  if (static_cast<int64_t>(pos.size()) != T)
    c.fail("positions has " + std::to_string(pos.size()) + " entries for " + std::to_string(T) + " tokens");
  c.range(pos, "positions", 0, int64_t(1) << 24);
  c.no_overlap(q, "q", k, "k");
  DType wt = DType::F32;
  for (auto [t, name] : {std::pair<TensorWrap*, const char*>{qw, "qWeight"}, {kw, "kWeight"}}) {
    if (!t) continue;
    c.dtype(t, name, kWeightTypes);
    c.rank(t, name, 1);
    c.dim(t, name, 0, D);
    wt = t->dtype();
  }
  if (qw && kw && qw->dtype() != kw->dtype()) c.fail("qWeight and kWeight must have the same dtype");
  auto held = c.hold(std::move(pos));
  // The frequencies are a constant of the op (and of a captured graph): the queued op owns a copy.
  auto freqs = std::make_shared<const std::vector<double>>(std::move(inv_freq));
  QkNormRopeArgs a{static_cast<float*>(q->data()), static_cast<float*>(k->data()), qw ? qw->data() : nullptr,
                   kw ? kw->data() : nullptr, wt, held.get(), freqs->data(), T, q->shape()[1], k->shape()[1], D,
                   static_cast<float>(eps), static_cast<float>(attention_factor)};
  Backend* b = state_->backend.get();
  state_->stream->enqueue("qkNormRope", [b, a, held, freqs] { b->qk_norm_rope(a); });
}

// swiglu(gate, up, out)
void DeviceWrap::Swiglu(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "swiglu", live("swiglu"));
  TensorWrap* g = c.tensor(info[0], "gate");
  TensorWrap* u = c.tensor(info[1], "up");
  TensorWrap* out = c.tensor(info[2], "out");
  for (auto [t, name] : {std::pair<TensorWrap*, const char*>{g, "gate"}, {u, "up"}, {out, "out"}})
    c.dtype(t, name, {DType::F32});
  c.writable(out, "out");
  c.same_shape(u, "up", g, "gate");
  c.same_shape(out, "out", g, "gate");
  SwigluArgs a{static_cast<const float*>(g->data()), static_cast<const float*>(u->data()),
               static_cast<float*>(out->data()), c.rows(g), c.last(g)};
  Backend* b = state_->backend.get();
  state_->stream->enqueue("swiglu", [b, a] { b->swiglu(a); });
}

// kvWrite(kCache, vCache, k, v, slots: Int32Array, kvScales?)
void DeviceWrap::KvWrite(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "kvWrite", live("kvWrite"));
  KvCacheView cache = cache_view(c, c.tensor(info[0], "kCache"), c.tensor(info[1], "vCache"), info[5]);
  TensorWrap* k = c.tensor(info[2], "k");
  TensorWrap* v = c.tensor(info[3], "v");
  auto slots = c.i32(info[4], "slots");
  c.dtype(k, "k", {DType::F32});
  c.dtype(v, "v", {DType::F32});
  c.rank(k, "k", 3);
  c.same_shape(v, "v", k, "k");
  int64_t T = k->shape()[0];
  c.dim(k, "k", 1, cache.num_kv_heads);
  c.dim(k, "k", 2, cache.head_dim);
  if (static_cast<int64_t>(slots.size()) != T)
    c.fail("slots has " + std::to_string(slots.size()) + " entries for " + std::to_string(T) + " tokens");
  c.range(slots, "slots", 0, cache.num_blocks * cache.block_size);
  auto held = c.hold(std::move(slots));
  KvWriteArgs a{cache, static_cast<const float*>(k->data()), static_cast<const float*>(v->data()), held.get(), T};
  Backend* b = state_->backend.get();
  state_->stream->enqueue("kvWrite", [b, a, held] { b->kv_write(a); });
}

// attention(kCache, vCache, q, out, qStart, kvLen, blockTables, maxBlocksPerSeq, scale, kvScales?)
void DeviceWrap::Attention(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "attention", live("attention"));
  KvCacheView cache = cache_view(c, c.tensor(info[0], "kCache"), c.tensor(info[1], "vCache"), info[9]);
  TensorWrap* q = c.tensor(info[2], "q");
  TensorWrap* out = c.tensor(info[3], "out");
  auto q_start = c.i32(info[4], "qStart");
  auto kv_len = c.i32(info[5], "kvLen");
  auto tables = c.i32(info[6], "blockTables");
  int64_t max_blocks = c.integer(info[7], "maxBlocksPerSeq", 1, int64_t(1) << 20);
  double scale = c.positive(info[8], "scale");
  c.dtype(q, "q", {DType::F32});
  c.rank(q, "q", 3);
  c.dtype(out, "out", {DType::F32});
  c.writable(out, "out");
  c.same_shape(out, "out", q, "q");
  c.no_overlap(q, "q", out, "out");
  int64_t T = q->shape()[0], Hq = q->shape()[1];
  c.dim(q, "q", 2, cache.head_dim);
  if (Hq % cache.num_kv_heads != 0)
    c.fail(std::to_string(Hq) + " query heads are not a multiple of " + std::to_string(cache.num_kv_heads) +
           " KV heads");
  int64_t S = static_cast<int64_t>(kv_len.size());
  if (S < 1) c.fail("kvLen must hold at least one sequence");
  if (static_cast<int64_t>(q_start.size()) != S + 1)
    c.fail("qStart must have " + std::to_string(S + 1) + " entries (sequences + 1)");
  if (static_cast<int64_t>(tables.size()) != S * max_blocks)
    c.fail("blockTables must have numSeqs × maxBlocksPerSeq = " + std::to_string(S * max_blocks) + " entries");
  // A captured attention is replayed for decode steps only (see the CUDA launcher).
  const bool decode_only = c.capturing();
  const int64_t block_size = cache.block_size, num_blocks = cache.num_blocks;
  c.verify({&q_start, &kv_len, &tables}, [=](const OpCheck& c, const std::vector<const int32_t*>& v) {
    const int32_t *q_start = v[0], *kv_len = v[1], *tables = v[2];
    if (q_start[0] != 0 || q_start[S] != T)
      c.fail("qStart must start at 0 and end at the number of query tokens " + std::to_string(T));
    for (int64_t s = 0; s < S; ++s) {
      int64_t q_len = int64_t(q_start[s + 1]) - q_start[s];
      if (q_len < 0) c.fail("qStart must be non-decreasing (sequence " + std::to_string(s) + ")");
      if (decode_only && q_len != 1)
        c.fail("a captured attention takes one query token per sequence (sequence " + std::to_string(s) + " has " +
               std::to_string(q_len) + ")");
      if (kv_len[s] < q_len || kv_len[s] < 1)
        c.fail("kvLen[" + std::to_string(s) + "] = " + std::to_string(kv_len[s]) + " is less than its " +
               std::to_string(q_len) + " query tokens (or zero)");
      int64_t blocks = (int64_t(kv_len[s]) + block_size - 1) / block_size;
      if (blocks > max_blocks)
        c.fail("kvLen[" + std::to_string(s) + "] = " + std::to_string(kv_len[s]) + " needs " +
               std::to_string(blocks) + " blocks but maxBlocksPerSeq is " + std::to_string(max_blocks));
      for (int64_t j = 0; j < blocks; ++j) {
        int32_t id = tables[s * max_blocks + j];
        if (id < 0 || id >= num_blocks)
          c.fail("blockTables[" + std::to_string(s) + "][" + std::to_string(j) + "] = " + std::to_string(id) +
                 " is outside the pool of " + std::to_string(num_blocks) + " blocks");
      }
    }
  });
  auto h_start = c.hold(std::move(q_start));
  auto h_len = c.hold(std::move(kv_len));
  auto h_tables = c.hold(std::move(tables));
  AttentionArgs a{cache,        static_cast<const float*>(q->data()), static_cast<float*>(out->data()), S, Hq,
                  max_blocks,   T,
                  h_start.get(), h_len.get(),
                  h_tables.get(), static_cast<float>(scale)};
  Backend* b = state_->backend.get();
  state_->stream->enqueue("attention", [b, a, h_start, h_len, h_tables] { b->attention(a); });
}

}  // namespace paralon
