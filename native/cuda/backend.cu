#include "kernels.h"

// The CUDA backend: device memory, copies, one stream, and the LaunchContext the kernels see.
//
// Threads: alloc runs on the JS thread, everything else on the device's worker thread; each entry
// point selects the device first (cudaSetDevice is per host thread). The runtime's allocator is
// thread-safe, and nothing else is shared with the JS thread.
// Host metadata staging: a ring of pinned host memory mirrored by device memory. stage_*() copies
// the caller's array into the pinned ring, enqueues a host→device copy on the stream and returns
// the device address. Regions are never reused before the stream was synchronised (synchronize(),
// copy_to_host(), sample()), so a copy still in flight is never overwritten; when the ring is full
// a larger one is created and the old one is released at the next synchronisation.
// Scratch: one growable device buffer; a buffer outgrown while queued work may still use it is also
// released at the next synchronisation.
// Uploads (copy_from_host) go through two pinned bounce buffers so the host memcpy of one chunk
// overlaps the DMA of the previous one; the call returns once the source has been consumed.

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

namespace paralon {
namespace PARALON_CUDA_NS {

void check_cuda(cudaError_t err, const char* op, const char* file, int line) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next op does not report it again
  const char* base = std::strrchr(file, '/');
  throw OpError(std::string(op) + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err) + " (" +
                (base ? base + 1 : file) + ":" + std::to_string(line) + ")");
}

namespace {

constexpr size_t kStageAlign = 16;
constexpr size_t kInitialStageBytes = 1 << 20;
constexpr size_t kUploadChunk = 8 << 20;

class CudaBackend final : public Backend, public LaunchContext {
 public:
  CudaBackend(int device, std::string name) : device_(device), name_(std::move(name)) {
    select("cuda");
    cudaDeviceProp prop;
    PARALON_CUDA_CHECK("cuda", cudaGetDeviceProperties(&prop, device_));
    sm_count = prop.multiProcessorCount;
    cc_major = prop.major;
    cc_minor = prop.minor;
    int optin = 0;
    PARALON_CUDA_CHECK("cuda", cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device_));
    max_smem_optin = static_cast<size_t>(optin);
    PARALON_CUDA_CHECK("cuda", cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
#if defined(PARALON_CUDA_SIM)
    description_ = "CUDA simulator on the host CPU";
#else
    char text[256];
    std::snprintf(text, sizeof(text), "%s, %.1f GiB, %d SMs, compute capability %d.%d", prop.name,
                  static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), sm_count, cc_major, cc_minor);
    description_ = text;
#endif
  }

  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream);
    release_retired();
    release(stage_);
    cudaFree(scratch_);
    for (Bounce& b : bounce_) {
      if (b.done) cudaEventDestroy(b.done);
      cudaFreeHost(b.host);
    }
    cudaStreamDestroy(stream);
  }

  std::string name() const override { return name_; }
  std::string description() const override { return description_; }
  bool host_memory() const override { return false; }

  void* alloc(size_t bytes) override {
    select("alloc");
    void* p = nullptr;
    PARALON_CUDA_CHECK("alloc", cudaMalloc(&p, std::max<size_t>(bytes, 1)));
    return p;
  }

  void free(void* ptr) override {
    select("free");
    PARALON_CUDA_CHECK("free", cudaFree(ptr));
  }

  void copy_from_host(void* dst, const void* src, size_t bytes) override {
    select("copy_from_host");
    for (Bounce& b : bounce_) {
      if (!b.host) {
        PARALON_CUDA_CHECK("copy_from_host", cudaMallocHost(&b.host, kUploadChunk));
        PARALON_CUDA_CHECK("copy_from_host", cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming));
      }
    }
    size_t done = 0;
    for (int i = 0; done < bytes; i ^= 1) {
      Bounce& b = bounce_[i];
      const size_t n = std::min(kUploadChunk, bytes - done);
      PARALON_CUDA_CHECK("copy_from_host", cudaEventSynchronize(b.done));  // its previous DMA finished
      std::memcpy(b.host, static_cast<const char*>(src) + done, n);
      PARALON_CUDA_CHECK("copy_from_host", cudaMemcpyAsync(static_cast<char*>(dst) + done, b.host, n,
                                                           cudaMemcpyHostToDevice, stream));
      PARALON_CUDA_CHECK("copy_from_host", cudaEventRecord(b.done, stream));
      done += n;
    }
  }

  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    select("copy_to_host");
    PARALON_CUDA_CHECK("copy_to_host", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
    PARALON_CUDA_CHECK("copy_to_host", cudaStreamSynchronize(stream));
    after_sync();
  }

  void copy(void* dst, const void* src, size_t bytes) override {
    select("copy");
    PARALON_CUDA_CHECK("copy", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
  }

  void synchronize() override {
    select("synchronize");
    PARALON_CUDA_CHECK("synchronize", cudaStreamSynchronize(stream));
    after_sync();
  }

  // ---- LaunchContext ----
  const int32_t* stage_i32(const int32_t* host, size_t n) override {
    return static_cast<const int32_t*>(stage_bytes(host, n * sizeof(int32_t)));
  }

  const void* stage_bytes(const void* host, size_t bytes) override {
    if (bytes == 0) return nullptr;
    size_t at = (stage_.used + kStageAlign - 1) / kStageAlign * kStageAlign;
    if (at + bytes > stage_.capacity) {
      retired_stages_.push_back(stage_);
      stage_ = StageRing{};
      const size_t want = std::max({kInitialStageBytes, 2 * retired_stages_.back().capacity, bytes + kStageAlign});
      void* host_ring = nullptr;
      void* device_ring = nullptr;
      PARALON_CUDA_CHECK("stage", cudaMallocHost(&host_ring, want));
      stage_.host = static_cast<char*>(host_ring);
      PARALON_CUDA_CHECK("stage", cudaMalloc(&device_ring, want));
      stage_.device = static_cast<char*>(device_ring);
      stage_.capacity = want;
      at = 0;
    }
    std::memcpy(stage_.host + at, host, bytes);
    PARALON_CUDA_CHECK("stage", cudaMemcpyAsync(stage_.device + at, stage_.host + at, bytes,
                                                cudaMemcpyHostToDevice, stream));
    stage_.used = at + bytes;
    return stage_.device + at;
  }

  void* scratch(size_t bytes) override {
    if (bytes > scratch_bytes_) {
      const size_t want = std::max(bytes, scratch_bytes_ * 3 / 2);
      if (scratch_) retired_scratch_.push_back(scratch_);
      scratch_ = nullptr;
      scratch_bytes_ = 0;
      PARALON_CUDA_CHECK("scratch", cudaMalloc(&scratch_, want));
      scratch_bytes_ = want;
    }
    return scratch_;
  }

  // ---- ops ----
  void embedding(const EmbeddingArgs& a) override { select("embedding"); launch_embedding(a, *this); }
  void matmul(const MatmulArgs& a) override { select("matmul"); launch_matmul(a, *this); }
  void rmsnorm(const RmsNormArgs& a) override { select("rmsnorm"); launch_rmsnorm(a, *this); }
  void qk_norm_rope(const QkNormRopeArgs& a) override { select("qk_norm_rope"); launch_qk_norm_rope(a, *this); }
  void swiglu(const SwigluArgs& a) override { select("swiglu"); launch_swiglu(a, *this); }
  void kv_write(const KvWriteArgs& a) override { select("kv_write"); launch_kv_write(a, *this); }
  void attention(const AttentionArgs& a) override { select("attention"); launch_attention(a, *this); }
  void sample(const SampleArgs& a) override {
    select("sample");
    launch_sample(a, *this);  // returns with the stream synchronised
    after_sync();
  }

 private:
  struct StageRing {
    char* host = nullptr;
    char* device = nullptr;
    size_t capacity = 0, used = 0;
  };
  struct Bounce {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
  };

  void select(const char* op) { PARALON_CUDA_CHECK(op, cudaSetDevice(device_)); }

  static void release(StageRing& r) {
    if (r.host) cudaFreeHost(r.host);
    if (r.device) cudaFree(r.device);
    r = StageRing{};
  }

  void release_retired() {
    for (StageRing& r : retired_stages_) release(r);
    retired_stages_.clear();
    for (void* p : retired_scratch_) cudaFree(p);
    retired_scratch_.clear();
  }

  // The stream is idle: staged metadata and outgrown buffers are no longer referenced.
  void after_sync() {
    release_retired();
    stage_.used = 0;
  }

  int device_;
  std::string name_, description_;
  StageRing stage_;
  std::vector<StageRing> retired_stages_;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  std::vector<void*> retired_scratch_;
  Bounce bounce_[2];
};

}  // namespace

std::unique_ptr<Backend> create_backend(int device_index) {
#if defined(PARALON_CUDA_SIM)
  return std::make_unique<CudaBackend>(device_index, "cuda-sim");
#else
  return std::make_unique<CudaBackend>(device_index, "cuda:" + std::to_string(device_index));
#endif
}

}  // namespace PARALON_CUDA_NS

#if defined(PARALON_CUDA_SIM)

std::unique_ptr<Backend> make_cuda_sim_backend() { return PARALON_CUDA_NS::create_backend(0); }

#else

int cuda_device_count(std::string* reason) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    if (reason) {
      const bool absent = err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice;
      *reason = std::string(absent ? "no CUDA device (" : "CUDA unavailable (") + cudaGetErrorName(err) + ": " +
                cudaGetErrorString(err) + ")";
    }
    return 0;
  }
  if (n == 0 && reason) *reason = "no CUDA device";
  return n;
}

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
  std::string reason;
  const int n = cuda_device_count(&reason);
  if (n == 0) throw OpError(reason);
  if (device_index < 0 || device_index >= n) {
    throw OpError("cuda: device index " + std::to_string(device_index) + " out of range (" + std::to_string(n) +
                  " device" + (n == 1 ? "" : "s") + ")");
  }
  return PARALON_CUDA_NS::create_backend(device_index);
}

#endif

}  // namespace paralon
