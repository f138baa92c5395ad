// Graph capture and replay bindings: Device.beginCapture / endCapture / abortCapture and Graph.
#include "graph.h"

#include <algorithm>

#include "addon_data.h"

namespace paralon {

// ---------------------------------------------------------------- CaptureRecorder

int CaptureRecorder::locate(const int32_t* p, size_t n, size_t* offset) const {
  if (n == 0) return -1;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Input& in = inputs[i];
    if (p >= in.data && p + n <= in.data + in.length) {
      *offset = static_cast<size_t>(p - in.data);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void CaptureRecorder::record(const char* op, const std::vector<const HostI32*>& arrays, HostCheck check) {
  RecordedCheck rc{op, {}, std::move(check)};
  for (const HostI32* a : arrays) {
    CheckedArray ca;
    ca.input = a->input;
    ca.offset = a->offset;
    if (a->input < 0) ca.constant = a->values;
    rc.arrays.push_back(std::move(ca));
  }
  checks.push_back(std::move(rc));
}

void CaptureRecorder::keep(const TensorWrap* t) {
  if (seen.insert(t->allocation()).second) tensors.push_back(t->allocation_ref());
}

std::shared_ptr<const int32_t> CaptureRecorder::alias(const HostI32& a) const {
  const std::shared_ptr<std::vector<int32_t>>& copy = inputs[static_cast<size_t>(a.input)].copy;
  const int32_t* p = copy->data() + a.offset;
  if (!std::equal(a.values.begin(), a.values.end(), p)) return nullptr;
  return std::shared_ptr<const int32_t>(copy, p);
}

void DeviceState::refuse_while_capturing(Napi::Env env, const char* op) const {
  if (capture) throw_op_error(env, op, "not allowed while a graph is being captured");
}

// ---------------------------------------------------------------- Device methods

Napi::Value DeviceWrap::SupportsGraphs(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), live("supportsGraphs")->backend->supports_graphs());
}

// supports(op, dtype): whether the backend runs `op` (a name from the op contract) with that dtype.
Napi::Value DeviceWrap::Supports(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceState* dev = live("supports");
  if (info.Length() < 1 || !info[0].IsString()) throw_op_error(env, "supports", "op must be a string");
  std::string name = info[0].As<Napi::String>();
  DType dt = info.Length() >= 2 && !info[1].IsUndefined() ? parse_dtype(env, info[1], "supports") : DType::F32;
  for (Op op : kAllOps)
    if (name == op_name(op)) return Napi::Boolean::New(env, dev->backend->supports(op, dt));
  throw_op_error(env, "supports", "unknown op '" + name + "'");
}

// beginCapture(inputs: Int32Array[]): the ops queued until endCapture() are recorded, not run. Host
// arrays of those ops that lie inside one of `inputs` are re-read (and re-checked) at every replay.
void DeviceWrap::BeginCapture(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceState* dev = live("beginCapture");
  OpCheck c(env, "beginCapture", dev);
  if (!dev->backend->supports_graphs()) c.fail("the " + dev->backend->name() + " backend does not record graphs");
  if (dev->capture) c.fail("a capture is already in progress");
  if (!info[0].IsArray()) c.fail("inputs must be an array of Int32Array");
  Napi::Array list = info[0].As<Napi::Array>();
  auto recorder = std::make_shared<CaptureRecorder>();
  std::vector<GraphInput> graph_inputs;
  std::vector<std::shared_ptr<std::vector<int32_t>>> copies;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value v = list.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      c.fail("inputs[" + std::to_string(i) + "] must be an Int32Array");
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    for (const CaptureRecorder::Input& other : recorder->inputs)
      if (a.Data() < other.data + other.length && other.data < a.Data() + a.ElementLength())
        c.fail("inputs[" + std::to_string(i) + "] overlaps another input");
    auto copy = std::make_shared<std::vector<int32_t>>(a.Data(), a.Data() + a.ElementLength());
    recorder->inputs.push_back({Napi::Persistent(a), a.Data(), a.ElementLength(), copy});
    graph_inputs.push_back({copy->data(), copy->size()});
    copies.push_back(copy);
  }
  Backend* b = dev->backend.get();
  dev->stream->enqueue("beginCapture", [b, graph_inputs, copies] { b->begin_capture(graph_inputs); });
  dev->capture = std::move(recorder);
}

// stageStep(inputs: Int32Array[]): an eager step's int32 metadata, uploaded by a device backend in one
// copy before the step's ops (Backend::stage_step); the arrays are copied now, so the caller may
// reuse them. Nothing happens while a capture records (graph inputs are uploaded per replay).
void DeviceWrap::StageStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceState* dev = live("stageStep");
  OpCheck c(env, "stageStep", dev);
  if (!info[0].IsArray()) c.fail("inputs must be an array of Int32Array");
  if (dev->capture || dev->backend->host_memory()) return;
  Napi::Array list = info[0].As<Napi::Array>();
  auto values = std::make_shared<std::vector<int32_t>>();
  std::vector<size_t> lengths;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value v = list.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      c.fail("inputs[" + std::to_string(i) + "] must be an Int32Array");
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    values->insert(values->end(), a.Data(), a.Data() + a.ElementLength());
    lengths.push_back(a.ElementLength());
  }
  Backend* b = dev->backend.get();
  dev->stream->enqueue("stageStep", [b, values, lengths] {
    std::vector<GraphInput> inputs;
    size_t at = 0;
    for (size_t n : lengths) {
      inputs.push_back({values->data() + at, n});
      at += n;
    }
    b->stage_step(inputs);
  });
}

// metadataUploads(): host-to-device copies of op metadata so far (Backend::metadata_uploads); read it
// after synchronize() for a count that includes everything queued.
Napi::Value DeviceWrap::MetadataUploads(const Napi::CallbackInfo& info) {
  DeviceState* dev = live("metadataUploads");
  return Napi::Number::New(info.Env(), static_cast<double>(dev->backend->metadata_uploads()));
}

// endCapture() → Graph. The graph has not run yet: replay() runs it.
Napi::Value DeviceWrap::EndCapture(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceState* dev = live("endCapture");
  if (!dev->capture) throw_op_error(env, "endCapture", "no capture in progress");
  std::shared_ptr<CaptureRecorder> recorder = std::move(dev->capture);
  auto slot = std::make_shared<GraphSlot>();
  Backend* b = dev->backend.get();
  std::vector<std::shared_ptr<std::vector<int32_t>>> copies;
  for (const CaptureRecorder::Input& in : recorder->inputs) copies.push_back(in.copy);
  dev->stream->enqueue("endCapture", [b, slot, copies] {
    try {
      slot->graph = b->end_capture(false);
    } catch (const std::exception& e) {
      slot->error = e.what();
      throw;
    }
  });
  return GraphWrap::Create(env, state_, slot, *recorder);
}

// abortCapture(): ends a capture without making a graph (after an error in the recorded code).
void DeviceWrap::AbortCapture(const Napi::CallbackInfo&) {
  DeviceState* dev = live("abortCapture");
  if (!dev->capture) return;
  std::shared_ptr<CaptureRecorder> recorder = std::move(dev->capture);
  Backend* b = dev->backend.get();
  dev->stream->enqueue("abortCapture", [b] { b->end_capture(true); });
}

// ---------------------------------------------------------------- Graph

Napi::Function GraphWrap::Define(Napi::Env env) {
  return DefineClass(env, "Graph",
                     {InstanceMethod<&GraphWrap::Replay>("replay"), InstanceMethod<&GraphWrap::Dispose>("dispose"),
                      InstanceAccessor<&GraphWrap::GetDisposed>("disposed")});
}

GraphWrap::GraphWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GraphWrap>(info) {}

GraphWrap::~GraphWrap() { release(); }

Napi::Object GraphWrap::Create(Napi::Env env, std::shared_ptr<DeviceState> device, std::shared_ptr<GraphSlot> slot,
                               CaptureRecorder& recorder) {
  Napi::Object obj = env.GetInstanceData<AddonData>()->graph_ctor.New({});
  GraphWrap* g = Napi::ObjectWrap<GraphWrap>::Unwrap(obj);
  g->device_ = std::move(device);
  g->slot_ = std::move(slot);
  for (const CaptureRecorder::Input& in : recorder.inputs) g->lengths_.push_back(in.length);
  g->checks_ = std::move(recorder.checks);
  g->tensors_ = std::move(recorder.tensors);
  return obj;
}

// replay(inputs: Int32Array[]): same count and lengths as at capture. Every check the captured ops
// made on their host metadata runs again on the new values before anything is queued.
void GraphWrap::Replay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!slot_) throw_op_error(env, "replay", "the graph was disposed");
  if (device_->disposed) throw_op_error(env, "replay", "the device was disposed");
  device_->refuse_while_capturing(env, "replay");
  OpCheck c(env, "replay", device_.get());
  if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() != lengths_.size())
    c.fail("inputs must be an array of " + std::to_string(lengths_.size()) + " Int32Array, as captured");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<size_t> starts;
  auto values = std::make_shared<std::vector<int32_t>>();
  for (uint32_t i = 0; i < lengths_.size(); ++i) {
    Napi::Value v = list.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
        v.As<Napi::Int32Array>().ElementLength() != lengths_[i])
      c.fail("inputs[" + std::to_string(i) + "] must be an Int32Array of " + std::to_string(lengths_[i]) +
             " elements, as captured");
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    starts.push_back(values->size());
    values->insert(values->end(), a.Data(), a.Data() + a.ElementLength());
  }
  for (const RecordedCheck& rc : checks_) {
    std::vector<const int32_t*> arrays;
    for (const CheckedArray& a : rc.arrays)
      arrays.push_back(a.input >= 0 ? values->data() + starts[static_cast<size_t>(a.input)] + a.offset
                                    : a.constant.data());
    try {
      rc.check(OpCheck(env, rc.op, device_.get()), arrays);
    } catch (const Napi::Error& e) {
      throw_op_error(env, "replay", e.Message());
    }
  }
  Backend* b = device_->backend.get();
  std::shared_ptr<GraphSlot> slot = slot_;
  device_->stream->enqueue("replay", [b, slot, values] {
    if (!slot->graph) throw OpError("replay: the graph's capture failed" + (slot->error.empty() ? "" : ": " + slot->error));
    b->replay(*slot->graph, values->data());
  });
}

void GraphWrap::Dispose(const Napi::CallbackInfo&) { release(); }

Napi::Value GraphWrap::GetDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !slot_); }

// The backend graph goes first, in stream order (queued replays still use it), then the tensors it
// kept alive (their frees are queued after it).
void GraphWrap::release() {
  if (!slot_) return;
  std::shared_ptr<GraphSlot> slot = std::move(slot_);
  if (device_ && !device_->disposed && device_->stream) {
    try {
      device_->stream->enqueue("disposeGraph", [slot] { slot->graph.reset(); });
    } catch (...) {
      // The stream is shutting down: the slot goes with its last reference.
    }
  } else {
    slot->graph.reset();
  }
  slot.reset();
  tensors_.clear();
  checks_.clear();
}

}  // namespace paralon
