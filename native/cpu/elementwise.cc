// Embedding (gather rows with dtype conversion) and SwiGLU: streaming ops, split across threads in
// chunks of about 16K elements so small decode batches stay on the calling thread.
#include <algorithm>

#include "cpu/kernels.h"
#include "cpu/quant.h"
#include "cpu/simd.h"

namespace paralon {
namespace cpu {

namespace {
constexpr int64_t kMinChunkElements = 16384;
}

void embedding(Context& ctx, const EmbeddingArgs& a) {
  if (a.num_tokens <= 0 || a.hidden <= 0) return;
  const int64_t hidden = a.hidden;
  const int64_t rows_per_chunk = chunk_size(a.num_tokens, ctx.pool, std::max<int64_t>(1, kMinChunkElements / hidden));
  if (dtype_quantized(a.table_dtype)) {  // rows of blocks, decoded straight into out
    const size_t row_bytes = dtype_bytes(a.table_dtype, hidden);
    const char* table = static_cast<const char*>(a.table);
    ctx.pool.parallel_for((a.num_tokens + rows_per_chunk - 1) / rows_per_chunk, [&](int64_t c, int) {
      const int64_t t1 = std::min(a.num_tokens, (c + 1) * rows_per_chunk);
      for (int64_t t = c * rows_per_chunk; t < t1; ++t) {
        const int64_t id = a.ids_host[t];
        float* out = a.out + t * hidden;
        if (id < 0 || id >= a.vocab) {  // validated upstream; never read out of bounds
          std::fill(out, out + hidden, 0.0f);
          continue;
        }
        decode_quantized(a.table_dtype, table + id * row_bytes, 0, hidden, out);
      }
    });
    return;
  }
  with_storage_type(a.table_dtype, [&](auto* tag) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
    const T* table = static_cast<const T*>(a.table);
    ctx.pool.parallel_for((a.num_tokens + rows_per_chunk - 1) / rows_per_chunk, [&](int64_t c, int) {
      const int64_t t1 = std::min(a.num_tokens, (c + 1) * rows_per_chunk);
      for (int64_t t = c * rows_per_chunk; t < t1; ++t) {
        const int64_t id = a.ids_host[t];
        float* out = a.out + t * hidden;
        if (id < 0 || id >= a.vocab) {  // validated upstream; never read out of bounds
          std::fill(out, out + hidden, 0.0f);
          continue;
        }
        widen_row(table + id * hidden, out, hidden);
      }
    });
  });
}

void swiglu(Context& ctx, const SwigluArgs& a) {
  const int64_t n = a.rows * a.dim;
  if (n <= 0) return;
  // Chunks are whole vectors so every chunk but the last runs the vector loop only.
  int64_t per_chunk = chunk_size(n, ctx.pool, kMinChunkElements);
  per_chunk = (per_chunk + kLanes - 1) / kLanes * kLanes;
  ctx.pool.parallel_for((n + per_chunk - 1) / per_chunk, [&](int64_t c, int) {
    const int64_t begin = c * per_chunk, end = std::min(n, begin + per_chunk);
    // out may alias gate or up (same element read, then written).
    silu_mul_row(a.gate + begin, a.up + begin, a.out + begin, end - begin);
  });
}

}  // namespace cpu
}  // namespace paralon
