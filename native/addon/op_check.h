// Argument checking for the op bindings: every tensor's device, dtype, shape and writability, and
// every host index array's range, checked before an op is queued. Errors name the op and argument.
#pragma once

#include <napi.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "device.h"

namespace paralon {

class OpCheck;

// A host int32 argument: its values and, while a graph is being captured, the graph input it lies in.
struct HostI32 {
  std::vector<int32_t> values;
  int input = -1;      // index of the capture's input holding these values; -1: not an input
  size_t offset = 0;   // element offset inside that input
  size_t size() const { return values.size(); }
  int32_t operator[](size_t i) const { return values[i]; }
};

// A check of host int32 arrays (one pointer per array, lengths fixed by the op's shapes). Checks
// that involve a graph input are recorded by the capture and run again on every replay.
using HostCheck = std::function<void(const OpCheck&, const std::vector<const int32_t*>&)>;

class OpCheck {
 public:
  OpCheck(Napi::Env env, const char* op, DeviceState* dev) : env_(env), op_(op), dev_(dev) {}

  [[noreturn]] void fail(const std::string& message) const;

  // A tensor argument on this device; null/undefined allowed only when nullable.
  TensorWrap* tensor(const Napi::Value& v, const char* what, bool nullable = false) const;
  void writable(const TensorWrap* t, const char* what) const;
  void dtype(const TensorWrap* t, const char* what, std::initializer_list<DType> allowed) const;
  // Fails unless the device's backend runs `op` with `t` (its weight, table or cache) in t's dtype.
  void supported(Op op, const TensorWrap* t, const char* what) const;
  void rank(const TensorWrap* t, const char* what, size_t r) const;
  void same_shape(const TensorWrap* a, const char* what, const TensorWrap* b, const char* as) const;
  void dim(const TensorWrap* t, const char* what, size_t axis, int64_t expected) const;
  // Rows × last dimension of an activation of any rank ≥ 1.
  static int64_t rows(const TensorWrap* t);
  static int64_t last(const TensorWrap* t);
  void no_overlap(const TensorWrap* a, const char* what, const TensorWrap* b, const char* as) const;

  // Host arrays are copied, so callers may reuse theirs as soon as the op is queued.
  HostI32 i32(const Napi::Value& v, const char* what) const;
  std::vector<double> f64(const Napi::Value& v, const char* what) const;
  // Runs `check` on the arrays now; while capturing, also records it when an array is a graph input
  // (only then is it wrapped in a HostCheck, so the eager path does not build one).
  template <typename Check>
  void verify(const std::vector<const HostI32*>& arrays, Check&& check) const {
    std::vector<const int32_t*> values;
    bool from_input = false;
    for (const HostI32* a : arrays) {
      values.push_back(a->values.data());
      from_input = from_input || a->input >= 0;
    }
    check(*this, values);
    if (from_input) record(arrays, HostCheck(std::forward<Check>(check)));
  }
  void range(const HostI32& a, const char* what, int64_t lo, int64_t hi_exclusive) const;
  // The array as the queued op reads it: a private copy, or the capture's copy of its graph input.
  std::shared_ptr<const int32_t> hold(HostI32&& a) const;
  bool capturing() const;
  const char* op() const { return op_; }
  double number(const Napi::Value& v, const char* what) const;
  double positive(const Napi::Value& v, const char* what) const;
  int64_t integer(const Napi::Value& v, const char* what, int64_t lo, int64_t hi) const;

 private:
  void record(const std::vector<const HostI32*>& arrays, HostCheck check) const;

  Napi::Env env_;
  const char* op_;
  DeviceState* dev_;
};

}  // namespace paralon
