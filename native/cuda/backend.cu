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
// a larger one is created and the old one is released at the next synchronisation. Between two
// synchronisations (one decode step in eager mode) an array whose bytes were already staged is not
// copied again: every layer's attention, RoPE and KV-write stage the same block tables, q starts,
// kv lengths, positions and slots, so a step uploads each once instead of once per layer; and
// stage_step() uploads a step's int32 metadata, given up front by the runner, packed in one copy
// whose regions the ops' own staging then finds — one host-to-device copy for the whole step's
// forward metadata. RoPE's inv_freq is a constant_bytes(): uploaded at its first use and kept.
// metadata_uploads() counts these copies (tests assert the count per step).
// Scratch: one growable device buffer; a buffer outgrown while queued work may still use it is also
// released at the next synchronisation.
// Uploads (copy_from_host) go through two pinned bounce buffers so the host memcpy of one chunk
// overlaps the DMA of the previous one; the call returns once the source has been consumed.
// Graphs (begin_capture … end_capture, replay): the stream is captured in relaxed mode (the JS
// thread may allocate meanwhile). A graph owns a pinned + device copy of its inputs, laid out one
// after the other at 16-byte offsets, the device memory of its constants and its own scratch, so a
// replay depends on nothing the eager path may free or reuse. Frees requested while capturing wait
// for the end of the capture (cudaFree would synchronise with the capturing stream). A replay copies
// the new inputs into the pinned copy once the previous replay's upload has been consumed (an
// event), uploads them in stream order and launches the graph: no host synchronisation.

#include <algorithm>
#include <atomic>
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
constexpr size_t kMaxStagedEntries = 64;  // distinct arrays looked up per step (a step has ~10)
constexpr size_t kMaxConstants = 64;      // distinct constant_bytes() arrays kept (a model has 1)

size_t align_up(size_t n) { return (n + kStageAlign - 1) / kStageAlign * kStageAlign; }

class CudaGraph final : public BackendGraph {
 public:
  ~CudaGraph() override {
    if (exec) cudaGraphExecDestroy(exec);
    if (uploaded) cudaEventDestroy(uploaded);
    cudaFreeHost(host_inputs);
    cudaFree(device_inputs);
    for (void* p : owned) cudaFree(p);
  }
  cudaGraphExec_t exec = nullptr;
  std::vector<size_t> offsets, lengths;  // per input: byte offset in the copies, elements
  size_t input_bytes = 0;
  char* host_inputs = nullptr;    // pinned
  char* device_inputs = nullptr;
  cudaEvent_t uploaded = nullptr;  // the last replay's upload has read host_inputs
  std::vector<void*> owned;        // constants and scratch
};

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
    if (capture_) {
      try {
        end_capture(true);
      } catch (...) {  // the device is going away; nothing to report to
      }
    }
    cudaStreamSynchronize(stream);
    release_retired();
    release(stage_);
    cudaFree(scratch_);
    cudaFree(counters_);
    cudaFreeHost(results_host_);
    if (results_event_) cudaEventDestroy(results_event_);
    for (const Constant& c : constants_) cudaFree(c.device);
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
    if (capture_) {
      capture_->deferred_frees.push_back(ptr);
      return;
    }
    PARALON_CUDA_CHECK("free", cudaFree(ptr));
  }

  void copy_from_host(void* dst, const void* src, size_t bytes) override {
    select("copy_from_host");
    refuse_while_capturing("copy_from_host");
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
    refuse_while_capturing("copy_to_host");
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
    refuse_while_capturing("synchronize");
    PARALON_CUDA_CHECK("synchronize", cudaStreamSynchronize(stream));
    after_sync();
  }

  // ---- LaunchContext ----
  const int32_t* stage_i32(const int32_t* host, size_t n) override {
    return static_cast<const int32_t*>(stage_bytes(host, n * sizeof(int32_t)));
  }

  const void* stage_bytes(const void* host, size_t bytes) override {
    if (bytes == 0) return nullptr;
    if (capture_) return capture_stage(host, bytes);
    for (const Staged& e : staged_) {  // the ring is append-only until the next sync: reuse equal bytes
      if (e.bytes == bytes && std::memcmp(stage_.host + e.offset, host, bytes) == 0) return stage_.device + e.offset;
    }
    const size_t at = reserve(bytes);
    std::memcpy(stage_.host + at, host, bytes);
    upload(at, bytes);
    if (staged_.size() < kMaxStagedEntries) staged_.push_back(Staged{at, bytes});
    return stage_.device + at;
  }

  const void* constant_bytes(const void* host, size_t bytes) override {
    if (bytes == 0) return nullptr;
    if (capture_) return capture_stage(host, bytes);
    for (const Constant& c : constants_) {
      if (c.bytes.size() == bytes && std::memcmp(c.bytes.data(), host, bytes) == 0) return c.device;
    }
    if (constants_.size() >= kMaxConstants) return stage_bytes(host, bytes);  // many distinct: per step
    void* device = nullptr;
    PARALON_CUDA_CHECK("stage", cudaMalloc(&device, bytes));
    constants_.push_back(Constant{device, std::vector<char>(static_cast<const char*>(host), static_cast<const char*>(host) + bytes)});
    PARALON_CUDA_CHECK("stage", cudaMemcpyAsync(device, stage_bytes(host, bytes), bytes, cudaMemcpyDeviceToDevice, stream));
    return device;
  }

  int32_t* zeroed_counters(size_t n) override {
    const size_t bytes = std::max<size_t>(n, 1) * sizeof(int32_t);
    if (capture_) {  // the graph's own, zeroed once when the capture ends (kernels leave them at zero)
      void* device = own(bytes, "counters");
      capture_->constants.push_back(Constant{device, std::vector<char>(bytes, 0)});
      return static_cast<int32_t*>(device);
    }
    if (bytes > counters_bytes_) {
      if (counters_) retired_scratch_.push_back(counters_);  // queued kernels may still use it
      counters_ = nullptr;
      counters_bytes_ = 0;
      const size_t want = std::max<size_t>(bytes, 4096);
      PARALON_CUDA_CHECK("counters", cudaMalloc(&counters_, want));
      PARALON_CUDA_CHECK("counters", cudaMemsetAsync(counters_, 0, want, stream));
      counters_bytes_ = want;
    }
    return static_cast<int32_t*>(counters_);
  }

  void stage_step(const std::vector<GraphInput>& inputs) override {
    select("stage step");
    if (capture_) return;
    size_t total = 0;
    for (const GraphInput& in : inputs) total += align_up(in.length * sizeof(int32_t));
    if (total == 0) return;
    const size_t base = reserve(total);
    size_t at = base;
    for (const GraphInput& in : inputs) {
      const size_t bytes = in.length * sizeof(int32_t);
      if (bytes == 0) continue;
      std::memcpy(stage_.host + at, in.host, bytes);
      if (staged_.size() < kMaxStagedEntries) staged_.push_back(Staged{at, bytes});
      at += align_up(bytes);
    }
    upload(base, at - base);
  }

  uint64_t metadata_uploads() const override { return uploads_.load(); }
  void* scratch(size_t bytes) override {
    if (capture_) {  // the graph's own: eager ops may outgrow and free the backend's
      if (bytes > capture_->scratch_bytes) {
        capture_->scratch = own(bytes, "scratch");
        capture_->scratch_bytes = bytes;
      }
      return capture_->scratch;
    }
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

  bool capturing() const override { return capture_ != nullptr; }

  // ---- ops ----
  void embedding(const EmbeddingArgs& a) override { run("embedding", [&] { launch_embedding(a, *this); }); }
  void matmul(const MatmulArgs& a) override { run("matmul", [&] { launch_matmul(a, *this); }); }
  void rmsnorm(const RmsNormArgs& a) override { run("rmsnorm", [&] { launch_rmsnorm(a, *this); }); }
  void qk_norm_rope(const QkNormRopeArgs& a) override {
    run("qk_norm_rope", [&] { launch_qk_norm_rope(a, *this); });
  }
  void swiglu(const SwigluArgs& a) override { run("swiglu", [&] { launch_swiglu(a, *this); }); }
  void kv_write(const KvWriteArgs& a) override { run("kv_write", [&] { launch_kv_write(a, *this); }); }
  void attention(const AttentionArgs& a) override { run("attention", [&] { launch_attention(a, *this); }); }
  void moe_route(const MoeRouteArgs& a) override { run("moe_route", [&] { launch_moe_route(a, *this); }); }
  void moe_matmul(const MoeMatmulArgs& a) override { run("moe_matmul", [&] { launch_moe_matmul(a, *this); }); }
  void moe_combine(const MoeCombineArgs& a) override { run("moe_combine", [&] { launch_moe_combine(a, *this); }); }
  void sample(const SampleArgs& a) override {
    select("sample");
    refuse_while_capturing("sample");
    launch_sample(a, *this);  // returns once results_ready() fired: all queued work is done
    after_sync();
  }

  // Quantized blocks: matmul weights (quant_matmul.cu), embedding tables (embedding.cu) and MoE
  // experts (moe.cu). MoE ops (optional) on float or quantized experts.
  // The matmul's Swiglu epilogue (optional) on every matrix dtype: GEMV, quantized GEMV, mma.sync and
  // SIMT GEMMs all run it in their store (matmul.cu).
  bool supports(Op op, DType dtype) const override {
    if (dtype_quantized(dtype))
      return op == Op::Matmul || op == Op::Embedding || op == Op::MoeMatmul || op == Op::MatmulSwiglu;
    if (is_optional(op)) return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16;
    return Backend::supports(op, dtype);
  }

  // ---- graphs ----
  bool supports_graphs() const override { return true; }

  void begin_capture(const std::vector<GraphInput>& inputs) override {
    select("graph capture");
    if (capture_) throw OpError("graph capture: a capture is already in progress");
    auto graph = std::make_unique<CudaGraph>();
    for (const GraphInput& in : inputs) {
      graph->offsets.push_back(graph->input_bytes);
      graph->lengths.push_back(in.length);
      graph->input_bytes += align_up(std::max<size_t>(in.length * sizeof(int32_t), 1));
    }
    void* host = nullptr;
    void* device = nullptr;
    PARALON_CUDA_CHECK("graph capture", cudaMallocHost(&host, std::max<size_t>(graph->input_bytes, 1)));
    graph->host_inputs = static_cast<char*>(host);
    PARALON_CUDA_CHECK("graph capture", cudaMalloc(&device, std::max<size_t>(graph->input_bytes, 1)));
    graph->device_inputs = static_cast<char*>(device);
    PARALON_CUDA_CHECK("graph capture", cudaEventCreateWithFlags(&graph->uploaded, cudaEventDisableTiming));
    PARALON_CUDA_CHECK("graph capture", cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    capture_ = std::make_unique<Capture>();
    capture_->graph = std::move(graph);
    capture_->inputs = inputs;
  }

  std::unique_ptr<BackendGraph> end_capture(bool discard) override {
    select("graph capture");
    if (!capture_) throw OpError("graph capture: no capture in progress");
    std::unique_ptr<Capture> cap = std::move(capture_);
    cudaGraph_t captured = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream, &captured);
    for (void* p : cap->deferred_frees) cudaFree(p);
    if (discard) {
      if (captured) cudaGraphDestroy(captured);
      return nullptr;
    }
    if (!cap->failure.empty()) {
      if (captured) cudaGraphDestroy(captured);
      throw OpError("graph capture: " + cap->failure);
    }
    PARALON_CUDA_CHECK("graph capture", ended);
    const cudaError_t made = cudaGraphInstantiate(&cap->graph->exec, captured, 0);
    cudaGraphDestroy(captured);
    PARALON_CUDA_CHECK("graph capture", made);
    for (const Constant& c : cap->constants) {
      PARALON_CUDA_CHECK("graph capture", cudaMemcpy(c.device, c.bytes.data(), c.bytes.size(), cudaMemcpyHostToDevice));
    }
    return std::move(cap->graph);
  }

  void replay(BackendGraph& base, const int32_t* values) override {
    select("graph replay");
    refuse_while_capturing("graph replay");
    CudaGraph& g = static_cast<CudaGraph&>(base);
    PARALON_CUDA_CHECK("graph replay", cudaEventSynchronize(g.uploaded));
    for (size_t i = 0; i < g.lengths.size(); ++i) {
      std::memcpy(g.host_inputs + g.offsets[i], values, g.lengths[i] * sizeof(int32_t));
      values += g.lengths[i];
    }
    PARALON_CUDA_CHECK("graph replay", cudaMemcpyAsync(g.device_inputs, g.host_inputs, g.input_bytes,
                                                       cudaMemcpyHostToDevice, stream));
    uploads_.fetch_add(1);
    PARALON_CUDA_CHECK("graph replay", cudaEventRecord(g.uploaded, stream));
    PARALON_CUDA_CHECK("graph replay", cudaGraphLaunch(g.exec, stream));
  }

 private:
  struct StageRing {
    char* host = nullptr;
    char* device = nullptr;
    size_t capacity = 0, used = 0;
  };
  struct Staged {  // a region of the current ring staged since the last sync
    size_t offset, bytes;
  };
  struct Bounce {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
  };

  struct Constant {
    void* device;
    std::vector<char> bytes;  // uploaded once the capture ended
  };
  struct Capture {
    std::unique_ptr<CudaGraph> graph;
    std::vector<GraphInput> inputs;
    std::vector<Constant> constants;
    void* scratch = nullptr;
    size_t scratch_bytes = 0;
    std::vector<void*> deferred_frees;
    std::string failure;  // the first op that failed while capturing
  };

  void select(const char* op) { PARALON_CUDA_CHECK(op, cudaSetDevice(device_)); }

  // Runs an op; an op that fails while capturing spoils the capture (end_capture reports it).
  template <typename F>
  void run(const char* op, F&& launch) {
    try {
      select(op);
      launch();
    } catch (const std::exception& e) {
      if (capture_ && capture_->failure.empty()) capture_->failure = e.what();
      throw;
    }
  }

  void refuse_while_capturing(const char* op) const {
    if (capture_) throw OpError(std::string(op) + ": not allowed while a graph is being captured");
  }

  // Device memory owned by the graph being captured.
  void* own(size_t bytes, const char* what) {
    void* p = nullptr;
    PARALON_CUDA_CHECK(what, cudaMalloc(&p, std::max<size_t>(bytes, 1)));
    capture_->graph->owned.push_back(p);
    return p;
  }

  const void* capture_stage(const void* host, size_t bytes) {
    const char* h = static_cast<const char*>(host);
    const CudaGraph& g = *capture_->graph;
    for (size_t i = 0; i < capture_->inputs.size(); ++i) {
      const char* base = reinterpret_cast<const char*>(capture_->inputs[i].host);
      if (h >= base && h + bytes <= base + capture_->inputs[i].length * sizeof(int32_t)) {
        return g.device_inputs + g.offsets[i] + (h - base);
      }
    }
    void* device = own(bytes, "stage");
    capture_->constants.push_back(Constant{device, std::vector<char>(h, h + bytes)});
    return device;
  }

  // Offset of `bytes` free bytes in the ring (16-byte aligned); a full ring is retired (freed at the
  // next synchronisation, its copies may still be in flight) for one at least twice as large.
  size_t reserve(size_t bytes) {
    const size_t at = align_up(stage_.used);
    if (at + bytes <= stage_.capacity) {
      stage_.used = at + bytes;
      return at;
    }
    retired_stages_.push_back(stage_);
    stage_ = StageRing{};
    staged_.clear();
    const size_t want = std::max({kInitialStageBytes, 2 * retired_stages_.back().capacity, bytes + kStageAlign});
    void* host_ring = nullptr;
    void* device_ring = nullptr;
    PARALON_CUDA_CHECK("stage", cudaMallocHost(&host_ring, want));
    stage_.host = static_cast<char*>(host_ring);
    PARALON_CUDA_CHECK("stage", cudaMalloc(&device_ring, want));
    stage_.device = static_cast<char*>(device_ring);
    stage_.capacity = want;
    stage_.used = bytes;
    return 0;
  }

  // One host-to-device copy of ring bytes [at, at + bytes), in stream order.
  void upload(size_t at, size_t bytes) {
    PARALON_CUDA_CHECK("stage", cudaMemcpyAsync(stage_.device + at, stage_.host + at, bytes, cudaMemcpyHostToDevice, stream));
    uploads_.fetch_add(1);
  }

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

  // Only sample() reads results back, after its event fired, so the buffer is free when it grows.
  void* host_results(size_t bytes) override {
    if (bytes > results_bytes_) {
      cudaFreeHost(results_host_);
      results_host_ = nullptr;
      results_bytes_ = 0;
      const size_t want = std::max<size_t>(bytes, 4096);
      PARALON_CUDA_CHECK("sample", cudaMallocHost(&results_host_, want));
      results_bytes_ = want;
    }
    return results_host_;
  }

  cudaEvent_t results_ready() override {
    if (!results_event_) PARALON_CUDA_CHECK("sample", cudaEventCreateWithFlags(&results_event_, cudaEventDisableTiming));
    return results_event_;
  }

  // The stream is idle: staged metadata and outgrown buffers are no longer referenced.
  void after_sync() {
    release_retired();
    stage_.used = 0;
    staged_.clear();
  }

  int device_;
  std::string name_, description_;
  StageRing stage_;
  std::vector<Staged> staged_;
  std::vector<StageRing> retired_stages_;
  std::vector<Constant> constants_;  // constant_bytes(): the backend's for its life
  std::atomic<uint64_t> uploads_{0};  // metadata_uploads()
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  void* counters_ = nullptr;  // zeroed_counters()
  size_t counters_bytes_ = 0;
  std::vector<void*> retired_scratch_;
  void* results_host_ = nullptr;  // pinned, host_results()
  size_t results_bytes_ = 0;
  cudaEvent_t results_event_ = nullptr;
  Bounce bounce_[2];
  std::unique_ptr<Capture> capture_;
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
