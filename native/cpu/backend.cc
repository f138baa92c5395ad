// The CPU backend: host memory, memcpy copies, and the ops of ops.h run on the calling (stream
// worker) thread plus a persistent thread pool. Every op is synchronous, so synchronize() has
// nothing to wait for.
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/simd.h"
#include "ops.h"

namespace paralon {

namespace {

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
  }

  std::string name() const override { return "cpu"; }
  std::string description() const override {
    return model_ + ", " + std::to_string(ctx_.pool.size()) + " threads, " + PARALON_CPU_ISA +
           (ctx_.bf16_dot ? ", bf16 dot products (fast precision)" : "");
  }

  void* alloc(size_t bytes) override {
    // 64-byte aligned (a cache line, one AVX-512 vector); size rounded up as aligned_alloc requires.
    const size_t rounded = ((bytes ? bytes : 1) + 63) & ~static_cast<size_t>(63);
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw OpError("alloc: out of host memory (" + std::to_string(bytes) + " bytes)");
    return p;
  }
  void free(void* ptr) override { std::free(ptr); }
  void copy_from_host(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes && dst != src) std::memmove(dst, src, bytes);
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

  void embedding(const EmbeddingArgs& a) override { cpu::embedding(ctx_, a); }
  void matmul(const MatmulArgs& a) override { cpu::matmul(ctx_, a); }
  void rmsnorm(const RmsNormArgs& a) override { cpu::rmsnorm(ctx_, a); }
  void qk_norm_rope(const QkNormRopeArgs& a) override { cpu::qk_norm_rope(ctx_, a); }
  void swiglu(const SwigluArgs& a) override { cpu::swiglu(ctx_, a); }
  void kv_write(const KvWriteArgs& a) override { cpu::kv_write(ctx_, a); }
  void attention(const AttentionArgs& a) override { cpu::attention(ctx_, a); }
  void sample(const SampleArgs& a) override { cpu::sample(ctx_, a); }
  void moe_route(const MoeRouteArgs& a) override { cpu::moe_route(ctx_, a); }
  void moe_matmul(const MoeMatmulArgs& a) override { cpu::moe_matmul(ctx_, a); }
  void moe_combine(const MoeCombineArgs& a) override { cpu::moe_combine(ctx_, a); }

 private:
  cpu::Context ctx_;
  std::string model_;
};

}  // namespace

bool cpu_fast_precision_available() { return cpu::bf16_dot_supported(); }

std::unique_ptr<Backend> make_cpu_backend(int num_threads, bool fast_precision) {
  return std::make_unique<CpuBackend>(num_threads, fast_precision);
}

}  // namespace paralon
