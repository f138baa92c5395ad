// The addon's objects: a device (backend + stream), allocations freed in stream order, memory-mapped
// files, and tensors (a typed, shaped view of an allocation).
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "ops.h"
#include "stream.h"

namespace paralon {

struct CaptureRecorder;  // graph.h
class OpCheck;          // op_check.h

struct DeviceState {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Stream> stream;
  bool disposed = false;
  std::shared_ptr<CaptureRecorder> capture;  // set between beginCapture and endCapture (JS thread)
  ~DeviceState();
  // Throws "<op>: not allowed while a graph is being captured" during a capture.
  void refuse_while_capturing(Napi::Env env, const char* op) const;
};

// A read-only memory mapping of a whole file (safetensors shards).
struct Mapping {
  std::string path;
  void* base = nullptr;
  size_t size = 0;
  ~Mapping();
};

// Device memory, or (on a host-memory backend) a range of a mapping used in place. Freed by a task
// queued on the stream when the last tensor viewing it is gone, so queued ops never see freed memory.
struct Allocation {
  std::shared_ptr<DeviceState> device;
  void* ptr = nullptr;
  size_t bytes = 0;
  std::shared_ptr<Mapping> mapping;  // set when ptr points into a mapping (not owned)
  ~Allocation();
};

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, std::shared_ptr<Allocation> alloc, size_t byte_offset, DType dtype,
                             std::vector<int64_t> shape);
  static TensorWrap* FromArg(const Napi::Value& v, const char* op, const char* what);
  explicit TensorWrap(const Napi::CallbackInfo& info);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const;
  size_t bytes() const { return dtype_bytes(dtype_, numel()); }
  void* data() const;  // throws when disposed
  DeviceState* device() const;
  const std::shared_ptr<DeviceState>& device_ref() const;
  std::string describe() const;  // "bf16[1024, 3072]"
  bool read_only() const { return alloc_ && alloc_->mapping != nullptr; }
  const Allocation* allocation() const { return alloc_.get(); }
  const std::shared_ptr<Allocation>& allocation_ref() const { return alloc_; }
  size_t byte_offset() const { return byte_offset_; }

 private:
  Napi::Value Read(const Napi::CallbackInfo& info);
  void Write(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  void Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);

  std::shared_ptr<Allocation> alloc_;
  size_t byte_offset_ = 0;
  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_;
};

class DeviceWrap : public Napi::ObjectWrap<DeviceWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit DeviceWrap(const Napi::CallbackInfo& info);
  const std::shared_ptr<DeviceState>& state() const { return state_; }
  DeviceState* live(const char* op) const;  // throws when disposed

 private:
  Napi::Value Alloc(const Napi::CallbackInfo& info);
  Napi::Value Synchronize(const Napi::CallbackInfo& info);
  void Dispose(const Napi::CallbackInfo& info);
  Napi::Value SelfTest(const Napi::CallbackInfo& info);
  // ops (native/addon/op_bindings.cc)
  void Copy(const Napi::CallbackInfo& info);
  void Embedding(const Napi::CallbackInfo& info);
  void Matmul(const Napi::CallbackInfo& info);
  void MatmulSwiglu(OpCheck& c, TensorWrap* x, TensorWrap* r, const std::vector<TensorWrap*>& ws,
                    const std::vector<TensorWrap*>& outs, bool out_list);
  void RmsNorm(const Napi::CallbackInfo& info);
  void QkNormRope(const Napi::CallbackInfo& info);
  void Swiglu(const Napi::CallbackInfo& info);
  void MoeRoute(const Napi::CallbackInfo& info);
  void MoeMatmul(const Napi::CallbackInfo& info);
  void MoeCombine(const Napi::CallbackInfo& info);
  void KvWrite(const Napi::CallbackInfo& info);
  void Attention(const Napi::CallbackInfo& info);
  Napi::Value Sample(const Napi::CallbackInfo& info);
  // graphs (native/addon/graph.cc)
  Napi::Value SupportsGraphs(const Napi::CallbackInfo& info);
  Napi::Value Supports(const Napi::CallbackInfo& info);
  void BeginCapture(const Napi::CallbackInfo& info);
  void StageStep(const Napi::CallbackInfo& info);
  Napi::Value MetadataUploads(const Napi::CallbackInfo& info);
  Napi::Value EndCapture(const Napi::CallbackInfo& info);
  void AbortCapture(const Napi::CallbackInfo& info);

  std::shared_ptr<DeviceState> state_;
};

class MappedFileWrap : public Napi::ObjectWrap<MappedFileWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit MappedFileWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Bytes(const Napi::CallbackInfo& info);
  Napi::Value ToTensor(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  std::shared_ptr<Mapping> mapping_;
};

// Argument helpers shared by the bindings.
[[noreturn]] void throw_op_error(Napi::Env env, const std::string& op, const std::string& message);
DType parse_dtype(Napi::Env env, const Napi::Value& v, const char* op);
std::vector<int64_t> parse_shape(Napi::Env env, const Napi::Value& v, const char* op);

}  // namespace paralon
