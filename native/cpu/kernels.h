// The CPU backend's internal interface: one entry point per op family, implemented in one .cc
// file each and called by backend.cc. Every op runs on the calling thread plus the pool.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/quant_int8.h"
#include "cpu/scratch.h"
#include "cpu/thread_pool.h"
#include "ops.h"

namespace paralon {
namespace cpu {

struct Context {
  explicit Context(int num_threads) : pool(num_threads), scratch(pool.size()) {}
  ThreadPool pool;
  ThreadScratch scratch;
  std::vector<int64_t> work_index;  // reusable host-side work lists (attention's item prefix sums)
  // moe_matmul's reusable buffers: slots sorted by expert, and one expert's gathered x and y rows.
  std::vector<int64_t> moe_order;
  std::vector<float> moe_x, moe_y;
  // Fast precision (--cpu-precision fast): bf16-weight matmuls take matmul_bf16_dot, x rounded to
  // bf16 into bf16_x. Set only where bf16_dot_supported().
  bool bf16_dot = false;
  // Fast precision on AMX-BF16 CPUs: from kMinAmxRows rows on, AMX tiles (matmul_amx; fewer rows take
  // matmul_bf16_dot where bf16_dot is set, else the exact kernels). Set only where amx_supported().
  bool amx = false;
  // Fast precision, bf16 KV cache: prefill attention items take attend_item_bf16. Set only where
  // attention_bf16_supported().
  bool bf16_attention = false;
  std::vector<uint16_t> bf16_x;
  // Fast precision for quantized weights (quant_int8.h): the int8 dot-product path in use (Off: the
  // exact kernels), and x quantized to int8 blocks once per matmul.
  Int8Isa int8_dot = Int8Isa::Off;
  std::vector<int8_t> q8_x;
  std::vector<float> q8_d;
  std::vector<int16_t> q8_bsums;
};

void embedding(Context& ctx, const EmbeddingArgs& a);        // elementwise.cc
void swiglu(Context& ctx, const SwigluArgs& a);              // elementwise.cc
void matmul(Context& ctx, const MatmulArgs& a);              // matmul.cc
void rmsnorm(Context& ctx, const RmsNormArgs& a);            // norm.cc
void qk_norm_rope(Context& ctx, const QkNormRopeArgs& a);    // norm.cc
void kv_write(Context& ctx, const KvWriteArgs& a);           // kv_cache.cc
void attention(Context& ctx, const AttentionArgs& a);        // attention.cc
void sample(Context& ctx, const SampleArgs& a);              // sampling.cc

// attention_bf16.cc: one attention work item (sequence s, KV head g, query tokens [i0, i1), G query heads
// per KV head) over a bf16 cache with vdpbf16ps products, for items of ≥ kMinBf16AttentionRows rows and
// head_dim a multiple of 32 up to kMaxBf16AttentionHeadDim; its arena needs attend_item_bf16_scratch(rows, head_dim) bytes.
constexpr int64_t kMinBf16AttentionRows = 16;
constexpr int64_t kMaxBf16AttentionHeadDim = 256;
bool attention_bf16_supported();  // this build and CPU have AVX512-BF16
void attend_item_bf16(const AttentionArgs& a, int64_t G, int64_t s, int64_t g, int64_t i0, int64_t i1, ArenaCursor arena);
size_t attend_item_bf16_scratch(int64_t rows, int64_t D);
void moe_route(Context& ctx, const MoeRouteArgs& a);         // moe.cc
void moe_matmul(Context& ctx, const MoeMatmulArgs& a);       // moe.cc
void moe_combine(Context& ctx, const MoeCombineArgs& a);     // moe.cc

// Splits [0, n) into chunks of at least min_chunk items, about `per_thread` chunks per pool thread
// (dynamic claiming then evens out uneven threads). Returns the chunk size.
inline int64_t chunk_size(int64_t n, const ThreadPool& pool, int64_t min_chunk, int64_t per_thread = 4) {
  const int64_t target = (n + pool.size() * per_thread - 1) / (pool.size() * per_thread);
  return target > min_chunk ? target : min_chunk;
}

}  // namespace cpu
}  // namespace paralon
