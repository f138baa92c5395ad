#include "kernels.h"
#include "fp8_e4m3.h"
#include "variants.h"
#include "vec16.cuh"

// Causal paged attention (varlen batch, GQA, f32, bf16, f16 or fp8 cache): a decode kernel plus a
// merge, and two prefill kernels (SIMT for the f32, f16 and fp8 caches, tensor cores for the bf16 cache).
// An fp8 cache's per-tensor scales are folded in rather than applied per element: k_scale into the
// softmax scale of q, v_scale into the final 1/l (both are 1, exactly, for the float caches):
//
// 1. decode_split_kernel — sequences with one new token (flash-decoding).
//    Grid (splits, Hkv, decode sequences), 128 threads. A CTA owns one KV head of one sequence and a
//    contiguous range of its context (split_len keys, a multiple of the 64-key tile) and serves all
//    G = Hq/Hkv query heads of that KV head at once, so each K/V row is read once per KV head.
//    The CTA's 4 warps each run their own online softmax over steps of KS keys taken round-robin
//    (no barrier inside the loop). A row of D elements is L = D / E lanes of one 16-byte load each
//    (E = 8 bf16/f16 or 4 f32 elements), so a warp load covers P = 32 / L keys; per step each lane
//    issues all its K and V loads (kLoads keys each: 8 at G ≤ 4, 4 at G ≤ 8, 2 (1 at D = 64) at G ≤ 16) before
//    using any. The L lanes of a key dot their chunks with the G queries (f32 in shared memory,
//    pre-scaled by scale·log2 e) and reduce by xor shuffles; the step's max over the P key groups
//    updates (m, l) per head; the lane that loaded a K chunk multiplies the V chunk at the same
//    columns by p, so P never leaves registers. At the end the key groups are summed by shuffles
//    and the 4 warps' (m, l, acc) merged through shared memory, one thread per (head, element).
//    With one split the CTA writes the normalised output; otherwise (acc, m, l) go to scratch and the
//    splits are combined either in the same launch (fused, the default where it pays): each CTA
//    fences its partials and takes a ticket (atomicAdd on a per-(sequence, KV head) counter); the
//    CTA that draws the last ticket merges that KV head's G query heads and resets the counter for
//    the next launch — or by merge_kernel (one CTA per (query head, sequence), one thread per d).
//    Fusing saves a kernel boundary per layer (a launch in eager mode, the drain and refill of the
//    GPU between two graph nodes: ~2 µs) at the cost of a tail in which one CTA per (sequence, KV
//    head) merges G·D outputs with 128 threads, 4 columns each (16-byte loads of the partials), where
//    merge_kernel gives each output its own thread. While G·D ≤ 512 each thread of the tail has one
//    4-column group, so the tail takes merge_kernel's L2 round trips without its boundary; beyond,
//    the tail's rounds outweigh the boundary and launch_decode keeps merge_kernel (fused_merge,
//    bench/decode-model.ts decodeMergeModel).
//    Splits are chosen from the longest context and the SM count: about 2 waves of CTAs, at least
//    one tile per split. Traffic: 2 · kv_len · D · sizeof(cache) per (sequence, KV head), once.
//
// Prefill — sequences with several new tokens. The (sequence, 64-query tile) list is built on the
// host, longest key ranges first; a CTA of 128 threads owns one tile × one query head and reads only
// the keys up to its last query's position (later key tiles are skipped, not masked).
//
// 2. prefill_kernel — f32 and f16 caches: flash-attention 2, SIMT f32 throughout (exact against the
//    f32 reference). Grid (tiles, Hq). Per 32-key tile the CTA loads K and V through the block table
//    into shared memory (widened to f32, rows padded to D+4 floats so the float4 reads below are bank-conflict
//    free), then thread (r, c) = (tid / 8, tid % 8) computes the 4×4 scores of queries r + 16i and
//    keys c + 8j (8 LDS.128 per 64 FMA), applies the causal mask (query i sits at position
//    kv_len − q_len + i), updates its rows' online softmax with the 8 lanes sharing the rows (xor
//    shuffles 1, 2, 4), stores P to shared memory, and accumulates O[4 rows][columns 4c + 32j .. +3]
//    += P·V (20 LDS.128 per 256 FMA at D = 128).
//    Shared memory: (64 + 2·32)·(D+4)·4 + 64·36·4 bytes = 75 KB at D = 128 (opt-in), 43 KB at D = 64.
//
// 3. prefill_mma_kernel — bf16 cache: flash-attention 2 on tensor cores (mma.sync m16n8k16, bf16
//    operands, f32 accumulators). Grid (Hq, tiles): the G query heads of a KV head are neighbouring
//    CTAs, so all but the first find its K/V tiles in L2. Warp w owns queries 16w .. 16w+15, whose
//    Q (f32, scaled by scale·log2 e, rounded to bf16) stays in registers as A fragments. Per 64-key
//    tile each warp computes S = Q·Kᵀ (16 × 64: D/4 ldmatrix_x4, D/2 MMAs), masks it only where the
//    tile crosses its queries' diagonal, updates the online softmax in f32 (a row's 64 scores sit
//    in the 4 lanes of a quad: 2 xor shuffles), rounds P to bf16 — S's accumulator layout is P's
//    A fragment layout, so P never leaves registers — and adds P·V into O (16 × D f32 registers;
//    D/4 ldmatrix_x4_trans, D/2 MMAs). K/V tiles are gathered through the block table with 16-byte
//    cp.async into two stages: tile t+1 lands while tile t is multiplied, one barrier per tile.
//    Rows are D bf16 with their 16-byte chunks XOR-swizzled by row % 8, so ldmatrix is bank-conflict
//    free. Shared memory: 2 stages × (K + V) × 64 × D × 2 bytes = 64 KB at D = 128 (opt-in), 32 KB
//    at D = 64. Rounding: Q and P to bf16 (relative 2^−9 each); products and sums in f32.
//    Traffic per CTA: 4·D bytes of K and V per key of its range, its Q and O (f32) once.
//
// Both prefill kernels re-read the K/V of a KV head once per query head of its group, through L2.
// Keys whose block-table entry lies outside [0, num_blocks) are masked out: no load leaves the cache
// (decode redirects a masked key's load to row 0, prefill skips it). head_dim 64 and 128 are
// supported; other sizes are rejected with an OpError, as are G > 16 and caches of 2^31+ rows.

#include <algorithm>
#include <vector>

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kThreads = 128;
constexpr int kDecodeTile = 64;
constexpr int kMaxGroup = 16;
constexpr int kPrefillQ = 64;
constexpr int kPrefillK = 32;

// Four consecutive elements (16 bytes of f32, 8 of f16, 4 of fp8) widened to f32, for q and the SIMT
// prefill's f32/f16/fp8 tiles; decode reads whole 16-byte chunks (vec16.cuh), the bf16 prefill uses cp.async.
struct Half4 {  // four f16 bit patterns
  uint2 bits;
};
struct Fp8x4 {  // four e4m3 bytes
  uint32_t bits;
};
__device__ __forceinline__ float4 load_raw4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ Half4 load_raw4(const __half* p) { return Half4{*reinterpret_cast<const uint2*>(p)}; }
__device__ __forceinline__ Fp8x4 load_raw4(const fp8_e4m3* p) { return Fp8x4{*reinterpret_cast<const uint32_t*>(p)}; }
__device__ __forceinline__ float4 widen(float4 v) { return v; }
__device__ __forceinline__ float4 widen(Fp8x4 raw) {  // unscaled: the scales are folded in (see the top)
  return make_float4(e4m3_to_f32(raw.bits & 0xffu), e4m3_to_f32((raw.bits >> 8) & 0xffu),
                     e4m3_to_f32((raw.bits >> 16) & 0xffu), e4m3_to_f32(raw.bits >> 24));
}
__device__ __forceinline__ float half_bits_to_f32(uint32_t bits) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
}
__device__ __forceinline__ float4 widen(Half4 raw) {
  return make_float4(half_bits_to_f32(raw.bits.x & 0xffffu), half_bits_to_f32(raw.bits.x >> 16),
                     half_bits_to_f32(raw.bits.y & 0xffffu), half_bits_to_f32(raw.bits.y >> 16));
}
template <typename C>
__device__ __forceinline__ float4 load4(const C* p) {
  return widen(load_raw4(p));
}
__device__ __forceinline__ float dot4(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }

// What every kernel needs to find a key: the cache and the sequence metadata (device copies).
template <typename C>
struct Paged {
  const C* k;
  const C* v;
  const int32_t* block_tables;
  int max_blocks, block_size, num_blocks, num_kv_heads;

  // Row (slot · Hkv + h, D elements each) of key j for KV head h in sequence s, or -1 when its
  // block is invalid. The host checks that rows fit in 31 bits.
  __device__ __forceinline__ int row(int s, int j, int h) const {
    const int bi = j / block_size;
    if (bi >= max_blocks) return -1;
    const int b = block_tables[static_cast<int64_t>(s) * max_blocks + bi];
    if (b < 0 || b >= num_blocks) return -1;
    return (b * block_size + j % block_size) * num_kv_heads + h;
  }
};

struct SeqMeta {
  const int32_t* q_start;
  const int32_t* kv_len;
  const float* q;
  float* out;
  int num_q_heads, group;
  float scale_log2;  // scale · k_scale · log2(e): scores live in the exp2 domain
  float v_scale;     // the cache's V scale (fp8), applied with 1/l
};

// ------------------------------------------------------------------------------------------------
// Decode
// ------------------------------------------------------------------------------------------------

// Keys a lane's warp takes per step: kLoads keys per key group, all K and V loads of the step issued
// before the first is used (2·kLoads 16-byte loads in flight per lane). Fewer at large groups, whose
// per-key scores and accumulators (GP each) take the registers (ptxas: no spills at sm_90a).
template <int D, int GP>
constexpr int decode_loads() {
  return GP <= 4 ? 8 : (GP <= 8 ? 4 : (D == 64 ? 1 : 2));
}

// out[h, d .. d + W) (W = 1 or 4 columns) of one decode sequence from its `splits` partials (acc, m,
// l) at part index base + i: out = Σ acc_i·2^(m_i−M) / Σ l_i·2^(m_i−M). L2 loads (__ldcg): other
// CTAs wrote the partials, and L1 is not coherent with their SMs.
template <int D, int W>
__device__ __forceinline__ void merge_splits(const SeqMeta& meta, int64_t token, int h, int d, int splits, int64_t base,
                                             const float* part_acc, const float* part_ml) {
  static_assert(W == 1 || W == 4, "one column or a 16-byte group");
  float m = -INFINITY;
#pragma unroll 4
  for (int i = 0; i < splits; ++i) m = fmaxf(m, __ldcg(part_ml + (base + i) * 2));
  const float ref = m == -INFINITY ? 0.0f : m;
  float l = 0.0f, o[W] = {};
#pragma unroll 4
  for (int i = 0; i < splits; ++i) {
    const float w = exp2f(__ldcg(part_ml + (base + i) * 2) - ref);
    l += __ldcg(part_ml + (base + i) * 2 + 1) * w;
    const float* acc = part_acc + (base + i) * D + d;
    if constexpr (W == 4) {
      const float4 a = __ldcg(reinterpret_cast<const float4*>(acc));
      o[0] += a.x * w;
      o[1] += a.y * w;
      o[2] += a.z * w;
      o[3] += a.w * w;
    } else {
      o[0] += __ldcg(acc) * w;
    }
  }
  float* out = meta.out + (token * meta.num_q_heads + h) * D + d;
#pragma unroll
  for (int j = 0; j < W; ++j) out[j] = l > 0.0f ? o[j] / l : 0.0f;
}

// tickets: null, or one zeroed counter per (decode sequence, KV head) for the fused merge (splits > 1).
template <int D, int GP, typename C>
__global__ void __launch_bounds__(kThreads) decode_split_kernel(Paged<C> kv, SeqMeta meta, const int32_t* seqs,
                                                                int split_len, float* part_acc, float* part_ml,
                                                                int* tickets) {
  static_assert(D == 64 || D == 128, "head_dim");
  using V16 = Vec16<C>;
  constexpr int E = V16::kElems;           // elements per 16-byte load
  constexpr int L = D / E;                 // lanes per row (a key group)
  static_assert(L >= 2 && L <= 32 && 32 % L == 0, "a row must span a power-of-two share of the warp");
  constexpr int P = 32 / L;                // keys per warp load (key groups)
  constexpr int kLoads = decode_loads<D, GP>();
  constexpr int KS = P * kLoads;           // keys per warp step
  constexpr int kWarps = kThreads / 32;
  __shared__ __align__(16) float q_s[GP][D];
  __shared__ __align__(16) float red_acc[kWarps][GP][D];  // each warp's partial output
  __shared__ float red_m[kWarps][GP], red_l[kWarps][GP];

  const int split = blockIdx.x, kvh = blockIdx.y, item = blockIdx.z, splits = gridDim.x;
  const int s = seqs != nullptr ? seqs[item] : item;  // null: every sequence decodes (see launch_typed)
  const int64_t token = meta.q_start[s];
  const int kv_len = meta.kv_len[s];
  const int begin = split * split_len, end = min(begin + split_len, kv_len);
  const int G = meta.group;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int c = lane % L, kg = lane / L;  // this lane's 16-byte column of a row, and its key group

  for (int i = tid; i < GP * D / 4; i += kThreads) {
    const int g = i / (D / 4), col = 4 * (i % (D / 4));
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (g < G) {
      v = load4(meta.q + (token * meta.num_q_heads + kvh * G + g) * D + col);
      v.x *= meta.scale_log2; v.y *= meta.scale_log2; v.z *= meta.scale_log2; v.w *= meta.scale_log2;
    }
    *reinterpret_cast<float4*>(&q_s[g][col]) = v;
  }
  __syncthreads();  // q is staged

  // Each warp runs its own online softmax over its keys (steps of KS keys, round-robin over the
  // warps): no barrier inside the loop. A key group's L lanes share the key's score and p, and lane
  // (c, kg) multiplies exactly the V chunk whose K chunk it dotted, so p never leaves registers.
  float m[GP], l[GP], acc[GP][E];
#pragma unroll
  for (int g = 0; g < GP; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < E; ++e) acc[g][e] = 0.0f;
  }

  for (int k0 = begin + warp * KS; k0 < end; k0 += kWarps * KS) {
    int rows[kLoads];
    typename V16::Raw k_raw[kLoads], v_raw[kLoads];
#pragma unroll
    for (int it = 0; it < kLoads; ++it) {
      const int j = k0 + it * P + kg;
      rows[it] = j < end ? kv.row(s, j, kvh) : -1;
      k_raw[it] = V16::zero();
      v_raw[it] = V16::zero();
    }
#pragma unroll
    for (int it = 0; it < kLoads; ++it)  // masked keys load nothing (a cache row nobody wrote)
      if (rows[it] >= 0) k_raw[it] = V16::load(kv.k + static_cast<int64_t>(rows[it]) * D + c * E);
#pragma unroll
    for (int it = 0; it < kLoads; ++it)
      if (rows[it] >= 0) v_raw[it] = V16::load(kv.v + static_cast<int64_t>(rows[it]) * D + c * E);

    // Scores: each lane dots its chunk with the G queries, L lanes reduce by xor shuffles.
    float sc[kLoads][GP];
#pragma unroll
    for (int it = 0; it < kLoads; ++it) {
      float k[E];
      V16::widen(k_raw[it], k);
#pragma unroll
      for (int g = 0; g < GP; ++g) {
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < E; e += 4) {
          const float4 q4 = *reinterpret_cast<const float4*>(&q_s[g][c * E + e]);
          dot += q4.x * k[e] + q4.y * k[e + 1] + q4.z * k[e + 2] + q4.w * k[e + 3];
        }
#pragma unroll
        for (int off = L / 2; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
        sc[it][g] = rows[it] >= 0 ? dot : -INFINITY;
      }
    }

    // Online softmax per query head over the step's keys (max across the key groups), then PV.
#pragma unroll
    for (int g = 0; g < GP; ++g) {
      float mx = -INFINITY;
#pragma unroll
      for (int it = 0; it < kLoads; ++it) mx = fmaxf(mx, sc[it][g]);
#pragma unroll
      for (int off = 16; off >= L; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_new = fmaxf(m[g], mx);
      const float ref = m_new == -INFINITY ? 0.0f : m_new;  // no valid key yet: adds nothing
      const float alpha = exp2f(m[g] - ref);
      m[g] = m_new;
      l[g] *= alpha;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[g][e] *= alpha;
#pragma unroll
      for (int it = 0; it < kLoads; ++it) {
        sc[it][g] = exp2f(sc[it][g] - ref);
        l[g] += sc[it][g];
      }
    }
#pragma unroll
    for (int it = 0; it < kLoads; ++it) {
      float v[E];
      V16::widen(v_raw[it], v);  // a masked key's chunk is zero and its p is 0
#pragma unroll
      for (int g = 0; g < GP; ++g)
#pragma unroll
        for (int e = 0; e < E; ++e) acc[g][e] += sc[it][g] * v[e];
    }
  }

  // The warp's (m, l, acc): m is warp-uniform; l and acc are summed over the key groups.
#pragma unroll
  for (int g = 0; g < GP; ++g) {
#pragma unroll
    for (int off = 16; off >= L; off >>= 1) {
      l[g] += __shfl_xor_sync(0xffffffffu, l[g], off);
#pragma unroll
      for (int e = 0; e < E; ++e) acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], off);
    }
    if (kg == 0) {
#pragma unroll
      for (int e = 0; e < E; e += 4)
        *reinterpret_cast<float4*>(&red_acc[warp][g][c * E + e]) =
            make_float4(acc[g][e], acc[g][e + 1], acc[g][e + 2], acc[g][e + 3]);
    }
    if (lane == 0) {
      red_m[warp][g] = m[g];
      red_l[warp][g] = l[g];
    }
  }
  __syncthreads();  // every warp's partial state is in shared memory

  // Merge the warps, one thread per (query head, element): coalesced output rows.
  for (int i = tid; i < G * D; i += kThreads) {
    const int g = i / D, d = i % D;
    float mw = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mw = fmaxf(mw, red_m[w][g]);
    const float ref = mw == -INFINITY ? 0.0f : mw;
    float lw = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = exp2f(red_m[w][g] - ref);
      lw += red_l[w][g] * f;
      o += red_acc[w][g][d] * f;
    }
    const int h = kvh * G + g;
    if (splits == 1) {
      meta.out[(token * meta.num_q_heads + h) * D + d] = lw > 0.0f ? o * meta.v_scale / lw : 0.0f;
    } else {
      const int64_t part = (static_cast<int64_t>(item) * meta.num_q_heads + h) * splits + split;
      part_acc[part * D + d] = o * meta.v_scale;
      if (d == 0) {
        part_ml[part * 2] = mw;
        part_ml[part * 2 + 1] = lw;
      }
    }
  }
  if (splits == 1 || tickets == nullptr) return;

  // Fused merge. Release: each thread's partial stores are made visible device-wide (fence) before
  // the barrier, and thread 0 takes the ticket after it; the CTA that draws splits − 1 is the last of
  // its (sequence, KV head), every other CTA's partials are visible to it, and nobody else touches
  // the counter again in this launch, so it resets it for the next one.
  __shared__ int is_last;
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    int* ticket = tickets + static_cast<int64_t>(item) * gridDim.y + kvh;
    is_last = atomicAdd(ticket, 1) == splits - 1;
    if (is_last) atomicExch(ticket, 0);
  }
  __syncthreads();  // is_last is visible to the CTA
  if (!is_last) return;
  __threadfence();  // acquire: the partials are read after the ticket
  for (int i = tid; i < G * D / 4; i += kThreads) {  // 4 columns a thread, one group each while G·D ≤ 512
    const int g = i / (D / 4), d = 4 * (i % (D / 4)), h = kvh * G + g;
    merge_splits<D, 4>(meta, token, h, d, splits, (static_cast<int64_t>(item) * meta.num_q_heads + h) * splits,
                       part_acc, part_ml);
  }
}

// Combines the splits of one (query head, decode sequence): out = Σ acc_i·2^(m_i−M) / Σ l_i·2^(m_i−M).
template <int D>
__global__ void __launch_bounds__(D) merge_kernel(SeqMeta meta, const int32_t* seqs, int splits,
                                                  const float* part_acc, const float* part_ml) {
  const int h = blockIdx.x, item = blockIdx.y, d = threadIdx.x;
  const int64_t token = meta.q_start[seqs != nullptr ? seqs[item] : item];
  merge_splits<D, 1>(meta, token, h, d, splits, (static_cast<int64_t>(item) * meta.num_q_heads + h) * splits,
                     part_acc, part_ml);
}

// ------------------------------------------------------------------------------------------------
// Prefill
// ------------------------------------------------------------------------------------------------

template <int D>
constexpr size_t prefill_smem_bytes() {
  return (static_cast<size_t>(kPrefillQ + 2 * kPrefillK) * (D + 4) + kPrefillQ * (kPrefillK + 4)) * sizeof(float);
}

// tiles[2·i] = sequence, tiles[2·i + 1] = first query index of the tile within the sequence.
template <int D, typename C>
__global__ void __launch_bounds__(kThreads) prefill_kernel(Paged<C> kv, SeqMeta meta, const int32_t* tiles) {
  constexpr int kLd = D + 4;             // padded row of Q, K, V in shared memory
  constexpr int kPd = kPrefillK + 4;     // padded row of P
  constexpr int kCols = D / 32;          // float4 output columns per thread
  PARALON_DYNAMIC_SHARED(float, smem);
  float* q_s = smem;
  float* k_s = q_s + kPrefillQ * kLd;
  float* v_s = k_s + kPrefillK * kLd;
  float* p_s = v_s + kPrefillK * kLd;

  const int s = tiles[2 * blockIdx.x], i0 = tiles[2 * blockIdx.x + 1];
  const int h = blockIdx.y, kvh = h / meta.group;
  const int64_t q0 = meta.q_start[s];
  const int q_len = meta.q_start[s + 1] - meta.q_start[s];
  const int kv_len = meta.kv_len[s];
  const int first_pos = kv_len - q_len;  // position of query 0 of the chunk
  const int rows = min(kPrefillQ, q_len - i0);
  const int num_keys = min(kv_len, first_pos + i0 + rows);  // keys 0 .. last row's position
  const int tid = threadIdx.x, r = tid / 8, c = tid % 8;

  for (int i = tid; i < kPrefillQ * D / 4; i += kThreads) {
    const int row = i / (D / 4), col = 4 * (i % (D / 4));
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (row < rows) {
      v = load4(meta.q + ((q0 + i0 + row) * meta.num_q_heads + h) * D + col);
      v.x *= meta.scale_log2; v.y *= meta.scale_log2; v.z *= meta.scale_log2; v.w *= meta.scale_log2;
    }
    *reinterpret_cast<float4*>(q_s + row * kLd + col) = v;
  }

  float acc[4][kCols][4];
  float m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int j = 0; j < kCols; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
  }

  for (int k0 = 0; k0 < num_keys; k0 += kPrefillK) {
    // K and V tiles; an invalid key gets zero rows and is masked below (key_ok).
    bool key_ok[4];
    for (int i = tid; i < kPrefillK * D / 4; i += kThreads) {
      const int key = i / (D / 4), col = 4 * (i % (D / 4));
      const int j = k0 + key;
      const int row = j < num_keys ? kv.row(s, j, kvh) : -1;
      float4 kk = make_float4(0.f, 0.f, 0.f, 0.f), vv = kk;
      if (row >= 0) {
        kk = load4(kv.k + static_cast<int64_t>(row) * D + col);
        vv = load4(kv.v + static_cast<int64_t>(row) * D + col);
      }
      *reinterpret_cast<float4*>(k_s + key * kLd + col) = kk;
      *reinterpret_cast<float4*>(v_s + key * kLd + col) = vv;
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int key = k0 + c + 8 * j;
      key_ok[j] = key < num_keys && kv.row(s, key, kvh) >= 0;
    }
    __syncthreads();  // K, V (and, on the first tile, Q) are in shared memory

    float sc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) sc[i][j] = 0.0f;
#pragma unroll 4
    for (int d = 0; d < D; d += 4) {
      float4 qv[4], kv4[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) qv[i] = *reinterpret_cast<const float4*>(q_s + (r + 16 * i) * kLd + d);
#pragma unroll
      for (int j = 0; j < 4; ++j) kv4[j] = *reinterpret_cast<const float4*>(k_s + (c + 8 * j) * kLd + d);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) sc[i][j] += dot4(qv[i], kv4[j]);
    }

#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int pos = first_pos + i0 + r + 16 * i;
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int key = k0 + c + 8 * j;
        if (!key_ok[j] || key > pos) sc[i][j] = -INFINITY;
        mx = fmaxf(mx, sc[i][j]);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
      const float m_new = fmaxf(m[i], mx);
      const float ref = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = exp2f(m[i] - ref);
      m[i] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float p = exp2f(sc[i][j] - ref);
        sum += p;
        p_s[(r + 16 * i) * kPd + c + 8 * j] = p;
      }
      l[i] = l[i] * alpha + sum;  // this thread's columns only; the 8 lanes are summed at the end
#pragma unroll
      for (int j = 0; j < kCols; ++j) {
        acc[i][j][0] *= alpha; acc[i][j][1] *= alpha; acc[i][j][2] *= alpha; acc[i][j][3] *= alpha;
      }
    }
    __syncthreads();  // P is complete

#pragma unroll 2
    for (int k = 0; k < kPrefillK; k += 4) {
      float4 pv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) pv[i] = *reinterpret_cast<const float4*>(p_s + (r + 16 * i) * kPd + k);
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
        for (int j = 0; j < kCols; ++j) {
          const float4 v = *reinterpret_cast<const float4*>(v_s + (k + kk) * kLd + 4 * c + 32 * j);
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float p = kk == 0 ? pv[i].x : kk == 1 ? pv[i].y : kk == 2 ? pv[i].z : pv[i].w;
            acc[i][j][0] += p * v.x;
            acc[i][j][1] += p * v.y;
            acc[i][j][2] += p * v.z;
            acc[i][j][3] += p * v.w;
          }
        }
      }
    }
    __syncthreads();  // K, V and P are overwritten by the next tile
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float sum = l[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    sum += __shfl_xor_sync(0xffffffffu, sum, 4);
    const int row = r + 16 * i;
    if (row >= rows) continue;
    const float inv = sum > 0.0f ? meta.v_scale / sum : 0.0f;
    float* dst = meta.out + ((q0 + i0 + row) * meta.num_q_heads + h) * D;
#pragma unroll
    for (int j = 0; j < kCols; ++j) {
      *reinterpret_cast<float4*>(dst + 4 * c + 32 * j) =
          make_float4(acc[i][j][0] * inv, acc[i][j][1] * inv, acc[i][j][2] * inv, acc[i][j][3] * inv);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Prefill on tensor cores (bf16 cache)
// ------------------------------------------------------------------------------------------------

using bf16 = __nv_bfloat16;
constexpr int kMmaK = 64;  // keys per tile
static_assert(kPrefillQ == 16 * kThreads / 32, "prefill_mma_kernel: 16 queries per warp");

// Two stages of (K tile, V tile), each kMmaK rows of D bf16.
template <int D>
constexpr size_t prefill_mma_smem_bytes() {
  return 2 * 2 * static_cast<size_t>(kMmaK) * D * sizeof(bf16);
}

// Element offset of 16-byte chunk c (8 elements) of row r in a tile of D-element rows. The chunk is
// XOR-swizzled with r % 8: the 8 rows an ldmatrix matrix reads (consecutive rows, same logical
// chunk) sit in 8 different 16-byte bank groups.
template <int D>
__device__ __forceinline__ int swizzle(int r, int c) {
  return r * D + ((c ^ (r & 7)) << 3);
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // lo in the low half
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Copies keys [k0, k0 + kMmaK) of KV head kvh into k_s / v_s with 16-byte cp.async. Warp w copies
// keys k0 + 16w .. +15: lane l looks key 16w + l % 16 up in the block table once, and in step i
// copies chunk i·32 + l of the warp's 16 rows (row c / (D/8), chunk c % (D/8): each step reads 2 or
// 4 whole rows), taking the cache row from the lane that looked it up. Keys at or past num_keys and
// keys of invalid blocks are zero-filled without a read. Returns false if this lane's key is below
// num_keys but its block is invalid.
template <int D>
__device__ __forceinline__ bool load_kv_tile(const Paged<bf16>& kv, int s, int kvh, int k0, int num_keys, bf16* k_s,
                                             bf16* v_s) {
  constexpr int kChunks = D / 8;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int key = k0 + 16 * warp + lane % 16;
  const int row = key < num_keys ? kv.row(s, key, kvh) : -1;
#pragma unroll
  for (int i = 0; i < 16 * kChunks / 32; ++i) {
    const int c = 32 * i + lane, r = c / kChunks, chunk = c % kChunks;
    const int src = __shfl_sync(0xffffffffu, row, r);
    const int64_t offset = static_cast<int64_t>(max(src, 0)) * D + 8 * chunk;
    const int dst = swizzle<D>(16 * warp + r, chunk);
    cp_async_16(k_s + dst, kv.k + offset, src >= 0);
    cp_async_16(v_s + dst, kv.v + offset, src >= 0);
  }
  return row >= 0 || key >= num_keys;
}

// tiles as for prefill_kernel; grid (Hq, tiles).
template <int D>
__global__ void __launch_bounds__(kThreads) prefill_mma_kernel(Paged<bf16> kv, SeqMeta meta, const int32_t* tiles) {
  constexpr int kChunks = D / 8;     // 16-byte chunks per row
  constexpr int kTile = kMmaK * D;   // elements of one K or V tile
  constexpr int kS = kMmaK / 8;      // n8 tiles of S per warp
  constexpr int kO = D / 8;          // n8 tiles of O per warp
  PARALON_DYNAMIC_SHARED(bf16, smem);  // stage st: K at smem + 2·st·kTile, V right after

  const int h = blockIdx.x, kvh = h / meta.group;
  const int s = tiles[2 * blockIdx.y], i0 = tiles[2 * blockIdx.y + 1];
  const int64_t q0 = meta.q_start[s];
  const int q_len = meta.q_start[s + 1] - meta.q_start[s];
  const int rows = min(kPrefillQ, q_len - i0);
  const int tile_pos = meta.kv_len[s] - q_len + i0;  // position of the tile's first query
  const int num_keys = tile_pos + rows;             // keys 0 .. the last query's position
  const int num_tiles = (num_keys + kMmaK - 1) / kMmaK;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  // This warp's rows are 16·warp + g and + 8 (fragment halves r = 0, 1); it needs the keys below
  // warp_keys (none when all its rows lie past the chunk's end).
  const int warp_pos = tile_pos + 16 * warp;
  const int warp_keys = 16 * warp < rows ? min(num_keys, warp_pos + 16) : 0;

  bool keys_ok = load_kv_tile<D>(kv, s, kvh, 0, num_keys, smem, smem + kTile);
  cp_async_commit();

  // Q → A fragments, staged through this warp's 16 rows of stage 1's K buffer (untouched until the
  // prefetch of tile 1, which every warp issues after the loop's first barrier). Lane l converts
  // chunks i·32 + l (8 floats each); rows past the chunk's end are zero.
  uint32_t qf[D / 16][4];
  {
    bf16* q_s = smem + 2 * kTile + 16 * warp * D;
    const float x = meta.scale_log2;
#pragma unroll
    for (int i = 0; i < 16 * kChunks / 32; ++i) {
      const int c = 32 * i + lane, r = c / kChunks, chunk = c % kChunks;
      float4 a = make_float4(0.f, 0.f, 0.f, 0.f), b = a;
      if (16 * warp + r < rows) {
        const float* src = meta.q + ((q0 + i0 + 16 * warp + r) * meta.num_q_heads + h) * D + 8 * chunk;
        a = load4(src);
        b = load4(src + 4);
      }
      *reinterpret_cast<uint4*>(q_s + swizzle<D>(r, chunk)) =
          make_uint4(pack_bf16(a.x * x, a.y * x), pack_bf16(a.z * x, a.w * x), pack_bf16(b.x * x, b.y * x),
                     pack_bf16(b.z * x, b.w * x));
    }
    __syncwarp();  // the warp's rows are stored before its lanes ldmatrix each other's chunks
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {  // lanes 0-15: rows 0-15 at chunk 2ks; lanes 16-31: chunk 2ks+1
      ldmatrix_x4(qf[ks], q_s + swizzle<D>(lane % 16, 2 * ks + lane / 16));
    }
  }

  float o[kO][4];  // O[16 × D] in m16n8 accumulator layout
#pragma unroll
  for (int j = 0; j < kO; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // l: this lane's columns only

  for (int kt = 0; kt < num_tiles; ++kt) {
    cp_async_wait<0>();
    // Barrier: tile kt, written by every thread's cp.async, is visible to all warps, and every warp
    // is done with tile kt-1 (at kt = 0: with its Q staging), whose stage the prefetch overwrites.
    // The AND says whether every key of tile kt has a valid block.
    const bool tile_ok = __syncthreads_and(keys_ok);
    if (kt + 1 < num_tiles) {
      bf16* next = smem + 2 * ((kt + 1) % 2) * kTile;
      keys_ok = load_kv_tile<D>(kv, s, kvh, (kt + 1) * kMmaK, num_keys, next, next + kTile);
      cp_async_commit();
    }
    const int k0 = kt * kMmaK;
    if (k0 >= warp_keys) continue;  // every query of this warp precedes the tile
    const bf16* k_s = smem + 2 * (kt % 2) * kTile;
    const bf16* v_s = k_s + kTile;

    // S = Q·Kᵀ. K rows are B's columns: an x4 covers n8 tiles j, j+1 × k 0-7, 8-15 of step ks.
    float sc[kS][4];
#pragma unroll
    for (int j = 0; j < kS; ++j) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
      for (int j = 0; j < kS; j += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, k_s + swizzle<D>(8 * j + lane % 8 + 8 * (lane / 16), 2 * ks + (lane / 8) % 2));
        mma_bf16_16816(sc[j], qf[ks], b, sc[j]);
        mma_bf16_16816(sc[j + 1], qf[ks], b + 2, sc[j + 1]);
      }
    }

    // Mask keys after a row's position (tiles crossing this warp's diagonal) and keys of invalid blocks.
    if (k0 + kMmaK - 1 > warp_pos || !tile_ok) {
#pragma unroll
      for (int j = 0; j < kS; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = k0 + 8 * j + 2 * t + e % 2, pos = warp_pos + g + 8 * (e / 2);
          if (key > pos || (!tile_ok && kv.row(s, key, kvh) < 0)) sc[j][e] = -INFINITY;
        }
    }

    // Online softmax of rows g (r = 0) and g + 8 (r = 1); a row's scores sit in the 4 lanes of a quad.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < kS; ++j) mx = fmaxf(mx, fmaxf(sc[j][2 * r], sc[j][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[r], mx);
      const float ref = m_new == -INFINITY ? 0.0f : m_new;  // a row with no key yet adds nothing
      const float alpha = exp2f(m[r] - ref);
      m[r] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < kS; ++j) {
        sc[j][2 * r] = exp2f(sc[j][2 * r] - ref);
        sc[j][2 * r + 1] = exp2f(sc[j][2 * r + 1] - ref);
        sum += sc[j][2 * r] + sc[j][2 * r + 1];
      }
      l[r] = l[r] * alpha + sum;
#pragma unroll
      for (int j = 0; j < kO; ++j) {
        o[j][2 * r] *= alpha;
        o[j][2 * r + 1] *= alpha;
      }
    }

    // O += P·V over key steps of 16: S's n8 tiles 2kk, 2kk+1 are P's A fragment (rounded to bf16);
    // an x4_trans covers keys 0-7, 8-15 × the d columns of n8 tiles j, j+1.
#pragma unroll
    for (int kk = 0; kk < kMmaK / 16; ++kk) {
      const uint32_t a[4] = {pack_bf16(sc[2 * kk][0], sc[2 * kk][1]), pack_bf16(sc[2 * kk][2], sc[2 * kk][3]),
                             pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                             pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
      for (int j = 0; j < kO; j += 2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, v_s + swizzle<D>(16 * kk + lane % 16, j + lane / 16));
        mma_bf16_16816(o[j], a, b, o[j]);
        mma_bf16_16816(o[j + 1], a, b + 2, o[j + 1]);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = l[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int row = 16 * warp + g + 8 * r;
    if (row >= rows) continue;
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    float* dst = meta.out + ((q0 + i0 + row) * meta.num_q_heads + h) * D + 2 * t;
#pragma unroll
    for (int j = 0; j < kO; ++j) {
      *reinterpret_cast<float2*>(dst + 8 * j) = make_float2(o[j][2 * r] * inv, o[j][2 * r + 1] * inv);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Host side
// ------------------------------------------------------------------------------------------------

struct Plan {
  std::vector<int32_t> decode_seqs;
  std::vector<int32_t> prefill_tiles;  // (sequence, first query) pairs
  int max_decode_kv = 0;
};

Plan make_plan(const AttentionArgs& a) {
  Plan plan;
  struct Tile {
    int32_t seq, i0;
    int64_t keys;
  };
  std::vector<Tile> tiles;
  for (int64_t s = 0; s < a.num_seqs; ++s) {
    const int32_t q_len = a.q_start_host[s + 1] - a.q_start_host[s];
    const int32_t kv_len = a.kv_len_host[s];
    if (q_len <= 0) continue;
    if (q_len == 1) {
      plan.decode_seqs.push_back(static_cast<int32_t>(s));
      plan.max_decode_kv = std::max(plan.max_decode_kv, kv_len);
      continue;
    }
    for (int32_t i0 = 0; i0 < q_len; i0 += kPrefillQ) {
      const int64_t last = std::min(q_len, i0 + kPrefillQ) - 1;
      tiles.push_back({static_cast<int32_t>(s), i0, kv_len - q_len + last + 1});
    }
  }
  // Longest key ranges first, so the last wave is made of short tiles.
  std::stable_sort(tiles.begin(), tiles.end(), [](const Tile& x, const Tile& y) { return x.keys > y.keys; });
  for (const Tile& t : tiles) {
    plan.prefill_tiles.push_back(t.seq);
    plan.prefill_tiles.push_back(t.i0);
  }
  return plan;
}

// Whether the splits are merged inside the decode launch (by the last CTA of each (sequence, KV
// head)) rather than by merge_kernel: while the group's G·D outputs are at most one 4-column group
// per thread of that CTA, its tail costs merge_kernel's L2 round trips and saves the kernel boundary;
// with more, each extra round costs about a boundary (bench/decode-model.ts, decodeMergeModel). The
// variant harness may force either.
bool fused_merge(int group, int head_dim) {
  if (const int forced = kernel_variants().decode_fused_merge.load(); forced != KernelVariants::kAuto) return forced != 0;
  return group * head_dim <= 4 * kThreads;
}

template <int D, int GP, typename C>
void launch_decode(const Paged<C>& kv, const SeqMeta& meta, const Plan& plan, const int32_t* seqs,
                   int num_kv_heads, LaunchContext& ctx) {
  const int n = static_cast<int>(plan.decode_seqs.size());
  const int64_t base_ctas = static_cast<int64_t>(n) * num_kv_heads;
  const int max_tiles = std::max(1, (plan.max_decode_kv + kDecodeTile - 1) / kDecodeTile);
  int splits = static_cast<int>(std::min<int64_t>(max_tiles, (2 * ctx.sm_count + base_ctas - 1) / base_ctas));
  splits = std::max(splits, 1);
  if (const int forced = kernel_variants().decode_splits.load(); forced != KernelVariants::kAuto) {
    if (forced < 1 || forced > max_tiles) {
      throw OpError("attention: forced decode split count " + std::to_string(forced) + " outside 1.." +
                    std::to_string(max_tiles) + " (64-key tiles of the longest context)");
    }
    splits = forced;
  }
  const int split_len = (max_tiles + splits - 1) / splits * kDecodeTile;
  splits = std::max(1, (plan.max_decode_kv + split_len - 1) / split_len);

  float* part_acc = nullptr;
  float* part_ml = nullptr;
  int* tickets = nullptr;
  if (splits > 1) {
    const size_t parts = static_cast<size_t>(n) * meta.num_q_heads * splits;
    float* scratch = static_cast<float*>(ctx.scratch(parts * (D + 2) * sizeof(float)));
    part_acc = scratch;
    part_ml = scratch + parts * D;
    if (fused_merge(meta.group, D)) tickets = ctx.zeroed_counters(static_cast<size_t>(base_ctas));
  }
  PARALON_LAUNCH((decode_split_kernel<D, GP, C>), dim3(splits, num_kv_heads, n), dim3(kThreads), 0, ctx.stream, kv,
                 meta, seqs, split_len, part_acc, part_ml, tickets);
  PARALON_CHECK_LAUNCH("attention");
  if (splits > 1 && tickets == nullptr) {
    PARALON_LAUNCH((merge_kernel<D>), dim3(meta.num_q_heads, n), dim3(D), 0, ctx.stream, meta, seqs, splits,
                   static_cast<const float*>(part_acc), static_cast<const float*>(part_ml));
    PARALON_CHECK_LAUNCH("attention");
  }
}

// Lets `kernel` use `smem` bytes of dynamic shared memory, or throws when the device offers less.
template <typename Kernel>
void allow_shared_memory(Kernel kernel, size_t smem, LaunchContext& ctx) {
  if (smem > ctx.max_smem_optin) {
    throw OpError("attention: prefill needs " + std::to_string(smem) + " bytes of shared memory, the device allows " +
                  std::to_string(ctx.max_smem_optin));
  }
  PARALON_CUDA_CHECK("attention",
                     cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
}

// f32, f16 and fp8 caches: the SIMT kernel (rows are widened to f32 on their way to shared memory).
template <int D, typename C>
void launch_prefill(const Paged<C>& kv, const SeqMeta& meta, const Plan& plan, const int32_t* tiles,
                    LaunchContext& ctx) {
  constexpr size_t smem = prefill_smem_bytes<D>();
  allow_shared_memory(prefill_kernel<D, C>, smem, ctx);
  const unsigned num_tiles = static_cast<unsigned>(plan.prefill_tiles.size() / 2);
  PARALON_LAUNCH((prefill_kernel<D, C>), dim3(num_tiles, meta.num_q_heads), dim3(kThreads), smem, ctx.stream, kv,
                 meta, tiles);
  PARALON_CHECK_LAUNCH("attention");
}

// bf16 cache: tensor cores. Query tiles go on grid.y (at most 65535, i.e. 4 million query tokens).
template <int D>
void launch_prefill(const Paged<bf16>& kv, const SeqMeta& meta, const Plan& plan, const int32_t* tiles,
                    LaunchContext& ctx) {
  constexpr size_t smem = prefill_mma_smem_bytes<D>();
  allow_shared_memory(prefill_mma_kernel<D>, smem, ctx);
  const size_t num_tiles = plan.prefill_tiles.size() / 2;
  if (num_tiles > 65535) {
    throw OpError("attention: " + std::to_string(num_tiles) + " prefill tiles of " + std::to_string(kPrefillQ) +
                  " queries exceed the grid's 65535");
  }
  PARALON_LAUNCH((prefill_mma_kernel<D>), dim3(meta.num_q_heads, static_cast<unsigned>(num_tiles)), dim3(kThreads),
                 smem, ctx.stream, kv, meta, tiles);
  PARALON_CHECK_LAUNCH("attention");
}

template <int D, typename C>
void launch_typed(const AttentionArgs& a, LaunchContext& ctx) {
  Plan plan = make_plan(a);
  if (ctx.capturing()) {
    // A graph is replayed with other context lengths: capture decode steps only (each replay checks
    // that every sequence brings one token) and size the splits for the longest context the block
    // tables can hold; splits past a sequence's end add nothing.
    if (!plan.prefill_tiles.empty() || static_cast<int64_t>(plan.decode_seqs.size()) != a.num_seqs)
      throw OpError("attention: only decode steps (one new token per sequence) can be captured in a graph");
    plan.max_decode_kv = static_cast<int>(std::min<int64_t>(a.max_blocks_per_seq * a.cache.block_size, INT32_MAX));
  }
  const int Hkv = static_cast<int>(a.cache.num_kv_heads);
  const int G = static_cast<int>(a.num_q_heads / Hkv);

  Paged<C> kv;
  kv.k = static_cast<const C*>(a.cache.k);
  kv.v = static_cast<const C*>(a.cache.v);
  kv.block_tables = ctx.stage_i32(a.block_tables_host, static_cast<size_t>(a.num_seqs * a.max_blocks_per_seq));
  kv.max_blocks = static_cast<int>(a.max_blocks_per_seq);
  kv.block_size = static_cast<int>(a.cache.block_size);
  kv.num_blocks = static_cast<int>(a.cache.num_blocks);
  kv.num_kv_heads = Hkv;

  SeqMeta meta;
  meta.q_start = ctx.stage_i32(a.q_start_host, static_cast<size_t>(a.num_seqs + 1));
  meta.kv_len = ctx.stage_i32(a.kv_len_host, static_cast<size_t>(a.num_seqs));
  meta.q = a.q;
  meta.out = a.out;
  meta.num_q_heads = static_cast<int>(a.num_q_heads);
  meta.group = G;
  meta.scale_log2 = a.scale * a.cache.k_scale * kLog2e;
  meta.v_scale = a.cache.v_scale;

  if (!plan.decode_seqs.empty()) {
    // A step where every sequence decodes (all of a decode step) needs no list: the kernels take
    // sequence = item, and the step uploads nothing beyond its own metadata.
    const bool all_decode = static_cast<int64_t>(plan.decode_seqs.size()) == a.num_seqs;
    const int32_t* seqs = all_decode ? nullptr : ctx.stage_i32(plan.decode_seqs.data(), plan.decode_seqs.size());
    if (G <= 1) launch_decode<D, 1, C>(kv, meta, plan, seqs, Hkv, ctx);
    else if (G <= 2) launch_decode<D, 2, C>(kv, meta, plan, seqs, Hkv, ctx);
    else if (G <= 4) launch_decode<D, 4, C>(kv, meta, plan, seqs, Hkv, ctx);
    else if (G <= 8) launch_decode<D, 8, C>(kv, meta, plan, seqs, Hkv, ctx);
    else launch_decode<D, 16, C>(kv, meta, plan, seqs, Hkv, ctx);
  }
  if (!plan.prefill_tiles.empty()) {
    const int32_t* tiles = ctx.stage_i32(plan.prefill_tiles.data(), plan.prefill_tiles.size());
    launch_prefill<D>(kv, meta, plan, tiles, ctx);
  }
}

template <int D>
void launch_head_dim(const AttentionArgs& a, LaunchContext& ctx) {
  switch (a.cache.dtype) {
    case DType::F32: launch_typed<D, float>(a, ctx); break;
    case DType::BF16: launch_typed<D, __nv_bfloat16>(a, ctx); break;
    case DType::F16: launch_typed<D, __half>(a, ctx); break;
    case DType::FP8_E4M3: launch_typed<D, fp8_e4m3>(a, ctx); break;
    default: throw OpError(std::string("attention: unsupported cache dtype ") + dtype_name(a.cache.dtype));
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

void launch_attention(const AttentionArgs& a, LaunchContext& ctx) {
  if (a.num_seqs == 0 || a.num_tokens == 0) return;
  const int64_t D = a.cache.head_dim, Hkv = a.cache.num_kv_heads;
  if (Hkv <= 0 || a.num_q_heads % Hkv != 0 || a.num_q_heads / Hkv > kMaxGroup) {
    throw OpError("attention: num_q_heads (" + std::to_string(a.num_q_heads) + ") must be a multiple of num_kv_heads (" +
                  std::to_string(Hkv) + ") with at most " + std::to_string(kMaxGroup) + " query heads per KV head");
  }
  if (a.cache.num_blocks * a.cache.block_size * Hkv > INT32_MAX) {
    throw OpError("attention: the KV cache has more than 2^31 rows (num_blocks · block_size · num_kv_heads)");
  }
  if (!aligned16(a.q) || !aligned16(a.out) || !aligned16(a.cache.k) || !aligned16(a.cache.v)) {
    throw OpError("attention: q, out and the KV cache must be 16-byte aligned");
  }
  switch (D) {
    case 64: launch_head_dim<64>(a, ctx); break;
    case 128: launch_head_dim<128>(a, ctx); break;
    default: throw OpError("attention: head_dim " + std::to_string(D) + " is not supported by the CUDA backend (64 or 128)");
  }
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
