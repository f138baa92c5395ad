// PARALON_SIM_CHECKS builds (-fsanitize=bounds): an index outside a fixed-size array in simulated
// code — a static __shared__ array above all — becomes a launch failure naming the source line, the
// array type, the kernel, block and thread, instead of UBSan's process abort. The two handlers are
// UBSan's ABI (libubsan / compiler-rt): defined in this module, they take precedence over libubsan's.
// Outside a kernel (host code of a .cu file) they print the same report and abort, like UBSan.
#if PARALON_SIM_CHECKS

#include <cstdio>
#include <cstdlib>
#include <string>

#include "sim/internal.h"

namespace paralon {
namespace sim {
namespace {

// UBSan's data layout (ubsan_handlers.h / ubsan_value.h).
struct SourceLocation {
  const char* file;
  uint32_t line, column;
};
struct TypeDescriptor {
  uint16_t kind;  // 0: integer
  uint16_t info;  // integer: log2(bit width) << 1 | signed
  char name[1];  // quoted: 'int [32]'
};
struct OutOfBoundsData {
  SourceLocation location;
  const TypeDescriptor* array_type;
  const TypeDescriptor* index_type;
};

std::string describe(const OutOfBoundsData* d, uintptr_t index) {
  std::string value;
  const unsigned bits = 1u << (d->index_type->info >> 1);
  if (d->index_type->kind == 0 && bits <= 64) {
    uint64_t v = index;
    if (bits < 64) v &= (uint64_t(1) << bits) - 1;
    if ((d->index_type->info & 1) && bits < 64 && (v >> (bits - 1)) & 1) v |= ~((uint64_t(1) << bits) - 1);
    value = (d->index_type->info & 1) ? std::to_string(static_cast<int64_t>(v)) : std::to_string(v);
  } else {
    value = "(wide integer)";
  }
  return "index " + value + " out of bounds for type " + d->array_type->name + " at " + d->location.file + ":" +
         std::to_string(d->location.line) + ":" + std::to_string(d->location.column);
}

void report(void* data, void* index) {
  const std::string what = describe(static_cast<const OutOfBoundsData*>(data), reinterpret_cast<uintptr_t>(index));
  if (on_simulator_fiber()) device_fault(cudaErrorIllegalAddress, what.c_str());
  std::fprintf(stderr, "paralon cuda-sim: %s\n", what.c_str());
  std::abort();
}

}  // namespace
}  // namespace sim
}  // namespace paralon

extern "C" {
void __ubsan_handle_out_of_bounds(void* data, void* index) { paralon::sim::report(data, index); }
void __ubsan_handle_out_of_bounds_abort(void* data, void* index) { paralon::sim::report(data, index); }
}

#endif  // PARALON_SIM_CHECKS
