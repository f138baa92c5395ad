// Fast precision for quantized weights (Context::int8_dot, `--cpu-precision fast`): activations
// quantized to int8 per block exactly as ggml does it (q8_0 for Q8_0 weights, q8_K for the K formats),
// then integer dot products against the weight quants, with the block scales applied once per block.
// Instruction set chosen at run time by CPUID (functions compiled with target attributes, so an AVX2
// build still carries the AVX-512 code and vice versa): AVX512-VNNI, AVX2, or the scalar reference.
#pragma once

#include <cstdint>

#include "ops.h"

namespace paralon {
namespace cpu {

enum class Int8Isa { Off, Scalar, Avx2, Vnni512 };

const char* int8_isa_name(Int8Isa isa);
// The best SIMD path this CPU runs; Off where it has neither AVX2 nor AVX512-VNNI (the scalar path is
// the reference, slower than the exact kernels).
Int8Isa int8_isa_best();
// The path for a fast-precision CPU backend: PARALON_CPU_INT8_ISA (scalar | avx2 | vnni512, a test hook
// to exercise each path on one machine, including the scalar reference; refused when this CPU lacks
// it) or else the best.
Int8Isa int8_isa_for_backend();

// M rows of x, K values each, quantized: q [M·K], d [M·K/block] (block 32 for q8_0, 256 for q8_K),
// bsums [M·K/16] (q8_K only: the sum of each 16 quants).
struct ActQ8 {
  const int8_t* q;
  const float* d;
  const int16_t* bsums;
  int64_t K;
};

// Quantizes one x row (K a multiple of the block) for weights of dtype w (Q8_0 → q8_0, K formats → q8_K).
void quantize_act_row(DType w, const float* x, int64_t K, int8_t* q, float* d, int16_t* bsums);
// Values per activation scale for weights of dtype w.
int64_t act_block(DType w);

// out[r] = x row (r0 + r) · W row over nb blocks, r < R ≤ kMaxInt8Rows.
constexpr int kMaxInt8Rows = 8;
using Int8RowDot = void (*)(const void* wrow, int64_t nb, const ActQ8& x, int64_t r0, int R, float* out);
Int8RowDot int8_row_dot(DType w, Int8Isa isa);

}  // namespace cpu
}  // namespace paralon
