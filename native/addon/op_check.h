// Argument checking for the op bindings: every tensor's device, dtype, shape and writability, and
// every host index array's range, checked before an op is queued. Errors name the op and argument.
#pragma once

#include <napi.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "device.h"

namespace paralon {

class OpCheck {
 public:
  OpCheck(Napi::Env env, const char* op, DeviceState* dev) : env_(env), op_(op), dev_(dev) {}

  [[noreturn]] void fail(const std::string& message) const;

  // A tensor argument on this device; null/undefined allowed only when nullable.
  TensorWrap* tensor(const Napi::Value& v, const char* what, bool nullable = false) const;
  void writable(const TensorWrap* t, const char* what) const;
  void dtype(const TensorWrap* t, const char* what, std::initializer_list<DType> allowed) const;
  void rank(const TensorWrap* t, const char* what, size_t r) const;
  void same_shape(const TensorWrap* a, const char* what, const TensorWrap* b, const char* as) const;
  void dim(const TensorWrap* t, const char* what, size_t axis, int64_t expected) const;
  // Rows × last dimension of an activation of any rank ≥ 1.
  static int64_t rows(const TensorWrap* t);
  static int64_t last(const TensorWrap* t);
  void no_overlap(const TensorWrap* a, const char* what, const TensorWrap* b, const char* as) const;

  // Host arrays are copied, so callers may reuse theirs as soon as the op is queued.
  std::vector<int32_t> i32(const Napi::Value& v, const char* what) const;
  std::vector<double> f64(const Napi::Value& v, const char* what) const;
  void range(const std::vector<int32_t>& a, const char* what, int64_t lo, int64_t hi_exclusive) const;
  double number(const Napi::Value& v, const char* what) const;
  double positive(const Napi::Value& v, const char* what) const;
  int64_t integer(const Napi::Value& v, const char* what, int64_t lo, int64_t hi) const;

 private:
  Napi::Env env_;
  const char* op_;
  DeviceState* dev_;
};

}  // namespace paralon
