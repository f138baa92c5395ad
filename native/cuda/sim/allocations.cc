// Device allocations with redzones, quarantine and written-bits (see allocations.h).
#include "sim/allocations.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "sim/internal.h"

namespace paralon {
namespace sim {
namespace {

constexpr size_t kPoisonedAllocationLimit = size_t(256) << 20;  // larger: mmap'ed, lazily zeroed pages
constexpr size_t kRedzoneAfter = 4096;
constexpr size_t kQuarantineBytes = size_t(64) << 20;
constexpr size_t kPage = 4096;

struct Registry {
  std::mutex m;
  std::map<uintptr_t, std::shared_ptr<DeviceAllocation>> by_address;  // live and quarantined, by begin
  std::deque<std::shared_ptr<DeviceAllocation>> quarantine;           // oldest first
  size_t quarantined = 0, allocated = 0;
  bool init_tracking = false;
};
Registry& registry() {
  static Registry* r = new Registry();  // leaked: usable from static destructors of callers
  return *r;
}

// The allocation whose span holds p (caller holds the lock), or null.
DeviceAllocation* find_locked(Registry& r, uintptr_t p) {
  auto it = r.by_address.upper_bound(p + DeviceAllocation::kRedzoneBefore);
  if (it == r.by_address.begin()) return nullptr;
  --it;
  DeviceAllocation* a = it->second.get();
  return p >= a->span_begin() && p < a->span_end() ? a : nullptr;
}

}  // namespace

DeviceAllocation::~DeviceAllocation() {
  if (base == nullptr) return;
  if (mapped) {
    munmap(base, base_bytes);
  } else {
    std::free(base);
  }
}

void DeviceAllocation::mark_written(size_t offset, size_t n) {
  if (offset >= bytes) return;
  if (n > bytes - offset) n = bytes - offset;
  size_t i = offset, end = offset + n;
  for (; i < end && (i & 7) != 0; ++i) written[i >> 3] |= uint8_t(1u << (i & 7));
  if (end - i >= 8) {
    std::memset(&written[i >> 3], 0xFF, (end - i) >> 3);
    i += (end - i) & ~size_t(7);
  }
  for (; i < end; ++i) written[i >> 3] |= uint8_t(1u << (i & 7));
}

size_t DeviceAllocation::first_unwritten(size_t offset, size_t n) const {
  for (size_t i = offset; i < offset + n && i < bytes; ++i) {
    if (!(written[i >> 3] >> (i & 7) & 1u)) return i;
  }
  return SIZE_MAX;
}

void* allocate_device(size_t bytes, std::string* error) {
  const size_t rounded = (bytes + 255) & ~size_t(255);
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.m);
    if (rounded > kDeviceMemoryBytes - r.allocated) {
      *error = "cudaMalloc(" + std::to_string(bytes) + "): the simulated device has " +
               std::to_string(kDeviceMemoryBytes - r.allocated) + " bytes free";
      return nullptr;
    }
    r.allocated += rounded;
  }
  auto a = std::make_shared<DeviceAllocation>();
  a->bytes = bytes;
  a->rounded = rounded;
  a->mapped = rounded > kPoisonedAllocationLimit;
  if (a->mapped) {
    // Guard pages on both sides: [page][allocation, page-rounded][guard ≥ 4 KiB].
    const size_t body = (rounded + kPage - 1) & ~(kPage - 1);
    a->redzone_after = body - rounded + kRedzoneAfter;
    a->base_bytes = kPage + body + kRedzoneAfter;
    void* m = mmap(nullptr, a->base_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m != MAP_FAILED) {
      a->base = static_cast<unsigned char*>(m);
      mprotect(a->base, kPage, PROT_NONE);
      mprotect(a->base + kPage + body, kRedzoneAfter, PROT_NONE);
      a->begin = reinterpret_cast<uintptr_t>(a->base + kPage);
    }
  } else {
    a->redzone_after = kRedzoneAfter;
    a->base_bytes = DeviceAllocation::kRedzoneBefore + rounded + kRedzoneAfter;
    a->base = static_cast<unsigned char*>(std::aligned_alloc(256, a->base_bytes));
    if (a->base != nullptr) {
      fill_poison(a->base, a->base_bytes);  // unwritten device memory reads as NaN / a huge index
      a->begin = reinterpret_cast<uintptr_t>(a->base + DeviceAllocation::kRedzoneBefore);
    }
  }
  std::lock_guard<std::mutex> lock(r.m);
  if (a->base == nullptr) {
    r.allocated -= rounded;
    *error = "cudaMalloc(" + std::to_string(bytes) + "): host allocation failed";
    return nullptr;
  }
  a->init_tracked = r.init_tracking;
  if (a->init_tracked) a->written.assign((bytes + 7) / 8, 0);
  r.by_address[a->begin] = a;
  return reinterpret_cast<void*>(a->begin);
}

bool free_device(void* ptr) {
  Registry& r = registry();
  std::vector<std::shared_ptr<DeviceAllocation>> evicted;  // released after the lock, unless a launch holds them
  {
    std::lock_guard<std::mutex> lock(r.m);
    auto it = r.by_address.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == r.by_address.end() || it->second->freed) return false;
    std::shared_ptr<DeviceAllocation> a = it->second;
    a->freed = true;
    r.allocated -= a->rounded;
    if (a->mapped) {  // keep the address range reserved and inaccessible; give the memory back
      mprotect(a->base, a->base_bytes, PROT_NONE);
      madvise(a->base, a->base_bytes, MADV_DONTNEED);
    } else {
      fill_poison(a->base, a->base_bytes);
    }
    r.quarantine.push_back(a);
    r.quarantined += a->mapped ? 0 : a->base_bytes;  // mapped ones hold only address space
    while (r.quarantined > kQuarantineBytes || r.quarantine.size() > 4096) {
      std::shared_ptr<DeviceAllocation> old = r.quarantine.front();
      r.quarantine.pop_front();
      r.quarantined -= old->mapped ? 0 : old->base_bytes;
      r.by_address.erase(old->begin);
      evicted.push_back(old);
    }
  }
  return true;
}

size_t device_bytes_allocated() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.m);
  return r.allocated;
}

bool inside_device_allocation(const void* p, size_t bytes) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.m);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const DeviceAllocation* d = find_locked(r, a);
  return d != nullptr && !d->freed && a >= d->begin && a + bytes <= d->begin + d->rounded;
}

void mark_device_written(const void* p, size_t bytes) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.m);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  DeviceAllocation* d = find_locked(r, a);
  if (d != nullptr && d->init_tracked && a >= d->begin) d->mark_written(a - d->begin, bytes);
}

void set_init_tracking(bool on) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.m);
  if (on == r.init_tracking) return;
  r.init_tracking = on;
  for (auto& [begin, a] : r.by_address) {
    a->init_tracked = false;
    a->written.clear();
    a->written.shrink_to_fit();
  }
}

std::vector<std::shared_ptr<DeviceAllocation>> device_allocations_snapshot() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.m);
  std::vector<std::shared_ptr<DeviceAllocation>> v;
  v.reserve(r.by_address.size());
  for (auto& [begin, a] : r.by_address) v.push_back(a);
  return v;
}

}  // namespace sim
}  // namespace paralon
