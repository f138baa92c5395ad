// Test harness for test/quant/cpu-isa.test.ts: decodes ggml blocks with native/cpu/quant.h as compiled
// for one instruction set (the test builds it scalar, AVX2 and AVX-512) and writes the values (f32)
// to stdout.
//   decode-blocks FORMAT BLOCKS_FILE > values.f32
#include <cstdio>
#include <string>
#include <vector>

#include "cpu/quant.h"

namespace {

using namespace paralon;
using namespace paralon::cpu;

template <class F>
int run(const char* path) {
  FILE* f = std::fopen(path, "rb");
  if (!f) return 1;
  std::vector<unsigned char> bytes(1 << 22);
  const size_t n = std::fread(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  const size_t nb = n / sizeof(typename F::Block);
  std::vector<typename F::Block> blocks(nb);
  std::memcpy(blocks.data(), bytes.data(), nb * sizeof(typename F::Block));
  std::vector<float> out(nb * F::kValues);
  for (size_t i = 0; i < nb; ++i) decode_block<F>(blocks[i], out.data() + i * F::kValues);
  std::fwrite(out.data(), sizeof(float), out.size(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string fmt = argv[1];
  if (fmt == "q8_0") return run<FormatQ8_0>(argv[2]);
  if (fmt == "q4_k") return run<FormatQ4_K>(argv[2]);
  if (fmt == "q5_k") return run<FormatQ5_K>(argv[2]);
  if (fmt == "q6_k") return run<FormatQ6_K>(argv[2]);
  return 2;
}
