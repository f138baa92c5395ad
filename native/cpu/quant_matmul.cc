// y[M, N] = x[M, K] · W[N, K]ᵀ (+ residual) with W in ggml's Q8_0, Q4_K, Q5_K or Q6_K blocks, read in
// place. Two precisions (Context::int8_dot, `--cpu-precision`):
// - exact (the default): activations stay f32 and meet dequantized weights: each 16-value group of a
//   block is decoded in registers to f32 (d_g·q − m_g, one FMA after widening the int8 quants) and FMA'd
//   into f32 accumulators. No activation rounding: the result is as close to the f64 product of the
//   dequantized weights as the f32 path of bf16 weights (1e-5 in the op tests).
// - fast, up to kMaxInt8FastRows x rows: x quantized to int8 blocks once per matmul exactly as llama.cpp
//   does (q8_0 / q8_K), integer dot products (quant_int8.cc: AVX512-VNNI, AVX2). Its error is the
//   activation rounding's, as llama.cpp's: end to end (bench/results/crosscheck-quant-fast.md) its
//   next-token probabilities sit 1e-3..1e-2 from the f64 forward, as llama.cpp's, where exact sits at
//   1e-7..1e-6 (crosscheck-quant.md) — so exact stays the default. Speed
//   (bench/cpu-int8.ts, Qwen3-0.6B's four matmuls, AVX-512 Xeon, shared machine): 1.05–1.95× less CPU
//   time than exact for Q4_K/Q5_K/Q6_K at 1–16 rows (≈1.5× at 1 row: a block's quants are unpacked
//   once per 64 values instead of widened to f32 per 16), Q8_0 1.0–1.3× (near the memory bound), and
//   slower than the exact blocked GEMM from 32 rows (0.6–0.9× at 64–512) — so larger M (prefill) stays on
//   the exact kernels in both precisions.
//   An earlier attempt (bench/cpu-variants/q4k-activations.cc) measured int8 no faster: it rebuilt the
//   block scales through memory (store-forwarding stalls); quant_int8.cc keeps them in registers.
//
// Exact kernels:
// - M = 1 (decode): threads own contiguous ranges of W rows and read each row as one sequential
//   stream; four accumulators rotate over the groups to hide FMA latency. Traffic: W's bytes once.
// - 2 ≤ M ≤ kMaxStreamingRows: each block of a W row is decoded once into an L1 buffer (≤ 1 KB) and
//   dotted with every x row (M independent accumulator chains).
// - Larger M (prefill): the blocked GEMM of matmul.cc, its B panels packed from W rows decoded 8 at a
//   time per 256-value K slice, so decoding costs N·K work once per slice, shared by all M rows.
// - The SwiGLU epilogue runs the same kernels on gate and up rows side by side (matmul.cc).
#include <algorithm>
#include <type_traits>

#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/quant.h"
#include "cpu/quant_int8.h"
#include "cpu/simd.h"

namespace paralon {
namespace cpu {

namespace {

// y[n] (+ residual) for one W row of nb blocks against one x row.
template <class F>
float dot_row_single(const typename F::Block* row, int64_t nb, const float* x) {
  vf acc[4] = {vzero(), vzero(), vzero(), vzero()};
#if defined(__AVX512F__)
  if constexpr (kHasChunk64<F>) {  // table lookups, 64 values a step (quant.h)
    for (int64_t b = 0; b < nb; ++b) {
      for (int c = 0; c < 4; ++c) {
        __m512 v[4];
        chunk64(row[b], c, v);
        const float* xc = x + b * F::kValues + 64 * c;
        for (int i = 0; i < 4; ++i) acc[i] = vfma(vload(xc + 16 * i), v[i], acc[i]);
      }
    }
    return vreduce_add(vadd(vadd(acc[0], acc[1]), vadd(acc[2], acc[3])));
  }
#endif
#if defined(__AVX512BW__)
  if constexpr (std::is_same_v<F, FormatQ6_K>) {  // 128 quants assembled as bytes at once (quant.h)
    for (int64_t b = 0; b < nb; ++b) {
      for (int h = 0; h < 2; ++h) {
        __m512 v[8];
        q6_k_half(row[b], h, v);
        const float* xh = x + b * F::kValues + 128 * h;
        for (int i = 0; i < 8; ++i) acc[i & 3] = vfma(vload(xh + 16 * i), v[i], acc[i & 3]);
      }
    }
    return vreduce_add(vadd(vadd(acc[0], acc[1]), vadd(acc[2], acc[3])));
  }
#endif
  float d[F::kGroups], m[F::kGroups];
  for (int64_t b = 0; b < nb; ++b) {
    F::scales(row[b], d, m);
    const float* xb = x + b * F::kValues;
    for (int g = 0; g < F::kGroups; ++g) {
      vf w[kGroupVecs];
      q16_widen(F::group(row[b], g), d[g], m[g], w);
      for (int u = 0; u < kGroupVecs; ++u) {
        vf& a = acc[(g * kGroupVecs + u) & 3];
        a = vfma(vload(xb + kGroup * g + u * kLanes), w[u], a);
      }
    }
  }
  return vreduce_add(vadd(vadd(acc[0], acc[1]), vadd(acc[2], acc[3])));
}

// out[i] = x row i · W row over nb blocks, for M ≤ kMaxStreamingRows x rows (stride K).
template <class F>
void dot_row_multi(const typename F::Block* row, int64_t nb, const float* x, int64_t K, int64_t M, float* buf,
                   float out[kMaxStreamingRows]) {
  vf acc[kMaxStreamingRows];
  for (int64_t i = 0; i < M; ++i) acc[i] = vzero();
  for (int64_t b = 0; b < nb; ++b) {
    decode_block<F>(row[b], buf);
    const float* xb = x + b * F::kValues;
    for (int k = 0; k < F::kValues; k += kLanes) {
      const vf w = vload(buf + k);
      for (int64_t i = 0; i < M; ++i) acc[i] = vfma(vload(xb + i * K + k), w, acc[i]);
    }
  }
  for (int64_t i = 0; i < M; ++i) out[i] = vreduce_add(acc[i]);
}

// y rows [0, M) × columns [n0, n1) on the calling thread, M ≤ kMaxStreamingRows.
template <class F>
void stream_rows_quantized(const MatmulArgs& a, int64_t n0, int64_t n1) {
  using Block = typename F::Block;
  const Block* w = static_cast<const Block*>(a.w);
  const int64_t M = a.M, N = a.N, K = a.K, nb = K / F::kValues;
  alignas(64) float buf[F::kValues];
  for (int64_t n = n0; n < n1; ++n) {
    const Block* row = w + n * nb;
    float out[kMaxStreamingRows];
    if (M == 1) {
      out[0] = dot_row_single<F>(row, nb, a.x);
    } else {
      dot_row_multi<F>(row, nb, a.x, K, M, buf, out);
    }
    for (int64_t i = 0; i < M; ++i) {
      const int64_t at = i * N + n;
      a.y[at] = out[i] + (a.residual ? a.residual[at] : 0.0f);
    }
  }
}

template <class F>
void matmul_streaming_quantized(Context& ctx, const MatmulArgs& a) {
  const int64_t N = a.N;
  const int64_t rows = chunk_size(N, ctx.pool, 16);
  ctx.pool.parallel_for((N + rows - 1) / rows, [&](int64_t c, int) {
    stream_rows_quantized<F>(a, c * rows, std::min(N, (c + 1) * rows));
  });
}

template <class F>
void decode_range(const typename F::Block* row, int64_t v0, int64_t n, float* out) {
  for (int64_t b = v0 / F::kValues, e = (v0 + n) / F::kValues; b < e; ++b, out += F::kValues) decode_block<F>(row[b], out);
}

// MatmulEpilogue::Swiglu with gate and up in one quantized format: the streaming kernel per column
// tile (M ≤ kMaxStreamingRows), else the blocked GEMM with gate and up rows decoded per chunk.
void matmul_quantized_swiglu(Context& ctx, const MatmulArgs& a) {
  const MatmulArgs gate = swiglu_half(a, 0, nullptr), up = swiglu_half(a, 1, nullptr);
  with_quant_format(gate.w_dtype, [&](auto* tag) {
    using F = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    using Block = typename F::Block;
    if (a.M <= kMaxStreamingRows) {
      matmul_swiglu_streaming(ctx, a, 0,
                              [](const MatmulArgs& t, int64_t n0, int64_t n1, float*) { stream_rows_quantized<F>(t, n0, n1); });
      return;
    }
    const Block* wg = static_cast<const Block*>(gate.w);
    const Block* wu = static_cast<const Block*>(up.w);
    const int64_t nb = a.K / F::kValues, I = gate.N;
    matmul_blocked_decoded(ctx, a, [&](int64_t n0, int64_t count, int64_t pc, int64_t kc, float* out) {
      const Block* w = n0 < I ? wg + n0 * nb : wu + (n0 - I) * nb;  // a group of rows never straddles the halves
      for (int64_t i = 0; i < count; ++i) decode_range<F>(w + i * nb, pc, kc, out + i * kc);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Fast precision (Context::int8_dot): x quantized once per matmul into ctx (shared by the threads),
// then the integer kernels of quant_int8.cc, kMaxInt8Rows x rows per W row pass.

ActQ8 quantize_x(Context& ctx, const MatmulArgs& a, DType w) {
  const int64_t M = a.M, K = a.K, blocks = K / act_block(w);
  ctx.q8_x.resize(static_cast<size_t>(M * K));
  ctx.q8_d.resize(static_cast<size_t>(M * blocks));
  ctx.q8_bsums.resize(static_cast<size_t>(M * (K / 16)));
  int8_t* q = ctx.q8_x.data();
  float* d = ctx.q8_d.data();
  int16_t* bs = ctx.q8_bsums.data();
  const auto row = [&](int64_t i) { quantize_act_row(w, a.x + i * K, K, q + i * K, d + i * blocks, bs + i * (K / 16)); };
  if (M < 4) {
    for (int64_t i = 0; i < M; ++i) row(i);
  } else {
    ctx.pool.parallel_for(M, [&](int64_t i, int) { row(i); });
  }
  return ActQ8{q, d, bs, K};
}

// Fast precision takes the int8 kernels up to this many x rows (decode, batched decode) and the exact
// blocked GEMM above: measured faster than it up to 16 rows, slower from 32 (bench/cpu-int8.ts).
constexpr int64_t kMaxInt8FastRows = 16;

// W rows [n0, n1) of t against every x row: W rows in groups of kInt8WRows (L2-resident while every
// x tile of kMaxInt8Rows rows passes over them).
constexpr int64_t kInt8WRows = 16;
void int8_rows(const MatmulArgs& t, const ActQ8& xq, Int8RowDot dot, int64_t n0, int64_t n1) {
  const int64_t M = t.M, N = t.N, row_bytes = dtype_bytes(t.w_dtype, t.K);
  const int64_t nb = t.K / dtype_block_elements(t.w_dtype);
  for (int64_t g = n0; g < n1; g += kInt8WRows) {
    const int64_t g1 = std::min(n1, g + kInt8WRows);
    for (int64_t r0 = 0; r0 < M; r0 += kMaxInt8Rows) {
      const int R = static_cast<int>(std::min<int64_t>(kMaxInt8Rows, M - r0));
      for (int64_t n = g; n < g1; ++n) {
        float out[kMaxInt8Rows];
        dot(static_cast<const char*>(t.w) + n * row_bytes, nb, xq, r0, R, out);
        for (int r = 0; r < R; ++r) {
          const int64_t at = (r0 + r) * N + n;
          t.y[at] = out[r] + (t.residual ? t.residual[at] : 0.0f);
        }
      }
    }
  }
}

void matmul_int8(Context& ctx, const MatmulArgs& a) {
  const ActQ8 xq = quantize_x(ctx, a, a.w_dtype);
  const Int8RowDot dot = int8_row_dot(a.w_dtype, ctx.int8_dot);
  const int64_t N = a.N, rows = chunk_size(N, ctx.pool, 16);
  ctx.pool.parallel_for((N + rows - 1) / rows, [&](int64_t c, int) { int8_rows(a, xq, dot, c * rows, std::min(N, (c + 1) * rows)); });
}

void matmul_int8_swiglu(Context& ctx, const MatmulArgs& a) {
  const MatmulArgs gate = swiglu_half(a, 0, nullptr), up = swiglu_half(a, 1, nullptr);
  if (act_block(gate.w_dtype) != act_block(up.w_dtype)) throw OpError("matmul: gate and up weights need one activation block size");
  const ActQ8 xq = quantize_x(ctx, a, gate.w_dtype);
  const Int8Isa isa = ctx.int8_dot;
  matmul_swiglu_streaming(ctx, a, 0, [&](const MatmulArgs& t, int64_t n0, int64_t n1, float*) {
    int8_rows(t, xq, int8_row_dot(t.w_dtype, isa), n0, n1);  // gate and up may differ in format (Q4_K/Q6_K)
  });
}

}  // namespace

void decode_quantized(DType t, const void* row, int64_t v0, int64_t n, float* out) {
  with_quant_format(t, [&](auto* tag) {
    using F = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    decode_range<F>(static_cast<const typename F::Block*>(row), v0, n, out);
  });
}

void matmul_quantized(Context& ctx, const MatmulArgs& a) {
  if (ctx.int8_dot != Int8Isa::Off && a.M <= kMaxInt8FastRows)
    return a.epilogue == MatmulEpilogue::Swiglu ? matmul_int8_swiglu(ctx, a) : matmul_int8(ctx, a);
  if (a.epilogue == MatmulEpilogue::Swiglu) return matmul_quantized_swiglu(ctx, a);
  with_quant_format(a.w_dtype, [&](auto* tag) {
    using F = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    using Block = typename F::Block;
    if (a.M <= kMaxStreamingRows) {
      matmul_streaming_quantized<F>(ctx, a);
      return;
    }
    const Block* w = static_cast<const Block*>(a.w);
    const int64_t nb = a.K / F::kValues;
    matmul_blocked_decoded(ctx, a, [&](int64_t n0, int64_t count, int64_t pc, int64_t kc, float* out) {
      for (int64_t i = 0; i < count; ++i) decode_range<F>(w + (n0 + i) * nb, pc, kc, out + i * kc);
    });
  });
}

}  // namespace cpu
}  // namespace paralon
