// ggml's reference block quantizers (quantize_row_*_ref, no importance matrix) for Q8_0, Q4_K, Q5_K
// and Q6_K: a C++ port of src/quant/*.ts, byte-identical to it (and so to ggml). `paralon quantize`
// calls this through the addon's quantizeRows; the TypeScript quantizers stay the tests' reference.
#pragma once

#include <cstdint>
#include <string>

namespace paralon {
namespace cpu {

enum class QuantFormat { Q8_0, Q4_K, Q5_K, Q6_K };

struct QuantBlockShape {
  int64_t elements;  // values per block
  int64_t bytes;     // bytes per block
};

// "q8_0" | "q4_k" | "q5_k" | "q6_k" → the format; false for any other name.
bool quant_format_from_name(const std::string& name, QuantFormat* format);
QuantBlockShape quant_block_shape(QuantFormat format);

// Quantizes num_blocks consecutive blocks of x into out (num_blocks · shape.bytes bytes), on up to
// `threads` threads (≤ 0: hardware concurrency). Blocks are independent, so the split does not change
// the bytes.
void quantize_blocks(QuantFormat format, const float* x, int64_t num_blocks, uint8_t* out, int threads);

}  // namespace cpu
}  // namespace paralon
