// The blocked GEMM of matmul.cc for weights that are not stored as elements (quantized blocks): the
// caller decodes W rows to f32 slice by slice and the GEMM packs and multiplies them as f32 rows.
#pragma once

#include <cstdint>
#include <functional>

#include "cpu/kernels.h"

namespace paralon {
namespace cpu {

// decode(n0, count, pc, kc, out): out[i·kc + k] = W[n0 + i][pc + k] for i < count (≤ 8), k < kc.
// pc and kc are multiples of 256 except the last slice, which ends at K. With the Swiglu epilogue, n0
// counts rows of the [gate; up] product: gate rows below N/2, up rows from N/2 (a call never spans both).
using DecodeRows = std::function<void(int64_t n0, int64_t count, int64_t pc, int64_t kc, float* out)>;
void matmul_blocked_decoded(Context& ctx, const MatmulArgs& a, const DecodeRows& decode);

// rows(t, n0, n1, scratch): y tile of W rows [n0, n1) for every x row, on the calling thread (t.y a
// [M, t.N] array; no parts, no epilogue); scratch: the floats the caller asked
// matmul_swiglu_streaming to carve per thread.
using StreamRows = std::function<void(const MatmulArgs& t, int64_t n0, int64_t n1, float* scratch)>;
// MatmulEpilogue::Swiglu with the weight format's streaming kernel `rows`.
void matmul_swiglu_streaming(Context& ctx, const MatmulArgs& a, size_t scratch_floats, const StreamRows& rows);

// Quantized weights: at most this many x rows take the streaming kernels, more the blocked GEMM.
constexpr int64_t kMaxStreamingRows = 8;
// Float weights: up to kMaxStreamingRows the streaming kernels; up to kMaxDotRows the same kernels
// with W rows widened once per step and x in register tiles; above, the blocked GEMM.
constexpr int64_t kMaxDotRows = 64;

// Fast precision (matmul_bf16.cc): whether this build and CPU have AVX512-BF16, and the matmul of bf16
// weights with x rounded to bf16 (vdpbf16ps). Returns false, doing nothing, where it does not apply
// (other weight dtypes, a build without AVX512-BF16): the caller then runs the exact kernels.
bool bf16_dot_supported();
bool matmul_bf16_dot(Context& ctx, const MatmulArgs& a);

// Fast precision on AMX-BF16 CPUs (matmul_amx.cc): whether this CPU has AMX-BF16 (+ AVX512-BF16) and
// Linux granted the tile state to this process, and the tile GEMM of bf16 weights with x rounded to
// bf16, for M ≥ kMinAmxRows (below it matmul_bf16_dot's streaming dot products are faster). Returns
// false, doing nothing, where it does not apply (other weight dtypes, fewer rows, no AMX).
constexpr int64_t kMinAmxRows = 3;
bool amx_supported();
bool matmul_amx(Context& ctx, const MatmulArgs& a);

}  // namespace cpu
}  // namespace paralon
