// The simulated device's runtime API: memory, streams, events, device facts and the per-host-thread
// last-error state. Every call completes before it returns (see runtime_api.h).
#include "sim/runtime_api.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/allocations.h"
#include "sim/internal.h"
#include "sim/sanitizers.h"

namespace paralon {
namespace sim {

// The work a graph runs, in capture order.
struct GraphState {
  std::vector<std::function<void()>> work;
};
struct GraphExecState {
  std::vector<std::function<void()>> work;
};
struct StreamState {
  std::unique_ptr<GraphState> capture;  // non-null while capturing
  bool invalidated = false;             // a call not allowed during the capture was made
};
struct EventState {
  std::chrono::steady_clock::time_point time;
  bool recorded = false;
};

namespace {

constexpr int kSmCount = 4;

struct DeviceState {
  std::mutex m;
  std::set<void*> pinned;
  std::set<StreamState*> streams;
  std::set<EventState*> events;
  std::unordered_map<const void*, size_t> dynamic_shared_limits;
};
DeviceState& state() {
  static DeviceState* s = new DeviceState();  // leaked: usable from static destructors of callers
  return *s;
}

// The host thread's error state (CUDA keeps the last error per host thread).
struct ErrorState {
  cudaError_t pending = cudaSuccess;
  bool pending_asynchronous = false;
  cudaError_t message_code = cudaSuccess;
  std::string message;
};
thread_local ErrorState error_state;

cudaError_t take_error(bool synchronising) {
  ErrorState& e = error_state;
  if (e.pending == cudaSuccess || (synchronising && !e.pending_asynchronous)) return cudaSuccess;
  cudaError_t r = e.pending;
  e.pending = cudaSuccess;
  return r;
}

cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return cudaErrorInvalidValue;
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return cudaErrorInvalidMemcpyDirection;
  if ((dst_device && !inside_device_allocation(dst, bytes)) || (src_device && !inside_device_allocation(src, bytes))) {
    record_error(cudaErrorInvalidValue, "cudaMemcpy: a device-side range is not inside one cudaMalloc allocation", false);
    return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

// A checked copy; the device bytes written count as initialised for initcheck.
void copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return;
  std::memmove(dst, src, bytes);
  if (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice || kind == cudaMemcpyDefault) {
    mark_device_written(dst, bytes);
  }
}

}  // namespace

void record_error(cudaError_t code, std::string message, bool asynchronous) {
  ErrorState& e = error_state;
  e.pending = code;
  e.pending_asynchronous = asynchronous;
  e.message_code = code;
  e.message = std::move(message);
}

size_t dynamic_shared_limit(const void* kernel) {
  DeviceState& s = state();
  std::lock_guard<std::mutex> lock(s.m);
  auto it = s.dynamic_shared_limits.find(kernel);
  return it == s.dynamic_shared_limits.end() ? kDefaultDynamicShared : it->second;
}

bool capture_work(cudaStream_t stream, std::function<void()> work) {
  if (stream == nullptr || !stream->capture) return false;
  stream->capture->work.push_back(std::move(work));
  return true;
}

namespace {
// Synchronising with a capturing stream is an error that also invalidates the capture.
cudaError_t refuse_while_capturing(cudaStream_t stream) {
  if (stream == nullptr || !stream->capture) return cudaSuccess;
  stream->invalidated = true;
  record_error(cudaErrorStreamCaptureUnsupported, "operation not permitted when stream is capturing", false);
  return cudaErrorStreamCaptureUnsupported;
}
}  // namespace

bool is_valid_stream(cudaStream_t stream) {
  if (stream == nullptr) return true;
  DeviceState& s = state();
  std::lock_guard<std::mutex> lock(s.m);
  return s.streams.count(stream) != 0;
}

namespace cuda_names {

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define PARALON_SIM_NAME(e) case e: return #e;
    PARALON_SIM_NAME(cudaSuccess)
    PARALON_SIM_NAME(cudaErrorInvalidValue)
    PARALON_SIM_NAME(cudaErrorMemoryAllocation)
    PARALON_SIM_NAME(cudaErrorInitializationError)
    PARALON_SIM_NAME(cudaErrorInvalidConfiguration)
    PARALON_SIM_NAME(cudaErrorInvalidDevicePointer)
    PARALON_SIM_NAME(cudaErrorInvalidMemcpyDirection)
    PARALON_SIM_NAME(cudaErrorInsufficientDriver)
    PARALON_SIM_NAME(cudaErrorInvalidDeviceFunction)
    PARALON_SIM_NAME(cudaErrorNoDevice)
    PARALON_SIM_NAME(cudaErrorInvalidDevice)
    PARALON_SIM_NAME(cudaErrorInvalidResourceHandle)
    PARALON_SIM_NAME(cudaErrorNotReady)
    PARALON_SIM_NAME(cudaErrorIllegalAddress)
    PARALON_SIM_NAME(cudaErrorLaunchOutOfResources)
    PARALON_SIM_NAME(cudaErrorLaunchTimeout)
    PARALON_SIM_NAME(cudaErrorAssert)
    PARALON_SIM_NAME(cudaErrorIllegalInstruction)
    PARALON_SIM_NAME(cudaErrorMisalignedAddress)
    PARALON_SIM_NAME(cudaErrorLaunchFailure)
    PARALON_SIM_NAME(cudaErrorNotSupported)
    PARALON_SIM_NAME(cudaErrorIllegalState)
    PARALON_SIM_NAME(cudaErrorStreamCaptureUnsupported)
    PARALON_SIM_NAME(cudaErrorStreamCaptureInvalidated)
    PARALON_SIM_NAME(cudaErrorUnknown)
#undef PARALON_SIM_NAME
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  // The detailed message of this thread's latest error of that code, else CUDA's generic text.
  if (error != cudaSuccess && error == error_state.message_code) return error_state.message.c_str();
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchTimeout: return "the launch timed out and was terminated";
    case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    default: return "unrecognized error code";
  }
}

cudaError_t cudaGetLastError() { return take_error(false); }
cudaError_t cudaPeekAtLastError() { return error_state.pending; }

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  std::memset(p, 0, sizeof *p);
  std::strcpy(p->name, "cuda-sim");
  p->totalGlobalMem = kDeviceMemoryBytes;
  p->sharedMemPerBlock = kDefaultDynamicShared;
  p->sharedMemPerBlockOptin = kMaxDynamicShared;
  p->sharedMemPerMultiprocessor = 164 * 1024;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->maxThreadsPerMultiProcessor = 2048;
  p->totalConstMem = 64 * 1024;
  p->major = 8;
  p->minor = 0;
  p->multiProcessorCount = kSmCount;
  p->clockRate = 1410000;
  p->memoryClockRate = 1215000;
  p->memoryBusWidth = 5120;
  p->l2CacheSize = 40 << 20;
  p->concurrentKernels = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  cudaDeviceProp p;
  if (cudaError_t e = cudaGetDeviceProperties(&p, device)) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *value = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *value = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *value = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *value = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(p.sharedMemPerBlock); break;
    case cudaDevAttrTotalConstantMemory: *value = int(p.totalConstMem); break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMaxRegistersPerBlock: *value = p.regsPerBlock; break;
    case cudaDevAttrClockRate: *value = p.clockRate; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrConcurrentKernels: *value = p.concurrentKernels; break;
    case cudaDevAttrMemoryClockRate: *value = p.memoryClockRate; break;
    case cudaDevAttrGlobalMemoryBusWidth: *value = p.memoryBusWidth; break;
    case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = p.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = int(p.sharedMemPerMultiprocessor); break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(p.sharedMemPerBlockOptin); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return take_error(true); }

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *total_bytes = kDeviceMemoryBytes;
  *free_bytes = kDeviceMemoryBytes - device_bytes_allocated();
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  DeviceState& s = state();
  std::lock_guard<std::mutex> lock(s.m);
  *stream = new StreamState();
  s.streams.insert(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  DeviceState& s = state();
  std::lock_guard<std::mutex> lock(s.m);
  if (s.streams.erase(stream) == 0) return cudaErrorInvalidResourceHandle;
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (!is_valid_stream(stream)) return cudaErrorInvalidResourceHandle;
  if (cudaError_t e = refuse_while_capturing(stream)) return e;
  return take_error(true);
}
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  return is_valid_stream(stream) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  if (!is_valid_stream(stream) || event == nullptr) return cudaErrorInvalidResourceHandle;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  set_init_tracking(sanitizer_config().initcheck);  // allocations made with initcheck off are not tracked
  std::string error;
  *ptr = allocate_device(bytes, &error);
  if (*ptr == nullptr) {
    record_error(cudaErrorMemoryAllocation, error, false);
    return cudaErrorMemoryAllocation;
  }
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  return free_device(ptr) ? cudaSuccess : cudaErrorInvalidDevicePointer;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  *ptr = std::aligned_alloc(256, (bytes + 255) & ~size_t(255));
  if (*ptr == nullptr) return cudaErrorMemoryAllocation;
  DeviceState& s = state();
  std::lock_guard<std::mutex> lock(s.m);
  s.pinned.insert(*ptr);
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  DeviceState& s = state();
  {
    std::lock_guard<std::mutex> lock(s.m);
    if (s.pinned.erase(ptr) == 0) return cudaErrorInvalidValue;
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = check_copy(dst, src, bytes, kind)) return e;
  copy(dst, src, bytes, kind);
  return take_error(true);  // synchronous: returns earlier kernel faults like hardware
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (!is_valid_stream(stream)) return cudaErrorInvalidResourceHandle;
  if (cudaError_t e = check_copy(dst, src, bytes, kind)) return e;
  if (bytes == 0) return cudaSuccess;
  if (capture_work(stream, [dst, src, bytes, kind] { copy(dst, src, bytes, kind); })) return cudaSuccess;
  copy(dst, src, bytes, kind);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (cudaError_t e = cudaMemsetAsync(ptr, value, bytes, nullptr)) return e;
  return take_error(true);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (!is_valid_stream(stream)) return cudaErrorInvalidResourceHandle;
  if (bytes == 0) return cudaSuccess;
  if (!inside_device_allocation(ptr, bytes)) {
    record_error(cudaErrorInvalidValue, "cudaMemset: range is not inside one cudaMalloc allocation", false);
    return cudaErrorInvalidValue;
  }
  auto work = [ptr, value, bytes] {
    std::memset(ptr, value, bytes);
    mark_device_written(ptr, bytes);
  };
  if (capture_work(stream, work)) return cudaSuccess;
  work();
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (stream == nullptr) return cudaErrorStreamCaptureUnsupported;  // the legacy stream cannot capture
  if (!is_valid_stream(stream)) return cudaErrorInvalidResourceHandle;
  if (mode < cudaStreamCaptureModeGlobal || mode > cudaStreamCaptureModeRelaxed) return cudaErrorInvalidValue;
  if (stream->capture) return cudaErrorIllegalState;
  stream->capture = std::make_unique<GraphState>();
  stream->invalidated = false;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  *graph = nullptr;
  if (!is_valid_stream(stream) || stream == nullptr) return cudaErrorInvalidResourceHandle;
  if (!stream->capture) return cudaErrorIllegalState;
  std::unique_ptr<GraphState> g = std::move(stream->capture);
  if (stream->invalidated) return cudaErrorStreamCaptureInvalidated;
  *graph = g.release();
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (!is_valid_stream(stream)) return cudaErrorInvalidResourceHandle;
  *status = stream == nullptr || !stream->capture ? cudaStreamCaptureStatusNone
            : stream->invalidated                  ? cudaStreamCaptureStatusInvalidated
                                                   : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (graph == nullptr) return cudaErrorInvalidResourceHandle;
  *exec = new GraphExecState{graph->work};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr || !is_valid_stream(stream)) return cudaErrorInvalidResourceHandle;
  if (stream != nullptr && stream->capture) return refuse_while_capturing(stream);  // no child graphs here
  for (const std::function<void()>& work : exec->work) work();
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  DeviceState& s = state();
  std::lock_guard<std::mutex> lock(s.m);
  *event = new EventState();
  s.events.insert(*event);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!is_valid_stream(stream)) return cudaErrorInvalidResourceHandle;
  if (stream != nullptr && stream->capture) {  // event nodes are not simulated
    stream->invalidated = true;
    return cudaErrorNotSupported;
  }
  DeviceState& s = state();
  std::lock_guard<std::mutex> lock(s.m);
  if (s.events.count(event) == 0) return cudaErrorInvalidResourceHandle;
  event->time = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (event == nullptr) return cudaErrorInvalidResourceHandle;
  return take_error(true);
}
cudaError_t cudaEventQuery(cudaEvent_t event) { return event == nullptr ? cudaErrorInvalidResourceHandle : cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (start == nullptr || end == nullptr) return cudaErrorInvalidResourceHandle;
  if (!start->recorded || !end->recorded) return cudaErrorNotReady;
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  DeviceState& s = state();
  std::lock_guard<std::mutex> lock(s.m);
  if (s.events.erase(event) == 0) return cudaErrorInvalidResourceHandle;
  delete event;
  return cudaSuccess;
}

cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (kernel == nullptr) return cudaErrorInvalidDeviceFunction;
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) {
    return value >= -1 && value <= 100 ? cudaSuccess : cudaErrorInvalidValue;
  }
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || size_t(value) > kMaxDynamicShared) {
    return cudaErrorInvalidValue;
  }
  DeviceState& s = state();
  std::lock_guard<std::mutex> lock(s.m);
  s.dynamic_shared_limits[kernel] = size_t(value);
  return cudaSuccess;
}

}  // namespace cuda_names
}  // namespace sim
}  // namespace paralon
