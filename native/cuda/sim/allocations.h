// Device allocations of the simulator (cudaMalloc / cudaFree), laid out for memcheck and initcheck:
//
//   [redzone before: 256 B][requested bytes][up to the 256-byte rounding][redzone after: ≥ 4 KiB]
//
// Small allocations are heap memory filled with the poison (kPoisonWord); large ones are mmap'ed and
// lazily zeroed, their redzones being guard pages (PROT_NONE), so even an uninstrumented access past
// the end faults. A freed allocation stays mapped, in quarantine, until 64 MiB of newer frees push it
// out, so an access to it is reported as use after free rather than landing in a new allocation.
// Every allocation carries one "written" bit per byte for initcheck, trusted only while initcheck
// has been on since the allocation was made (kernel writes are tracked only while it is on).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace paralon {
namespace sim {

constexpr size_t kDeviceMemoryBytes = size_t(4) << 30;  // the simulated device's memory

struct DeviceAllocation {
  uintptr_t begin = 0;   // what cudaMalloc returned
  size_t bytes = 0;      // requested
  size_t rounded = 0;    // bytes rounded up to 256: what copies and memsets may touch
  size_t redzone_after = 0;
  bool mapped = false;
  bool freed = false;
  bool init_tracked = false;      // `written` is exact (initcheck on since allocation)
  std::vector<uint8_t> written;   // one bit per requested byte
  unsigned char* base = nullptr;  // start of the redzone before
  size_t base_bytes = 0;

  DeviceAllocation() = default;
  DeviceAllocation(const DeviceAllocation&) = delete;
  DeviceAllocation& operator=(const DeviceAllocation&) = delete;
  ~DeviceAllocation();  // unmaps / frees the memory, once no launch's snapshot refers to it

  uintptr_t span_begin() const { return begin - kRedzoneBefore; }
  uintptr_t span_end() const { return begin + rounded + redzone_after; }
  void mark_written(size_t offset, size_t n);
  // Offset of the first byte of [offset, offset + n) never written, or SIZE_MAX when all were.
  size_t first_unwritten(size_t offset, size_t n) const;

  static constexpr size_t kRedzoneBefore = 256;
};

// nullptr and a message when the simulated device is out of memory.
void* allocate_device(size_t bytes, std::string* error);
bool free_device(void* ptr);  // false: not a live allocation
size_t device_bytes_allocated();
// Whether [p, p + bytes) lies inside one live allocation (its rounded size).
bool inside_device_allocation(const void* p, size_t bytes);
// A host copy or memset wrote [p, p + bytes) (already checked to be inside one allocation).
void mark_device_written(const void* p, size_t bytes);
// Initcheck switched on or off: allocations made before it cannot be trusted (`init_tracked` false).
void set_init_tracking(bool on);
// Live and quarantined allocations sorted by address, for the checks of one launch.
std::vector<std::shared_ptr<DeviceAllocation>> device_allocations_snapshot();

}  // namespace sim
}  // namespace paralon
