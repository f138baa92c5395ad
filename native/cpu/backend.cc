// The CPU backend: host memory, memcpy copies, and the ops of ops.h run on the calling (stream
// worker) thread plus a persistent thread pool. Every op is synchronous, so synchronize() has
// nothing to wait for. Graphs (cpu/graph.h): while capturing, each op is recorded instead of run.
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include <sys/mman.h>

#include "cpu/gemm.h"
#include "cpu/graph.h"
#include "cpu/kernels.h"
#include "cpu/simd.h"
#include "ops.h"

namespace paralon {

namespace {

constexpr size_t kHugePage = size_t(2) << 20;

std::string cpu_model_name() {
  std::ifstream info("/proc/cpuinfo");
  std::string line;
  while (std::getline(info, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(int num_threads, bool fast_precision) : ctx_(num_threads), model_(cpu_model_name()) {
    ctx_.bf16_dot = fast_precision && cpu::bf16_dot_supported();
    // PARALON_CPU_AMX=0 keeps a fast-precision backend off the AMX tiles (tests of the other fast
    // kernel, A/B measurements); read when the backend is made.
    const char* amx_env = std::getenv("PARALON_CPU_AMX");
    ctx_.bf16_attention = fast_precision && cpu::attention_bf16_supported();
    ctx_.amx = fast_precision && cpu::amx_supported() && !(amx_env && std::strcmp(amx_env, "0") == 0);
    ctx_.int8_dot = fast_precision ? cpu::int8_isa_for_backend() : cpu::Int8Isa::Off;
  }

  std::string name() const override { return "cpu"; }
  std::string description() const override {
    return model_ + ", " + std::to_string(ctx_.pool.size()) + " threads, " + PARALON_CPU_ISA +
           (ctx_.bf16_dot ? ", bf16 dot products (fast precision)" : "") + (ctx_.amx ? ", AMX-BF16 tiles" : "") +
           (ctx_.int8_dot != cpu::Int8Isa::Off
                ? std::string(", int8 dot products for quantized weights (") + cpu::int8_isa_name(ctx_.int8_dot) + ", fast precision)"
                : "");
  }

  void* alloc(size_t bytes) override {
    // 64-byte aligned (a cache line, one AVX-512 vector); size rounded up as aligned_alloc requires.
    // Large buffers (KV pools, logits) are 2 MiB aligned and asked to be backed by transparent huge
    // pages: one page fault per 2 MiB when first written instead of one per 4 KiB (kvWrite into
    // fresh blocks), and one TLB entry for the blocks a decode attention reads a head's rows from.
    const size_t align = bytes >= kHugePage ? kHugePage : 64;
    const size_t rounded = ((bytes ? bytes : 1) + align - 1) & ~(align - 1);
    void* p = std::aligned_alloc(align, rounded);
    if (!p) throw OpError("alloc: out of host memory (" + std::to_string(bytes) + " bytes)");
#if defined(MADV_HUGEPAGE)
    if (align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
    return p;
  }
  void free(void* ptr) override { std::free(ptr); }
  void copy_from_host(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (!bytes || dst == src) return;
    if (capture_) return capture_->add([dst, src, bytes] { std::memmove(dst, src, bytes); });
    std::memmove(dst, src, bytes);
  }
  void synchronize() override {}
  bool host_memory() const override { return true; }
  // Quantized blocks: matmul weights, embedding tables and MoE experts (native/cpu/quant_matmul.cc).
  // MoE ops (optional) on float or quantized experts. The matmul's Swiglu epilogue (optional) on every
  // weight dtype.
  bool supports(Op op, DType dtype) const override {
    if (dtype_quantized(dtype)) return op == Op::Matmul || op == Op::Embedding || op == Op::MoeMatmul || op == Op::MatmulSwiglu;
    if (is_optional(op)) return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16;
    return Backend::supports(op, dtype);
  }

  void embedding(const EmbeddingArgs& a) override {
    if (!capture_) return cpu::embedding(ctx_, a);
    EmbeddingArgs r = a;
    r.ids_host = capture_->rebase(a.ids_host, static_cast<size_t>(a.num_tokens));
    record([r](cpu::Context& ctx) { cpu::embedding(ctx, r); });
  }
  void matmul(const MatmulArgs& a) override { run(a, cpu::matmul); }
  void rmsnorm(const RmsNormArgs& a) override { run(a, cpu::rmsnorm); }
  void qk_norm_rope(const QkNormRopeArgs& a) override {
    if (!capture_) return cpu::qk_norm_rope(ctx_, a);
    QkNormRopeArgs r = a;
    r.positions_host = capture_->rebase(a.positions_host, static_cast<size_t>(a.num_tokens));
    r.inv_freq_host = capture_->constant(a.inv_freq_host, static_cast<size_t>(a.head_dim / 2));
    record([r](cpu::Context& ctx) { cpu::qk_norm_rope(ctx, r); });
  }
  void swiglu(const SwigluArgs& a) override { run(a, cpu::swiglu); }
  void kv_write(const KvWriteArgs& a) override {
    if (!capture_) return cpu::kv_write(ctx_, a);
    KvWriteArgs r = a;
    r.slots_host = capture_->rebase(a.slots_host, static_cast<size_t>(a.num_tokens));
    record([r](cpu::Context& ctx) { cpu::kv_write(ctx, r); });
  }
  void attention(const AttentionArgs& a) override {
    if (!capture_) return cpu::attention(ctx_, a);
    AttentionArgs r = a;
    const size_t S = static_cast<size_t>(a.num_seqs);
    r.q_start_host = capture_->rebase(a.q_start_host, S + 1);
    r.kv_len_host = capture_->rebase(a.kv_len_host, S);
    r.block_tables_host = capture_->rebase(a.block_tables_host, S * static_cast<size_t>(a.max_blocks_per_seq));
    record([r](cpu::Context& ctx) { cpu::attention(ctx, r); });
  }
  void sample(const SampleArgs& a) override {
    if (capture_) throw OpError("sample: not allowed while a graph is being captured");
    cpu::sample(ctx_, a);
  }
  void moe_route(const MoeRouteArgs& a) override { run(a, cpu::moe_route); }
  void moe_matmul(const MoeMatmulArgs& a) override { run(a, cpu::moe_matmul); }
  void moe_combine(const MoeCombineArgs& a) override { run(a, cpu::moe_combine); }

  // ---- graphs ----
  bool supports_graphs() const override { return true; }
  void begin_capture(const std::vector<GraphInput>& inputs) override {
    if (capture_) throw OpError("graph capture: a capture is already in progress");
    capture_ = std::make_unique<cpu::GraphRecorder>(inputs);
  }
  std::unique_ptr<BackendGraph> end_capture(bool discard) override {
    if (!capture_) throw OpError("graph capture: no capture in progress");
    std::unique_ptr<cpu::GraphRecorder> cap = std::move(capture_);
    if (discard) return nullptr;
    return cap->finish();
  }
  void replay(BackendGraph& base, const int32_t* values) override {
    if (capture_) throw OpError("graph replay: not allowed while a graph is being captured");
    cpu::CpuGraph& g = static_cast<cpu::CpuGraph&>(base);
    if (!g.inputs.empty()) std::memcpy(g.inputs.data(), values, g.inputs.size() * sizeof(int32_t));
    for (const auto& op : g.ops) op();
  }

 private:
  // Ops without host arrays: run now, or recorded with their arguments as they are.
  template <class Args>
  void run(const Args& a, void (*op)(cpu::Context&, const Args&)) {
    if (!capture_) return op(ctx_, a);
    record([a, op](cpu::Context& ctx) { op(ctx, a); });
  }
  template <class F>
  void record(F&& f) {
    cpu::Context* ctx = &ctx_;
    capture_->add([ctx, f = std::forward<F>(f)] { f(*ctx); });
  }

  cpu::Context ctx_;
  std::string model_;
  std::unique_ptr<cpu::GraphRecorder> capture_;  // worker thread only
};

}  // namespace

bool cpu_fast_precision_available() {
  return cpu::bf16_dot_supported() || cpu::amx_supported() || cpu::int8_isa_for_backend() != cpu::Int8Isa::Off;
}

std::unique_ptr<Backend> make_cpu_backend(int num_threads, bool fast_precision) {
  return std::make_unique<CpuBackend>(num_threads, fast_precision);
}

}  // namespace paralon
