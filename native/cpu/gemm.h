// The blocked GEMM of matmul.cc for weights that are not stored as elements (quantized blocks): the
// caller decodes W rows to f32 slice by slice and the GEMM packs and multiplies them as f32 rows.
#pragma once

#include <cstdint>
#include <functional>

#include "cpu/kernels.h"

namespace paralon {
namespace cpu {

// decode(n0, count, pc, kc, out): out[i·kc + k] = W[n0 + i][pc + k] for i < count (≤ 8), k < kc.
// pc and kc are multiples of 256 except the last slice, which ends at K.
using DecodeRows = std::function<void(int64_t n0, int64_t count, int64_t pc, int64_t kc, float* out)>;
void matmul_blocked_decoded(Context& ctx, const MatmulArgs& a, const DecodeRows& decode);

// Above this many x rows matmul uses the blocked GEMM; at or below, the streaming kernels.
constexpr int64_t kMaxStreamingRows = 8;

}  // namespace cpu
}  // namespace paralon
