#include "op_check.h"

#include "graph.h"

#include <cmath>

namespace paralon {

void OpCheck::fail(const std::string& message) const { throw_op_error(env_, op_, message); }

TensorWrap* OpCheck::tensor(const Napi::Value& v, const char* what, bool nullable) const {
  if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
  TensorWrap* t = TensorWrap::FromArg(v, op_, what);
  if (t->device() != dev_) fail(std::string(what) + " lives on another device");
  if (dev_->capture) dev_->capture->keep(t);  // the graph will read or write it at every replay
  return t;
}

void OpCheck::writable(const TensorWrap* t, const char* what) const {
  if (t->read_only()) fail(std::string(what) + " is a read-only mapped tensor");
}

void OpCheck::dtype(const TensorWrap* t, const char* what, std::initializer_list<DType> allowed) const {
  std::string names;
  for (DType d : allowed) {
    if (t->dtype() == d) return;
    names += (names.empty() ? "" : " or ") + std::string(dtype_name(d));
  }
  fail(std::string(what) + " must be " + names + " (got " + t->describe() + ")");
}

void OpCheck::supported(Op op, const TensorWrap* t, const char* what) const {
  if (!dev_->backend->supports(op, t->dtype()))
    fail(std::string(what) + " " + t->describe() + ": " + dtype_name(t->dtype()) + " is not supported on the " +
         dev_->backend->name() + " backend");
}

void OpCheck::rank(const TensorWrap* t, const char* what, size_t r) const {
  if (t->shape().size() != r)
    fail(std::string(what) + " must have " + std::to_string(r) + " dimensions (got " + t->describe() + ")");
}

void OpCheck::same_shape(const TensorWrap* a, const char* what, const TensorWrap* b, const char* as) const {
  if (a->shape() != b->shape())
    fail(std::string(what) + " " + a->describe() + " must have the shape of " + as + " " + b->describe());
}

void OpCheck::dim(const TensorWrap* t, const char* what, size_t axis, int64_t expected) const {
  if (t->shape().size() <= axis || t->shape()[axis] != expected)
    fail(std::string(what) + " " + t->describe() + ": dimension " + std::to_string(axis) + " must be " +
         std::to_string(expected));
}

int64_t OpCheck::rows(const TensorWrap* t) {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < t->shape().size(); ++i) r *= t->shape()[i];
  return r;
}

int64_t OpCheck::last(const TensorWrap* t) { return t->shape().empty() ? 1 : t->shape().back(); }

void OpCheck::no_overlap(const TensorWrap* a, const char* what, const TensorWrap* b, const char* as) const {
  const char* a0 = static_cast<const char*>(a->data());
  const char* b0 = static_cast<const char*>(b->data());
  if (a0 < b0 + b->bytes() && b0 < a0 + a->bytes()) fail(std::string(what) + " must not overlap " + as);
}

HostI32 OpCheck::i32(const Napi::Value& v, const char* what) const {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    fail(std::string(what) + " must be an Int32Array");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  HostI32 h;
  h.values.assign(a.Data(), a.Data() + a.ElementLength());
  if (dev_->capture) h.input = dev_->capture->locate(a.Data(), a.ElementLength(), &h.offset);
  return h;
}

bool OpCheck::capturing() const { return dev_->capture != nullptr; }

void OpCheck::record(const std::vector<const HostI32*>& arrays, HostCheck check) const {
  dev_->capture->record(op_, arrays, std::move(check));
}

void OpCheck::range(const HostI32& a, const char* what, int64_t lo, int64_t hi) const {
  const size_t n = a.size();
  verify({&a}, [n, what, lo, hi](const OpCheck& c, const std::vector<const int32_t*>& v) {
    for (size_t i = 0; i < n; ++i)
      if (v[0][i] < lo || v[0][i] >= hi)
        c.fail(std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(v[0][i]) + " is outside [" +
               std::to_string(lo) + ", " + std::to_string(hi) + ")");
  });
}

std::shared_ptr<const int32_t> OpCheck::hold(HostI32&& a) const {
  if (a.input >= 0) {
    std::shared_ptr<const int32_t> p = dev_->capture->alias(a);
    if (!p) fail("a graph input changed between beginCapture and this op");
    return p;
  }
  auto copy = std::make_shared<std::vector<int32_t>>(std::move(a.values));
  return std::shared_ptr<const int32_t>(copy, copy->data());
}

std::vector<double> OpCheck::f64(const Napi::Value& v, const char* what) const {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    fail(std::string(what) + " must be a Float64Array");
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  return std::vector<double>(a.Data(), a.Data() + a.ElementLength());
}


double OpCheck::number(const Napi::Value& v, const char* what) const {
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    fail(std::string(what) + " must be a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

double OpCheck::positive(const Napi::Value& v, const char* what) const {
  double x = number(v, what);
  if (!(x > 0)) fail(std::string(what) + " must be positive");
  return x;
}

int64_t OpCheck::integer(const Napi::Value& v, const char* what, int64_t lo, int64_t hi) const {
  double x = number(v, what);
  if (x != std::floor(x) || x < static_cast<double>(lo) || x > static_cast<double>(hi))
    fail(std::string(what) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int64_t>(x);
}

}  // namespace paralon
