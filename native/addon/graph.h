// Graphs on the JS side: a capture records which host arrays are graph inputs, the argument checks
// that involve them (run again on every replay, so a replay is validated exactly like the ops it
// stands for) and the tensors the recorded ops use (kept alive as long as the graph).
#pragma once

#include <napi.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "device.h"
#include "op_check.h"

namespace paralon {

// One array a recorded check reads: a slice of a graph input, or a constant copied at capture.
struct CheckedArray {
  int input = -1;
  size_t offset = 0;
  std::vector<int32_t> constant;
};

struct RecordedCheck {
  const char* op;  // string literal of the op that made the check
  std::vector<CheckedArray> arrays;
  HostCheck check;
};

// The state of a capture in progress (JS thread only).
struct CaptureRecorder {
  struct Input {
    Napi::Reference<Napi::Int32Array> array;  // the caller's array, held during the capture
    const int32_t* data;
    size_t length;
    std::shared_ptr<std::vector<int32_t>> copy;  // what the recorded ops point into
  };
  std::vector<Input> inputs;
  std::vector<RecordedCheck> checks;
  std::vector<std::shared_ptr<Allocation>> tensors;
  std::set<const Allocation*> seen;

  // The input holding the n elements at p (JS memory), with their offset; -1 when none.
  int locate(const int32_t* p, size_t n, size_t* offset) const;
  void record(const char* op, const std::vector<const HostI32*>& arrays, HostCheck check);
  void keep(const TensorWrap* t);
  // A pointer into the capture's copy of the input `a` lies in; null when the values changed since
  // beginCapture (the ops would be recorded against other metadata than the one checked).
  std::shared_ptr<const int32_t> alias(const HostI32& a) const;
};

// What the backend graph is, filled in stream order by the worker (null until end_capture ran, and
// for good when the capture failed).
struct GraphSlot {
  std::unique_ptr<BackendGraph> graph;
  std::string error;
};

class GraphWrap : public Napi::ObjectWrap<GraphWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, std::shared_ptr<DeviceState> device, std::shared_ptr<GraphSlot> slot,
                             CaptureRecorder& recorder);
  explicit GraphWrap(const Napi::CallbackInfo& info);
  ~GraphWrap() override;

 private:
  void Replay(const Napi::CallbackInfo& info);
  void Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  void release();

  std::shared_ptr<DeviceState> device_;
  std::shared_ptr<GraphSlot> slot_;
  std::vector<size_t> lengths_;
  std::vector<RecordedCheck> checks_;
  std::vector<std::shared_ptr<Allocation>> tensors_;
};

}  // namespace paralon
