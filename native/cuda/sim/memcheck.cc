// memcheck and the device-memory half of initcheck: every global access of a kernel checked against
// the allocation whose span (allocation plus redzones, sim/allocations.h) holds it. An access outside
// the requested bytes is out of bounds (also within cudaMalloc's 256-byte rounding, which hardware
// would not catch), one into a quarantined allocation is a use after free; both name the allocation.
// An address near no allocation (host memory, the kernel's arguments, module data) is not device
// memory and is left alone: a pointer more than a redzone away from its allocation is not caught.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "sim/allocations.h"
#include "sim/internal.h"

namespace paralon {
namespace sim {
namespace {

struct MemState {
  std::vector<std::shared_ptr<DeviceAllocation>> allocations;  // by address
  DeviceAllocation* last = nullptr;                            // the last one hit
};
MemState mem;

std::string hex(uintptr_t a) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(a));
  return buf;
}

DeviceAllocation* find(uintptr_t a) {
  if (mem.last != nullptr && a >= mem.last->span_begin() && a < mem.last->span_end()) return mem.last;
  auto it = std::upper_bound(mem.allocations.begin(), mem.allocations.end(), a,
                             [](uintptr_t x, const std::shared_ptr<DeviceAllocation>& d) { return x < d->span_begin(); });
  if (it == mem.allocations.begin()) return nullptr;
  DeviceAllocation* d = (--it)->get();
  if (a >= d->span_end()) return nullptr;
  mem.last = d;
  return d;
}

std::string access_text(uintptr_t a, size_t bytes, const char* kind) {
  return std::to_string(bytes) + "-byte " + kind + " at " + hex(a);
}

std::string allocation_text(const DeviceAllocation& d) {
  return "the " + std::to_string(d.bytes) + "-byte allocation at " + hex(d.begin);
}

}  // namespace

void memcheck_begin_launch() {
  mem.allocations = device_allocations_snapshot();
  mem.last = nullptr;
}

void memcheck_end_launch() {
  mem.allocations.clear();
  mem.last = nullptr;
}

bool global_access(const void* p, size_t bytes, bool write) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  DeviceAllocation* d = find(a);
  if (d == nullptr) return false;
  const SanitizerConfig& config = launch_sanitizers();
  const char* kind = write ? "write" : "read";
  if (config.memcheck && d->freed) {
    const std::string what = "memcheck: " + access_text(a, bytes, kind) + ", use after free of " + allocation_text(*d);
    device_fault(cudaErrorIllegalAddress, what.c_str());
  }
  if (config.memcheck && (a < d->begin || a + bytes > d->begin + d->bytes)) {
    const std::string where = a < d->begin ? std::to_string(d->begin - a) + " bytes before the start of "
                                           : std::to_string(a + bytes - (d->begin + d->bytes)) + " bytes past the end of ";
    const std::string what = "memcheck: " + access_text(a, bytes, kind) + " out of bounds, reaching " + where +
                             allocation_text(*d);
    device_fault(cudaErrorIllegalAddress, what.c_str());
  }
  if (!d->init_tracked || d->freed || a < d->begin) return true;
  if (write) {
    d->mark_written(a - d->begin, bytes);
  } else if (config.initcheck) {
    const size_t first = d->first_unwritten(a - d->begin, bytes);
    if (first != SIZE_MAX) {
      const std::string what = "initcheck: " + access_text(a, bytes, kind) + " of device memory never written (byte " +
                               std::to_string(first) + " of " + allocation_text(*d) + ")";
      device_fault(cudaErrorLaunchFailure, what.c_str());
    }
  }
  return true;
}

}  // namespace sim
}  // namespace paralon
