// The op contract: one signature per op, identical for every backend (cpu, cuda, cuda-sim).
//
// Conventions
// - Activations, norms and softmax are f32; weights may be f32, bf16 or f16 (read directly, never
//   converted up front), and matmul weights and embedding tables also q8_0, q4_k, q5_k or q6_k
//   (blocks read in place, never dequantized into a copy) where Backend::supports says so; the KV
//   cache is f32, bf16 or f16.
// - Every pointer named *_host is host memory owned by the caller for the duration of the call
//   (token ids, positions, slots, block tables, sequence boundaries, sampling parameters). A
//   device backend copies what it needs in stream order. Every other pointer lives on the backend's
//   device.
// - Shapes and index ranges are validated once, at the addon boundary (native/addon/validate.cc),
//   before an op reaches a backend; backends may assume valid arguments.
// - Ops run in stream order on the backend's worker thread; they do not synchronise with the host
//   except where stated (sample returns host results).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace paralon {

// Element types, and ggml's block-quantized weight formats (native/quant_blocks.h has their layouts,
// bit for bit as in GGUF files). A quantized tensor has a logical shape in elements whose last
// dimension is a multiple of the block, and its bytes are the blocks row by row.
// FP8_E4M3: the KV cache only (native/fp8_e4m3.h), values stored divided by a per-tensor scale.
enum class DType : int32_t { F32 = 0, BF16 = 1, F16 = 2, I32 = 3, Q8_0 = 4, Q4_K = 5, Q5_K = 6, Q6_K = 7, FP8_E4M3 = 8 };

inline bool dtype_quantized(DType t) { return t == DType::Q8_0 || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K; }
// Elements per storage unit: 1, or the block of a quantized dtype.
inline int64_t dtype_block_elements(DType t) { return t == DType::Q8_0 ? 32 : dtype_quantized(t) ? 256 : 1; }
// Bytes per storage unit (an element, or a block).
inline size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::FP8_E4M3: return 1;
    case DType::BF16:
    case DType::F16: return 2;
    case DType::Q8_0: return 34;
    case DType::Q4_K: return 144;
    case DType::Q5_K: return 176;
    case DType::Q6_K: return 210;
    default: return 4;
  }
}
// Bytes of one element of a non-quantized dtype (the element-wise ops' operands).
inline size_t dtype_size(DType t) { return dtype_block_bytes(t); }
// Bytes of `numel` elements (numel a multiple of the block for quantized dtypes).
inline size_t dtype_bytes(DType t, int64_t numel) {
  return static_cast<size_t>(numel / dtype_block_elements(t)) * dtype_block_bytes(t);
}
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    case DType::I32: return "i32";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_K: return "q4_k";
    case DType::Q5_K: return "q5_k";
    case DType::Q6_K: return "q6_k";
    case DType::FP8_E4M3: return "fp8";
  }
  return "?";
}

// out[t, :] = table[ids_host[t], :] converted to f32.   table [vocab, hidden]; out [num_tokens, hidden].
// Also serves as "gather rows" of an f32 activation (table_dtype F32).
struct EmbeddingArgs {
  const int32_t* ids_host;
  int64_t num_tokens;
  const void* table;
  DType table_dtype;
  int64_t vocab, hidden;
  float* out;
};

// y[M, N] = x[M, K] · W[N, K]ᵀ (+ residual[M, N]).  residual may alias y (in-place accumulate); x must not.
// A quantized W is N rows of K / block blocks (K a multiple of the block).
//
// Split output, for a fused projection (q/k/v or gate/up: x is read once and the op is queued once):
// when num_parts > 0, columns [part_start[j], part_start[j + 1]) of the product go to parts[j], a
// row-major [M, part_start[j + 1] − part_start[j]] array, computed from part_w[j]; y, residual and w
// are then unused. part_start[0] = 0 and part_start[num_parts] = N.
//
// Epilogue Swiglu (the MLP's gate/up projection with its activation fused into the store): the
// product's N columns are [gate | up], N even, and y[M, N/2] = silu(gate) · up is the only output —
// the [M, N] product is never written. W is one stacked [N, K] matrix (num_parts = 0), or gate and
// up separately (num_parts = 2, part_start = {0, N/2, N}, parts[] unused by the backend, both in
// one dtype). No residual.
constexpr int kMaxMatmulParts = 3;
enum class MatmulEpilogue : int32_t { None = 0, Swiglu = 1 };
struct MatmulArgs {
  const float* x;
  const void* w;
  DType w_dtype;
  const float* residual;  // nullable
  float* y;
  int64_t M, N, K;
  int num_parts = 0;
  float* parts[kMaxMatmulParts] = {};
  int64_t part_start[kMaxMatmulParts + 1] = {};
  // Each part's W rows: inside one stacked W, or separate matrices (q, k, v kept where the checkpoint
  // has them), each in its own dtype (a Q4_K_M file mixes Q4_K and Q6_K within one layer).
  const void* part_w[kMaxMatmulParts] = {};
  DType part_w_dtype[kMaxMatmulParts] = {};
  MatmulEpilogue epilogue = MatmulEpilogue::None;
};

// Part j of a split matmul as a matmul of its own: its W rows into its output.
inline MatmulArgs matmul_part(const MatmulArgs& a, int j) {
  MatmulArgs p = a;
  const int64_t n0 = a.part_start[j];
  p.w = a.part_w[j];
  p.w_dtype = a.part_w_dtype[j];
  p.residual = nullptr;
  p.y = a.parts[j];
  p.N = a.part_start[j + 1] - n0;
  p.num_parts = 0;
  return p;
}

// The gate (half 0) or up (half 1) projection of a Swiglu-epilogue matmul as a plain matmul of
// N/2 columns into `y`.
inline MatmulArgs swiglu_half(const MatmulArgs& a, int half, float* y) {
  MatmulArgs p = a;
  const int64_t I = a.N / 2;
  if (a.num_parts == 2) {
    p.w = a.part_w[half];
    p.w_dtype = a.part_w_dtype[half];
  } else {
    p.w = static_cast<const char*>(a.w) + dtype_bytes(a.w_dtype, half * I * a.K);
  }
  p.residual = nullptr;
  p.y = y;
  p.N = I;
  p.num_parts = 0;
  p.epilogue = MatmulEpilogue::None;
  return p;
}

// sum = x + residual (when residual is given); out = sum * rsqrt(mean(sum²) + eps) * weight.
// sum_out (nullable) receives sum and may alias x or residual; out may alias x.
// x, residual, sum_out, out: [rows, dim] f32; weight: [dim] in weight_dtype.
struct RmsNormArgs {
  const float* x;
  const float* residual;  // nullable
  float* sum_out;         // nullable
  const void* weight;
  DType weight_dtype;
  float* out;
  int64_t rows, dim;
  float eps;
};

// Qwen3's QK-norm fused with RoPE, in place: for each token t and each head of q [T, Hq, D] and
// k [T, Hkv, D]: x = rmsnorm(x) * norm_weight, then rotate-half RoPE at position positions_host[t]:
//   for i < D/2, a = pos * inv_freq_host[i], c = attention_factor·cos a, s = attention_factor·sin a:
//   x'[i] = x[i]·c − x[i+D/2]·s,   x'[i+D/2] = x[i+D/2]·c + x[i]·s.
// inv_freq_host holds the per-dimension inverse frequencies in double (plain RoPE: theta^(-2i/D);
// YaRN: its interpolation/extrapolation blend), attention_factor YaRN's mscale (1 for plain RoPE);
// both come from src/runtime/rope.ts, so every backend rotates with the same frequencies.
// Either weight may be null (plain RoPE without norm for that tensor).
struct QkNormRopeArgs {
  float* q;
  float* k;
  const void* q_weight;  // [D], nullable
  const void* k_weight;  // [D], nullable
  DType weight_dtype;
  const int32_t* positions_host;  // [T]
  const double* inv_freq_host;    // [D/2]
  int64_t num_tokens, num_q_heads, num_kv_heads, head_dim;
  float eps, attention_factor;
};

// out = silu(gate) * up, elementwise over [rows, dim]. out may alias gate or up.
struct SwigluArgs {
  const float* gate;
  const float* up;
  float* out;
  int64_t rows, dim;
};

// Mixture-of-experts routing, per token t: p = softmax(logits[t, :E]); the k experts of largest
// logit (equal logits: lower expert index first) go to ids[t, 0..k) in that order, with weights
// p[id] (renormalize: p[id] / Σ over the k chosen). Selection on logits, not on rounded
// probabilities, so the choice is the same on every backend. logits [T, E] f32; ids [T, k] i32;
// weights [T, k] f32; all device memory (the router's matmul output stays on the device).
struct MoeRouteArgs {
  const float* logits;
  int32_t* ids;
  float* weights;
  int64_t num_tokens, num_experts, top_k;
  bool renormalize;  // Qwen3-MoE's norm_topk_prob
};

// Expert-grouped matmul (ggml's mul_mat_id): for each token t and slot j < k, with e = ids[t, j],
//   y[t, j, :] = x_t · W[e]ᵀ,   x_t = x[t, :] (x_per_slot false) or x[t, j, :] (x_per_slot true).
// W [E, N, K] stacks the experts' [N, K] matrices. Slots are grouped by expert, so each chosen
// expert's matrix is read once per call however many tokens chose it; an unchosen one not at all.
// ids come from the device (moe_route): a slot whose id is outside [0, E) gets y = 0.
// x [T, K] or [T, k, K] f32, y [T, k, N] f32; ids [T, k] i32.
struct MoeMatmulArgs {
  const float* x;
  bool x_per_slot;
  const void* w;
  DType w_dtype;
  const int32_t* ids;
  float* y;
  int64_t num_tokens, top_k, num_experts, N, K;
};

// The experts' weighted sum: out[t, :] = residual[t, :] + Σ_{j<k} weights[t, j] · y[t, j, :], summed
// in slot order. y [T, k, N], weights [T, k], out and residual [T, N] f32; residual nullable and
// may alias out.
struct MoeCombineArgs {
  const float* y;
  const float* weights;
  const float* residual;
  float* out;
  int64_t num_tokens, top_k, N;
};

// A paged KV cache for one layer: num_blocks blocks of block_size tokens, each token
// [num_kv_heads, head_dim], for K and for V. Slot s = block * block_size + offset.
struct KvCacheView {
  void* k;
  void* v;
  DType dtype;  // F32, BF16, F16 or FP8_E4M3
  int64_t num_blocks, block_size, num_kv_heads, head_dim;
  // FP8_E4M3 only: a stored element e means e · scale (kv_write stores x / scale); 1 for the others.
  float k_scale = 1.0f, v_scale = 1.0f;
};

// cache.{k,v}[slots_host[t]] = k[t], v[t];  k, v: [T, Hkv, D] f32.
struct KvWriteArgs {
  KvCacheView cache;
  const float* k;
  const float* v;
  const int32_t* slots_host;  // [T], each < num_blocks * block_size
  int64_t num_tokens;
};

// Causal attention of new query tokens over a paged cache, for a batch of sequences.
// Sequence s owns query rows [q_start_host[s], q_start_host[s+1]) of q/out and has kv_len_host[s]
// tokens in the cache, its new tokens included (kv_write ran first). Query i of a sequence with
// q_len new tokens sits at position kv_len - q_len + i and attends keys 0..that position.
// Key j of sequence s is at block block_tables_host[s * max_blocks_per_seq + j / block_size],
// offset j % block_size. Query head h reads KV head h / (num_q_heads / num_kv_heads).
// Decode is the case q_len = 1 for every sequence; a prefill chunk may follow cached tokens.
struct AttentionArgs {
  KvCacheView cache;
  const float* q;  // [T, Hq, D]
  float* out;      // [T, Hq, D]
  int64_t num_seqs, num_q_heads, max_blocks_per_seq, num_tokens;
  const int32_t* q_start_host;       // [num_seqs + 1], q_start[0] = 0, q_start[num_seqs] = T
  const int32_t* kv_len_host;        // [num_seqs], kv_len ≥ q_len
  const int32_t* block_tables_host;  // [num_seqs, max_blocks_per_seq]
  float scale;                       // usually 1/sqrt(head_dim)
};

// Per-row sampling parameters. temperature 0 = greedy (argmax, lowest index on ties).
// Order: logit bias → token mask → penalties → /temperature → top-k → top-p → min-p → draw.
// Filters keep every token whose value reaches the threshold (ties kept), so the kept set does not
// depend on iteration order. Masked tokens are never drawn, whatever the other parameters.
// The draw is Gumbel-max: argmax_i(l_i/T + G_i) over kept tokens, G_i = -log(-log(u_i)),
// u_i = philox4x32_10(key = seed, counter = (offset, i)), so a (seed, offset) pair always gives the
// same token for the same logits on every backend.
//
// The fields are listed once, here: X(name, C type, TypeScript name). The struct, the
// addon's parsing of the params Float64Array (one number per field per row, in this order) and the
// layout the addon exports as `sampleParamFields` all expand this list; src/runtime/ops.ts
// refuses to load an addon whose exported layout differs from its own (test/runtime/sample-layout.test.ts).
#define PARALON_SAMPLING_FIELDS(X)                                                         \
  X(temperature, float, "temperature")               /* 0 = greedy */                          \
  X(top_k, int32_t, "topK")                          /* <= 0 or >= vocab: off */               \
  X(top_p, float, "topP")                            /* >= 1: off */                           \
  X(min_p, float, "minP")                            /* <= 0: off */                           \
  X(presence_penalty, float, "presencePenalty")      /* once, on tokens generated so far */    \
  X(frequency_penalty, float, "frequencyPenalty")    /* per occurrence in generated tokens */  \
  X(repetition_penalty, float, "repetitionPenalty")  /* 1: off; l > 0 ? l / r : l * r */       \
  X(seed, uint64_t, "seed")                          /* the draw's Philox key */               \
  X(offset, uint64_t, "offset")                      /* the row's step counter */

struct SamplingParams {
#define PARALON_SAMPLING_MEMBER(name, type, js) type name;
  PARALON_SAMPLING_FIELDS(PARALON_SAMPLING_MEMBER)
#undef PARALON_SAMPLING_MEMBER
};

// The index of each field in a row of the params Float64Array: SamplingField::top_k, ...
struct SamplingField {
  enum : int {
#define PARALON_SAMPLING_INDEX(name, type, js) name,
    PARALON_SAMPLING_FIELDS(PARALON_SAMPLING_INDEX)
#undef PARALON_SAMPLING_INDEX
        count
  };
};

// Penalty inputs of row r: entries [penalty_start_host[r], penalty_start_host[r+1]) of
// penalty_tokens_host (unique token ids seen in prompt or output) and penalty_counts_host
// (occurrences in the output; 0 = prompt only).
// Logit bias of row r: entries [bias_start_host[r], bias_start_host[r+1]) of bias_tokens_host
// (unique token ids, each < vocab) and bias_values_host; logit += bias.
// Token mask of row r: none when mask_row_host is null or mask_row_host[r] < 0; else the words
// masks_host[mask_row_host[r] · mask_words …] with mask_words = ceil(vocab / 32): bit (t & 31) of
// word (t >> 5) set = token t allowed (xgrammar's bitmask layout); a masked token's logit becomes −∞.
// The addon refuses a mask that allows no token below vocab (bits past vocab are ignored).
// Targets (prompt scoring): when target_host is set, row r's token target_host[r] (−1: none) is
// scored under the raw logits, beside the draw: its logprob and its rank, 1 + the number of tokens
// whose raw logit is strictly larger (vLLM's rank).
struct SampleArgs {
  float* logits;  // [rows, vocab], used as scratch (bias, mask and penalties applied in place)
  int64_t rows, vocab;
  const SamplingParams* params_host;     // [rows]
  const int32_t* penalty_start_host;     // [rows + 1]
  const int32_t* penalty_tokens_host;
  const int32_t* penalty_counts_host;
  const int32_t* bias_start_host;        // [rows + 1] or null (no bias)
  const int32_t* bias_tokens_host;
  const float* bias_values_host;
  const int32_t* mask_row_host;          // [rows] or null (no masks)
  const int32_t* masks_host;             // [num_masks, mask_words]
  int64_t num_masks;
  int32_t num_top;  // top-N alternatives wanted (0..20)
  // Host outputs. Logprobs are log_softmax of the raw logits: before bias, mask, penalties and
  // temperature (vLLM's default, raw_logprobs), so a masked token may appear among the top-N.
  int32_t* token_host;        // [rows]
  float* logprob_host;        // [rows]
  int32_t* top_token_host;    // [rows, num_top], descending logprob
  float* top_logprob_host;    // [rows, num_top]
  const int32_t* target_host;   // [rows] or null (no targets)
  float* target_logprob_host;   // [rows], written where target_host[r] >= 0
  int32_t* target_rank_host;    // [rows], written where target_host[r] >= 0
};

inline int64_t mask_words(int64_t vocab) { return (vocab + 31) / 32; }

// Graphs: a sequence of ops recorded once (CUDA stream capture; on the CPU, the ops' arguments) and replayed as one launch with new
// values of its int32 inputs (the step metadata: token ids, positions, slots, block tables, ...).
// During a capture, a *_host pointer that lies inside one of the inputs is read again at every
// replay; every other host array is a constant of the graph. Nothing runs while capturing.
struct GraphInput {
  const int32_t* host;  // the capture's copy of the input (valid until end_capture)
  size_t length;        // elements
};
class BackendGraph {
 public:
  virtual ~BackendGraph() = default;
};

// Every op of the contract, for Backend::supports. The core ops (embedding … sample) are pure virtual:
// every backend runs them. An op added later may land on one backend first: Backend declares it with
// a body that throws (unsupported), and a backend that runs it overrides the method and supports().
enum class Op : int32_t {
  Embedding, Matmul, RmsNorm, QkNormRope, Swiglu, KvWrite, Attention, Sample, MoeRoute, MoeMatmul, MoeCombine,
  MatmulSwiglu  // matmul with MatmulEpilogue::Swiglu
};
inline const char* op_name(Op op) {
  switch (op) {
    case Op::Embedding: return "embedding";
    case Op::Matmul: return "matmul";
    case Op::RmsNorm: return "rmsnorm";
    case Op::QkNormRope: return "qkNormRope";
    case Op::Swiglu: return "swiglu";
    case Op::KvWrite: return "kvWrite";
    case Op::Attention: return "attention";
    case Op::Sample: return "sample";
    case Op::MoeRoute: return "moeRoute";
    case Op::MoeMatmul: return "moeMatmul";
    case Op::MoeCombine: return "moeCombine";
    case Op::MatmulSwiglu: return "matmulSwiglu";
  }
  return "?";
}
constexpr Op kAllOps[] = {Op::Embedding, Op::Matmul, Op::RmsNorm,   Op::QkNormRope, Op::Swiglu,    Op::KvWrite,
                          Op::Attention, Op::Sample, Op::MoeRoute, Op::MoeMatmul,  Op::MoeCombine,
                          Op::MatmulSwiglu};

class Backend;
// The body of an optional op on a backend that does not override it (defined below).
[[noreturn]] inline void unsupported(const Backend& b, Op op);

// The ops a backend may leave out: supports() answers false for them unless the backend says otherwise.
inline bool is_optional(Op op) {
  return op == Op::MoeRoute || op == Op::MoeMatmul || op == Op::MoeCombine || op == Op::MatmulSwiglu;
}

// A backend: memory, copies and the ops. Every method runs on the device's worker thread in
// stream order, except alloc and supports (called from the JS thread), which must be thread-safe.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;         // "cpu", "cuda:0", "cuda-sim"
  virtual std::string description() const = 0;  // human-readable: CPU model and threads, GPU name
  virtual void* alloc(size_t bytes) = 0;         // throws on failure
  virtual void free(void* ptr) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;  // blocking
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;          // device to device
  virtual void synchronize() = 0;
  // True when device pointers are plain host pointers (cpu): mapped files are then used in place.
  virtual bool host_memory() const = 0;

  virtual void embedding(const EmbeddingArgs&) = 0;
  virtual void matmul(const MatmulArgs&) = 0;
  virtual void rmsnorm(const RmsNormArgs&) = 0;
  virtual void qk_norm_rope(const QkNormRopeArgs&) = 0;
  virtual void swiglu(const SwigluArgs&) = 0;
  virtual void kv_write(const KvWriteArgs&) = 0;
  virtual void attention(const AttentionArgs&) = 0;
  virtual void sample(const SampleArgs&) = 0;  // synchronous: host outputs are filled on return

  // Optional ops: unsupported unless a backend overrides them (and says so in supports()).
  virtual void moe_route(const MoeRouteArgs&) { unsupported(*this, Op::MoeRoute); }
  virtual void moe_matmul(const MoeMatmulArgs&) { unsupported(*this, Op::MoeMatmul); }
  virtual void moe_combine(const MoeCombineArgs&) { unsupported(*this, Op::MoeCombine); }

  // Whether this backend runs `op` with its weight (or table, or cache) operand in `dtype`. The addon
  // asks before queueing, so an unsupported combination is a clear error naming op, dtype and backend,
  // never a stub. The default answers for the core ops on the float weight dtypes every backend has.
  // Optional ops (is_optional) answer false here: a backend that runs one overrides supports().
  virtual bool supports(Op op, DType dtype) const {
    return !is_optional(op) && (dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16);
  }

  // Eager steps: the int32 host metadata a step's ops will read (token ids, positions, slots, q starts,
  // kv lengths, block tables), given before the step's ops so that a device backend uploads it in one
  // copy; an op that then passes the same bytes finds them on the device. Ignored while capturing
  // (graph inputs are uploaded per replay) and by backends that read host memory (the default).
  virtual void stage_step(const std::vector<GraphInput>& inputs) { (void)inputs; }
  // Host-to-device copies made for op metadata (stage_step, per-op staging, constants) since the
  // backend was created: what tests and gpu:check count per step. 0 on host-memory backends.
  virtual uint64_t metadata_uploads() const { return 0; }

  // Graphs (see GraphInput). The defaults throw: the CUDA backends and the CPU (cpu/graph.h) record graphs.
  virtual bool supports_graphs() const { return false; }
  virtual void begin_capture(const std::vector<GraphInput>& inputs);
  // Ends the capture. Returns the graph, or null when `discard`; throws when an op failed while
  // capturing (the capture is then discarded too).
  virtual std::unique_ptr<BackendGraph> end_capture(bool discard);
  // Uploads `values` (the inputs concatenated, lengths as captured) and runs the graph.
  virtual void replay(BackendGraph& graph, const int32_t* values);
};

// Errors raised by backends carry the op name: "matmul: CUDA error ... (file:line)".
struct OpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The body of an optional op on a backend that does not override it (supports() already said no, so
// this is reached only by a caller that skipped the addon's check).
[[noreturn]] inline void unsupported(const Backend& b, Op op) {
  throw OpError(std::string(op_name(op)) + ": not supported on the " + b.name() + " backend");
}

inline void Backend::begin_capture(const std::vector<GraphInput>&) {
  throw OpError("graphs: the " + name() + " backend does not record graphs");
}
inline std::unique_ptr<BackendGraph> Backend::end_capture(bool) {
  throw OpError("graphs: the " + name() + " backend does not record graphs");
}
inline void Backend::replay(BackendGraph&, const int32_t*) {
  throw OpError("graphs: the " + name() + " backend does not record graphs");
}

// Backend factories. Each throws OpError with a clear reason when unavailable
// ("no CUDA device (cudaErrorInsufficientDriver)", "built without CUDA").
// num_threads ≤ 0: one per core. fast_precision: matmuls of bf16 weights with activations rounded to
// bf16 on AMX-BF16 tiles or AVX512-BF16 dot products (and prefill attention over a bf16 cache with
// bf16 dot products), and of quantized weights with activations quantized to int8
// blocks and integer dot products (AVX512-VNNI or AVX2), where cpu_fast_precision_available() (else exact).
std::unique_ptr<Backend> make_cpu_backend(int num_threads, bool fast_precision);
bool cpu_fast_precision_available();  // AVX512-BF16 in this build and CPU, AMX-BF16, or AVX2 / AVX512-VNNI
std::unique_ptr<Backend> make_cuda_backend(int device_index);
std::unique_ptr<Backend> make_cuda_sim_backend();
int cuda_device_count(std::string* reason);  // 0 with a reason when none

}  // namespace paralon
