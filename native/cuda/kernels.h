// The CUDA backend's internal interface: one launcher per op family, implemented in one .cu file
// each, called by the backend (backend.cu). Compiled twice: by nvcc for real GPUs (namespace
// paralon::cuda) and by the host compiler against the simulator (namespace paralon::cuda_sim,
// PARALON_CUDA_SIM defined), so every name here lives in PARALON_CUDA_NS.
#pragma once

#include "common.cuh"
#include "ops.h"

namespace paralon {
namespace PARALON_CUDA_NS {

// Per-backend launch context: the stream, device facts for dispatch, and device-side staging of
// the host metadata the op contract passes (ids, positions, slots, block tables, ...).
class LaunchContext {
 public:
  virtual ~LaunchContext() = default;
  cudaStream_t stream = nullptr;
  int sm_count = 1;
  int cc_major = 8, cc_minor = 0;   // compute capability: Hopper paths only when cc_major == 9
  size_t max_smem_optin = 48 * 1024;  // largest dynamic shared memory a block may opt into

  // Copies n elements of host metadata to device memory in stream order and returns the device
  // pointer, valid until the next synchronize() of the backend (a ring of pinned + device memory).
  // While capturing a graph, metadata from a graph input maps to the graph's copy of that input
  // (refreshed at each replay) and anything else becomes a constant of the graph.
  virtual const int32_t* stage_i32(const int32_t* host, size_t n) = 0;
  virtual const void* stage_bytes(const void* host, size_t bytes) = 0;
  // A device copy of a small array that stays the same for the model's life (RoPE's inv_freq):
  // uploaded at its first use and kept, the same bytes giving the same pointer until the backend
  // goes, so steps after the first upload nothing for it. While capturing, a constant of the graph.
  virtual const void* constant_bytes(const void* host, size_t bytes) = 0;
  // n device int32 counters that are zero at every kernel boundary: a kernel that counts on one
  // (a ticket) must leave it at zero when it exits. Valid until the next call; zeroed at creation.
  virtual int32_t* zeroed_counters(size_t n) = 0;
  // Device scratch memory for the current op (e.g. split-K partials, converted activations); valid
  // until the next call to scratch() — ops must not hold it across ops.
  virtual void* scratch(size_t bytes) = 0;
  // Pinned host memory of at least `bytes` for results an op copies back (a direct DMA, where a
  // pageable destination costs a driver bounce copy), valid until the next call; and the event the
  // op records after that copy and waits on, instead of synchronising the whole stream.
  virtual void* host_results(size_t bytes) = 0;
  virtual cudaEvent_t results_ready() = 0;
  // True while the launches are recorded into a graph: an op must then choose its launch
  // configuration from shapes only, never from the values of host metadata (which change at every
  // replay), or refuse to be captured.
  virtual bool capturing() const = 0;
};

// Throws OpError("<op>: <cuda error name>: <message> (file:line)") when a launch or call failed.
void check_cuda(cudaError_t err, const char* op, const char* file, int line);
#define PARALON_CUDA_CHECK(op, call) ::paralon::PARALON_CUDA_NS::check_cuda((call), (op), __FILE__, __LINE__)
#define PARALON_CHECK_LAUNCH(op) ::paralon::PARALON_CUDA_NS::check_cuda(cudaGetLastError(), (op), __FILE__, __LINE__)

void launch_embedding(const EmbeddingArgs& a, LaunchContext& ctx);      // embedding.cu
void launch_matmul(const MatmulArgs& a, LaunchContext& ctx);            // matmul.cu
// M ≤ 16; w_up non-null: the Swiglu epilogue (a.w the gate rows, a.N the output columns).
void launch_matmul_quantized(const MatmulArgs& a, const void* w_up, LaunchContext& ctx);  // quant_matmul.cu
void launch_rmsnorm(const RmsNormArgs& a, LaunchContext& ctx);          // norm.cu
void launch_qk_norm_rope(const QkNormRopeArgs& a, LaunchContext& ctx);  // rope.cu
void launch_swiglu(const SwigluArgs& a, LaunchContext& ctx);            // swiglu.cu
void launch_kv_write(const KvWriteArgs& a, LaunchContext& ctx);         // kv_cache.cu
void launch_attention(const AttentionArgs& a, LaunchContext& ctx);      // attention.cu
void launch_moe_route(const MoeRouteArgs& a, LaunchContext& ctx);       // moe.cu
void launch_moe_matmul(const MoeMatmulArgs& a, LaunchContext& ctx);     // moe.cu
void launch_moe_combine(const MoeCombineArgs& a, LaunchContext& ctx);   // moe.cu
// Writes results into the host pointers of `a` (copies back and synchronises the stream).
void launch_sample(const SampleArgs& a, LaunchContext& ctx);            // sampling.cu

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
