// The mixture-of-experts ops as Device methods (see native/ops.h MoeRouteArgs, MoeMatmulArgs,
// MoeCombineArgs): validate every argument, refuse a backend that does not run the op, queue it.
#include "device.h"
#include "op_check.h"

namespace paralon {

// moeRoute(logits [T, E] f32, ids [T, k] i32, weights [T, k] f32, renormalize: boolean)
void DeviceWrap::MoeRoute(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "moeRoute", live("moeRoute"));
  TensorWrap* logits = c.tensor(info[0], "logits");
  TensorWrap* ids = c.tensor(info[1], "ids");
  TensorWrap* weights = c.tensor(info[2], "weights");
  if (!info[3].IsBoolean()) c.fail("renormalize must be true or false");
  const bool renormalize = info[3].As<Napi::Boolean>().Value();
  c.dtype(logits, "logits", {DType::F32});
  c.supported(Op::MoeRoute, logits, "logits");
  c.rank(logits, "logits", 2);
  c.dtype(ids, "ids", {DType::I32});
  c.dtype(weights, "weights", {DType::F32});
  c.rank(ids, "ids", 2);
  c.writable(ids, "ids");
  c.writable(weights, "weights");
  c.same_shape(weights, "weights", ids, "ids");
  const int64_t T = logits->shape()[0], E = logits->shape()[1], k = ids->shape()[1];
  if (E < 1) c.fail("logits " + logits->describe() + " must have at least one expert");
  c.dim(ids, "ids", 0, T);
  if (k < 1 || k > E) c.fail("ids " + ids->describe() + ": top-k must be between 1 and the " + std::to_string(E) + " experts");
  c.no_overlap(ids, "ids", weights, "weights");
  MoeRouteArgs a{static_cast<const float*>(logits->data()), static_cast<int32_t*>(ids->data()),
                 static_cast<float*>(weights->data()), T, E, k, renormalize};
  Backend* b = state_->backend.get();
  state_->stream->enqueue("moeRoute", [b, a] { b->moe_route(a); });
}

// moeMatmul(x [T, K] or [T, k, K] f32, w [E, N, K], ids [T, k] i32, y [T, k, N] f32)
void DeviceWrap::MoeMatmul(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "moeMatmul", live("moeMatmul"));
  TensorWrap* x = c.tensor(info[0], "x");
  TensorWrap* w = c.tensor(info[1], "w");
  TensorWrap* ids = c.tensor(info[2], "ids");
  TensorWrap* y = c.tensor(info[3], "y");
  c.dtype(x, "x", {DType::F32});
  c.dtype(w, "w", {DType::F32, DType::BF16, DType::F16, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K});
  c.supported(Op::MoeMatmul, w, "w");
  c.rank(w, "w", 3);
  c.dtype(ids, "ids", {DType::I32});
  c.rank(ids, "ids", 2);
  c.dtype(y, "y", {DType::F32});
  c.rank(y, "y", 3);
  c.writable(y, "y");
  const int64_t E = w->shape()[0], N = w->shape()[1], K = w->shape()[2];
  const int64_t T = ids->shape()[0], k = ids->shape()[1];
  if (E < 1) c.fail("w " + w->describe() + " must hold at least one expert");
  if (x->shape().size() != 2 && x->shape().size() != 3) c.fail("x " + x->describe() + " must be [T, K] or [T, k, K]");
  const bool per_slot = x->shape().size() == 3;
  c.dim(x, "x", 0, T);
  if (per_slot) c.dim(x, "x", 1, k);
  if (c.last(x) != K) c.fail("x " + x->describe() + " and w " + w->describe() + " disagree on K");
  c.dim(y, "y", 0, T);
  c.dim(y, "y", 1, k);
  c.dim(y, "y", 2, N);
  c.no_overlap(x, "x", y, "y");
  c.no_overlap(ids, "ids", y, "y");
  MoeMatmulArgs a{static_cast<const float*>(x->data()), per_slot, w->data(), w->dtype(),
                  static_cast<const int32_t*>(ids->data()), static_cast<float*>(y->data()), T, k, E, N, K};
  Backend* b = state_->backend.get();
  state_->stream->enqueue("moeMatmul", [b, a] { b->moe_matmul(a); });
}

// moeCombine(y [T, k, N] f32, weights [T, k] f32, out [T, N] f32, residual [T, N] | null)
void DeviceWrap::MoeCombine(const Napi::CallbackInfo& info) {
  OpCheck c(info.Env(), "moeCombine", live("moeCombine"));
  TensorWrap* y = c.tensor(info[0], "y");
  TensorWrap* weights = c.tensor(info[1], "weights");
  TensorWrap* out = c.tensor(info[2], "out");
  TensorWrap* r = c.tensor(info[3], "residual", true);
  for (auto [t, name] : {std::pair<TensorWrap*, const char*>{y, "y"}, {weights, "weights"}, {out, "out"}})
    c.dtype(t, name, {DType::F32});
  c.supported(Op::MoeCombine, y, "y");
  c.rank(y, "y", 3);
  c.rank(weights, "weights", 2);
  c.rank(out, "out", 2);
  c.writable(out, "out");
  const int64_t T = y->shape()[0], k = y->shape()[1], N = y->shape()[2];
  c.dim(weights, "weights", 0, T);
  c.dim(weights, "weights", 1, k);
  c.dim(out, "out", 0, T);
  c.dim(out, "out", 1, N);
  c.no_overlap(y, "y", out, "out");
  c.no_overlap(weights, "weights", out, "out");
  if (r) {
    c.dtype(r, "residual", {DType::F32});
    c.same_shape(r, "residual", out, "out");
    if (r->data() != out->data()) c.no_overlap(r, "residual", out, "out (unless it is the same tensor)");
  }
  MoeCombineArgs a{static_cast<const float*>(y->data()), static_cast<const float*>(weights->data()),
                   r ? static_cast<const float*>(r->data()) : nullptr, static_cast<float*>(out->data()), T, k, N};
  Backend* b = state_->backend.get();
  state_->stream->enqueue("moeCombine", [b, a] { b->moe_combine(a); });
}

}  // namespace paralon
