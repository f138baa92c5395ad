#include "device.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "addon_data.h"
#include "graph.h"

namespace paralon {

// ---------------------------------------------------------------- helpers

void throw_op_error(Napi::Env env, const std::string& op, const std::string& message) {
  throw Napi::Error::New(env, op + ": " + message);
}

DType parse_dtype(Napi::Env env, const Napi::Value& v, const char* op) {
  if (v.IsString()) {
    std::string s = v.As<Napi::String>();
    if (s == "f32") return DType::F32;
    if (s == "bf16") return DType::BF16;
    if (s == "f16") return DType::F16;
    if (s == "i32") return DType::I32;
    if (s == "q8_0") return DType::Q8_0;
    if (s == "q4_k") return DType::Q4_K;
    if (s == "q5_k") return DType::Q5_K;
    if (s == "q6_k") return DType::Q6_K;
    if (s == "fp8") return DType::FP8_E4M3;
    throw_op_error(env, op, "unknown dtype '" + s + "' (expected f32, bf16, f16, i32, q8_0, q4_k, q5_k, q6_k or fp8)");
  }
  throw_op_error(env, op, "dtype must be a string");
}

std::vector<int64_t> parse_shape(Napi::Env env, const Napi::Value& v, const char* op) {
  if (!v.IsArray()) throw_op_error(env, op, "shape must be an array of non-negative integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 8) throw_op_error(env, op, "shape has more than 8 dimensions");
  std::vector<int64_t> shape;
  double total = 1;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0) || x != static_cast<double>(static_cast<int64_t>(x)) || x > 4e12)
      throw_op_error(env, op, "shape must be an array of non-negative integers");
    shape.push_back(static_cast<int64_t>(x));
    total *= x;
  }
  if (total > 1e13) throw_op_error(env, op, "shape is too large");
  return shape;
}

static std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

// Bytes of a dtype[shape] tensor; a quantized dtype needs whole blocks along the last dimension.
static size_t tensor_bytes(Napi::Env env, const char* op, DType dt, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const int64_t block = dtype_block_elements(dt);
  if (block > 1 && (shape.empty() || shape.back() % block != 0))
    throw_op_error(env, op, std::string(dtype_name(dt)) + shape_string(shape) + ": the last dimension must be a multiple of the " +
                                std::to_string(block) + "-value block");
  return dtype_bytes(dt, n);
}

// ---------------------------------------------------------------- state, mapping, allocation

DeviceState::~DeviceState() {
  stream.reset();  // drains queued work before the backend goes away
  backend.reset();
}

Mapping::~Mapping() {
  if (base != nullptr && base != MAP_FAILED) munmap(base, size);
}

Allocation::~Allocation() {
  if (!device) return;
  if (device->disposed || !device->stream) {
    if (!mapping && ptr) device->backend->free(ptr);
    return;
  }
  Backend* backend = device->backend.get();
  void* p = ptr;
  std::shared_ptr<Mapping> m = std::move(mapping);
  try {
    device->stream->enqueue("free", [backend, p, m]() mutable {
      if (!m && p) backend->free(p);
      m.reset();
    });
  } catch (...) {
    // Destructors must not throw; the stream only refuses work while shutting down, and the
    // remaining memory is released with the backend.
  }
}

// ---------------------------------------------------------------- Tensor

Napi::Function TensorWrap::Define(Napi::Env env) {
  return DefineClass(env, "Tensor",
                     {InstanceMethod<&TensorWrap::Read>("read"), InstanceMethod<&TensorWrap::Write>("write"),
                      InstanceMethod<&TensorWrap::View>("view"), InstanceMethod<&TensorWrap::Dispose>("dispose"),
                      InstanceAccessor<&TensorWrap::GetDisposed>("disposed")});
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {}

Napi::Object TensorWrap::Create(Napi::Env env, std::shared_ptr<Allocation> alloc, size_t byte_offset, DType dtype,
                                std::vector<int64_t> shape) {
  Napi::Object obj = env.GetInstanceData<AddonData>()->tensor_ctor.New({});
  TensorWrap* t = Napi::ObjectWrap<TensorWrap>::Unwrap(obj);
  t->alloc_ = std::move(alloc);
  t->byte_offset_ = byte_offset;
  t->dtype_ = dtype;
  t->shape_ = std::move(shape);
  return obj;
}

TensorWrap* TensorWrap::FromArg(const Napi::Value& v, const char* op, const char* what) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(env.GetInstanceData<AddonData>()->tensor_ctor.Value()))
    throw_op_error(env, op, std::string(what) + " must be a Tensor");
  TensorWrap* t = Napi::ObjectWrap<TensorWrap>::Unwrap(v.As<Napi::Object>());
  if (!t->alloc_) throw_op_error(env, op, std::string(what) + " was disposed");
  return t;
}

int64_t TensorWrap::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

void* TensorWrap::data() const { return static_cast<char*>(alloc_->ptr) + byte_offset_; }
DeviceState* TensorWrap::device() const { return alloc_->device.get(); }
const std::shared_ptr<DeviceState>& TensorWrap::device_ref() const { return alloc_->device; }

std::string TensorWrap::describe() const { return std::string(dtype_name(dtype_)) + shape_string(shape_); }

Napi::Value TensorWrap::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!alloc_) throw_op_error(env, "read", "the tensor was disposed");
  std::shared_ptr<DeviceState> dev = alloc_->device;
  if (dev->disposed) throw_op_error(env, "read", "the device was disposed");
  dev->refuse_while_capturing(env, "read");
  auto deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
  auto host = std::make_shared<std::vector<uint8_t>>(bytes());
  Backend* backend = dev->backend.get();
  const void* src = data();
  size_t n = bytes();
  // `keep` holds the allocation until the copy has run, even if the tensor is disposed meanwhile.
  std::shared_ptr<Allocation> keep = alloc_;
  dev->stream->enqueue(
      "read", [backend, host, src, n] { backend->copy_to_host(host->data(), src, n); },
      [deferred, host, keep](Napi::Env env, const std::string& error) {
        if (!error.empty()) {
          deferred->Reject(Napi::Error::New(env, error).Value());
          return;
        }
        Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, host->size());
        if (!host->empty()) std::memcpy(ab.Data(), host->data(), host->size());
        deferred->Resolve(ab);
      });
  return deferred->Promise();
}

// write(data: ArrayBufferView | ArrayBuffer): data must have exactly the tensor's byte size.
void TensorWrap::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!alloc_) throw_op_error(env, "write", "the tensor was disposed");
  const uint8_t* src = nullptr;
  size_t len = 0;
  if (info.Length() >= 1 && info[0].IsTypedArray()) {
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    len = ta.ByteLength();
  } else if (info.Length() >= 1 && info[0].IsDataView()) {
    Napi::DataView dv = info[0].As<Napi::DataView>();
    src = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    len = dv.ByteLength();
  } else if (info.Length() >= 1 && info[0].IsArrayBuffer()) {
    Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
    src = static_cast<const uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else {
    throw_op_error(env, "write", "data must be a TypedArray, DataView or ArrayBuffer");
  }
  if (alloc_->mapping)
    throw_op_error(env, "write", "the tensor is a read-only mapping of " + alloc_->mapping->path);
  if (len != bytes())
    throw_op_error(env, "write", "data has " + std::to_string(len) + " bytes but the tensor " + describe() +
                                     " has " + std::to_string(bytes()));
  DeviceState* dev = alloc_->device.get();
  if (dev->disposed) throw_op_error(env, "write", "the device was disposed");
  dev->refuse_while_capturing(env, "write");
  // Copied now, so the caller may reuse its array as soon as write() returns.
  auto staged = std::make_shared<std::vector<uint8_t>>(src, src + len);
  Backend* backend = dev->backend.get();
  void* dst = data();
  dev->stream->enqueue("write", [backend, staged, dst] { backend->copy_from_host(dst, staged->data(), staged->size()); });
}

// view(shape, dtype?, byteOffset?): another typed, shaped window on the same memory.
Napi::Value TensorWrap::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!alloc_) throw_op_error(env, "view", "the tensor was disposed");
  std::vector<int64_t> shape = parse_shape(env, info[0], "view");
  DType dt = info.Length() >= 2 && !info[1].IsUndefined() ? parse_dtype(env, info[1], "view") : dtype_;
  double off = info.Length() >= 3 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 0;
  if (!(off >= 0) || off != static_cast<double>(static_cast<size_t>(off)))
    throw_op_error(env, "view", "byteOffset must be a non-negative integer");
  size_t offset = static_cast<size_t>(off);
  size_t need = offset + tensor_bytes(env, "view", dt, shape);
  if (need > bytes())
    throw_op_error(env, "view", std::string(dtype_name(dt)) + shape_string(shape) + " at byte offset " +
                                    std::to_string(offset) + " does not fit in " + describe());
  if (offset % dtype_block_bytes(dt) != 0)
    throw_op_error(env, "view", dtype_quantized(dt) ? "byteOffset must be a multiple of the block size"
                                                     : "byteOffset must be a multiple of the element size");
  return Create(env, alloc_, byte_offset_ + offset, dt, shape);
}

void TensorWrap::Dispose(const Napi::CallbackInfo&) { alloc_.reset(); }

Napi::Value TensorWrap::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !alloc_);
}

// ---------------------------------------------------------------- Device

Napi::Function DeviceWrap::Define(Napi::Env env) {
  return DefineClass(env, "Device",
                     {InstanceMethod<&DeviceWrap::Alloc>("alloc"),
                      InstanceMethod<&DeviceWrap::Synchronize>("synchronize"),
                      InstanceMethod<&DeviceWrap::Dispose>("dispose"),
                      InstanceMethod<&DeviceWrap::SelfTest>("selfTest"),
                      InstanceMethod<&DeviceWrap::Copy>("copy"),
                      InstanceMethod<&DeviceWrap::Embedding>("embedding"),
                      InstanceMethod<&DeviceWrap::Matmul>("matmul"),
                      InstanceMethod<&DeviceWrap::RmsNorm>("rmsnorm"),
                      InstanceMethod<&DeviceWrap::QkNormRope>("qkNormRope"),
                      InstanceMethod<&DeviceWrap::Swiglu>("swiglu"),
                      InstanceMethod<&DeviceWrap::KvWrite>("kvWrite"),
                      InstanceMethod<&DeviceWrap::Attention>("attention"),
                      InstanceMethod<&DeviceWrap::Sample>("sample"),
                      InstanceMethod<&DeviceWrap::MoeRoute>("moeRoute"),
                      InstanceMethod<&DeviceWrap::MoeMatmul>("moeMatmul"),
                      InstanceMethod<&DeviceWrap::MoeCombine>("moeCombine"),
                      InstanceMethod<&DeviceWrap::SupportsGraphs>("supportsGraphs"),
                      InstanceMethod<&DeviceWrap::Supports>("supports"),
                      InstanceMethod<&DeviceWrap::BeginCapture>("beginCapture"),
                      InstanceMethod<&DeviceWrap::StageStep>("stageStep"),
                      InstanceMethod<&DeviceWrap::MetadataUploads>("metadataUploads"),
                      InstanceMethod<&DeviceWrap::EndCapture>("endCapture"),
                      InstanceMethod<&DeviceWrap::AbortCapture>("abortCapture")});
}

// new Device(name, threads, precision): "cpu", "cuda", "cuda:N", "cuda-sim"; precision "exact" or
// "fast" (CPU only: bf16 dot products where the CPU has them; `precision` reports what took effect).
DeviceWrap::DeviceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw_op_error(env, "Device", "name must be a string");
  std::string name = info[0].As<Napi::String>();
  int threads = info.Length() >= 2 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  std::string precision = info.Length() >= 3 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "exact";
  if (precision != "exact" && precision != "fast")
    throw_op_error(env, "Device", "precision must be 'exact' or 'fast', got '" + precision + "'");
  auto state = std::make_shared<DeviceState>();
  try {
    if (name == "cpu") {
      state->backend = make_cpu_backend(threads, precision == "fast");
    } else if (name == "cuda-sim") {
      state->backend = make_cuda_sim_backend();
    } else if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
      int index = 0;
      if (name != "cuda") {
        std::string digits = name.substr(5);
        if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos)
          throw_op_error(env, "Device", "bad device name '" + name + "' (expected cpu, cuda:N or cuda-sim)");
        index = std::stoi(digits);
      }
      state->backend = make_cuda_backend(index);
    } else {
      throw_op_error(env, "Device", "unknown device '" + name + "' (expected cpu, cuda:N or cuda-sim)");
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw_op_error(env, "Device", std::string(name) + ": " + e.what());
  }
  state->stream = std::make_unique<Stream>(env);
  state_ = std::move(state);
  Napi::Object self = info.This().As<Napi::Object>();
  self.Set("name", Napi::String::New(env, state_->backend->name()));
  self.Set("description", Napi::String::New(env, state_->backend->description()));
  self.Set("hostMemory", Napi::Boolean::New(env, state_->backend->host_memory()));
  const bool fast = name == "cpu" && precision == "fast" && cpu_fast_precision_available();
  self.Set("precision", Napi::String::New(env, fast ? "fast" : "exact"));
}

DeviceState* DeviceWrap::live(const char* op) const {
  if (!state_ || state_->disposed) throw_op_error(Env(), op, "the device was disposed");
  return state_.get();
}

Napi::Value DeviceWrap::Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceState* dev = live("alloc");
  DType dt = parse_dtype(env, info[0], "alloc");
  std::vector<int64_t> shape = parse_shape(env, info[1], "alloc");
  size_t bytes = tensor_bytes(env, "alloc", dt, shape);
  auto alloc = std::make_shared<Allocation>();
  try {
    alloc->ptr = dev->backend->alloc(bytes == 0 ? 1 : bytes);
  } catch (const std::exception& e) {
    throw_op_error(env, "alloc", std::string(dtype_name(dt)) + shape_string(shape) + ": " + e.what());
  }
  alloc->bytes = bytes;
  alloc->device = state_;
  return TensorWrap::Create(env, std::move(alloc), 0, dt, std::move(shape));
}

Napi::Value DeviceWrap::Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceState* dev = live("synchronize");
  dev->refuse_while_capturing(env, "synchronize");
  auto deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
  Backend* backend = dev->backend.get();
  std::shared_ptr<DeviceState> keep = state_;
  dev->stream->enqueue(
      "synchronize", [backend] { backend->synchronize(); },
      [deferred, keep](Napi::Env env, const std::string& error) {
        if (error.empty()) {
          deferred->Resolve(env.Undefined());
        } else {
          deferred->Reject(Napi::Error::New(env, error).Value());
        }
      });
  return deferred->Promise();
}

// Drains the stream and stops the worker; memory is released as tensors go away.
void DeviceWrap::Dispose(const Napi::CallbackInfo&) {
  if (!state_ || state_->disposed) return;
  state_->capture.reset();
  state_->stream->shutdown();
  state_->stream->close_js_handle();
  state_->disposed = true;
}

// ---------------------------------------------------------------- MappedFile

Napi::Function MappedFileWrap::Define(Napi::Env env) {
  return DefineClass(env, "MappedFile",
                     {InstanceMethod<&MappedFileWrap::Bytes>("bytes"),
                      InstanceMethod<&MappedFileWrap::ToTensor>("tensor"),
                      InstanceMethod<&MappedFileWrap::Close>("close")});
}

MappedFileWrap::MappedFileWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MappedFileWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw_op_error(env, "mapFile", "path must be a string");
  auto m = std::make_shared<Mapping>();
  m->path = info[0].As<Napi::String>();
  int fd = open(m->path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_op_error(env, "mapFile", "cannot open " + m->path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throw_op_error(env, "mapFile", m->path + " is not a regular file");
  }
  m->size = static_cast<size_t>(st.st_size);
  if (m->size > 0) {
    m->base = mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->base == MAP_FAILED) {
      int err = errno;
      m->base = nullptr;
      close(fd);
      throw_op_error(env, "mapFile", "cannot map " + m->path + ": " + std::strerror(err));
    }
  }
  close(fd);
  mapping_ = std::move(m);
  info.This().As<Napi::Object>().Set("path", Napi::String::New(env, mapping_->path));
  info.This().As<Napi::Object>().Set("size", Napi::Number::New(env, static_cast<double>(mapping_->size)));
}

// bytes(offset, length) → Uint8Array copy (for reading headers).
Napi::Value MappedFileWrap::Bytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!mapping_) throw_op_error(env, "mapFile", "the file was closed");
  double off = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  double len = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
  if (!(off >= 0) || !(len >= 0) || off + len > static_cast<double>(mapping_->size))
    throw_op_error(env, "mapFile", mapping_->path + ": byte range outside the file (size " +
                                       std::to_string(mapping_->size) + ")");
  Napi::Uint8Array out = Napi::Uint8Array::New(env, static_cast<size_t>(len));
  if (len > 0) std::memcpy(out.Data(), static_cast<const char*>(mapping_->base) + static_cast<size_t>(off), out.ByteLength());
  return out;
}

// tensor(device, byteOffset, dtype, shape): in place on host-memory devices, else copied in stream order.
Napi::Value MappedFileWrap::ToTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!mapping_) throw_op_error(env, "mapFile", "the file was closed");
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(env.GetInstanceData<AddonData>()->device_ctor.Value()))
    throw_op_error(env, "mapFile", "device must be a Device");
  DeviceWrap* dw = Napi::ObjectWrap<DeviceWrap>::Unwrap(info[0].As<Napi::Object>());
  DeviceState* dev = dw->live("mapFile");
  double off = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
  DType dt = parse_dtype(env, info[2], "mapFile");
  std::vector<int64_t> shape = parse_shape(env, info[3], "mapFile");
  size_t bytes = tensor_bytes(env, "mapFile", dt, shape);
  if (!(off >= 0) || off + static_cast<double>(bytes) > static_cast<double>(mapping_->size))
    throw_op_error(env, "mapFile", mapping_->path + ": " + dtype_name(dt) + shape_string(shape) + " at byte " +
                                       std::to_string(static_cast<size_t>(off < 0 ? 0 : off)) +
                                       " runs past the end of the file (size " + std::to_string(mapping_->size) +
                                       "): truncated?");
  const char* src = static_cast<const char*>(mapping_->base) + static_cast<size_t>(off);
  auto alloc = std::make_shared<Allocation>();
  alloc->device = dw->state();
  alloc->bytes = bytes;
  if (dev->backend->host_memory()) {
    alloc->ptr = const_cast<char*>(src);
    alloc->mapping = mapping_;
  } else {
    try {
      alloc->ptr = dev->backend->alloc(bytes == 0 ? 1 : bytes);
    } catch (const std::exception& e) {
      throw_op_error(env, "mapFile", mapping_->path + ": " + e.what());
    }
    Backend* backend = dev->backend.get();
    std::shared_ptr<Mapping> keep = mapping_;
    void* dst = alloc->ptr;
    dev->stream->enqueue("upload", [backend, keep, dst, src, bytes] { backend->copy_from_host(dst, src, bytes); });
  }
  return TensorWrap::Create(env, std::move(alloc), 0, dt, std::move(shape));
}

// Drops this handle's reference; tensors made from the file keep their part mapped.
void MappedFileWrap::Close(const Napi::CallbackInfo&) { mapping_.reset(); }

}  // namespace paralon
