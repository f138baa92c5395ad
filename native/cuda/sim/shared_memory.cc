// Shared memory of the simulated block.
//
// Static __shared__ variables are `static thread_local` (device.h), so on the simulator thread they all
// live in this module's TLS block, which dl_iterate_phdr reports (dlpi_tls_data, PT_TLS p_memsz). Before
// every block the whole block is filled with the poison (kPoisonWord): cost ~ its size (the sum of every kernel's static
// shared memory) per block. Dynamic shared memory is one arena of 99 KiB + canaries; the requested size
// is poisoned and 256 canary bytes after it are checked when the block ends.
#include <link.h>

#include <cstring>
#include <string>

#include "sim/internal.h"

namespace paralon {
namespace sim {
namespace {

thread_local unsigned char tls_anchor;  // locates this module's TLS block on the simulator thread

constexpr size_t kCanaryBytes = 256;
constexpr unsigned char kCanary = 0xA5;

unsigned char* tls_begin = nullptr;
size_t tls_bytes = 0;
size_t dynamic_bytes_in_use = 0;
alignas(128) unsigned char dynamic_arena[kMaxDynamicShared + kCanaryBytes];

int find_tls_block(dl_phdr_info* info, size_t, void*) {
  auto* block = static_cast<unsigned char*>(info->dlpi_tls_data);
  if (block == nullptr) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_TLS && &tls_anchor >= block && &tls_anchor < block + ph.p_memsz) {
      tls_begin = block;
      tls_bytes = ph.p_memsz;
      return 1;
    }
  }
  return 0;
}

}  // namespace

void shared_memory_thread_init() {
  tls_anchor = 1;  // allocates the module's TLS block on this thread (dynamic TLS is lazy)
  dl_iterate_phdr(find_tls_block, nullptr);
  current_block.dynamic_shared = dynamic_arena;
}

void shared_memory_prepare_block(size_t dynamic_bytes) {
  if (tls_begin != nullptr) fill_poison(tls_begin, tls_bytes);
  dynamic_bytes_in_use = dynamic_bytes;
  fill_poison(dynamic_arena, dynamic_bytes + 1);  // + 1: an odd size's last byte too
  std::memset(dynamic_arena + dynamic_bytes, kCanary, kCanaryBytes);
}

std::string shared_memory_check_canaries(size_t dynamic_bytes) {
  const unsigned char* canary = dynamic_arena + dynamic_bytes;
  for (size_t i = 0; i < kCanaryBytes; ++i) {
    if (canary[i] != kCanary) {
      return "write past the end of dynamic shared memory (" + std::to_string(dynamic_bytes) +
             " bytes requested) at byte offset " + std::to_string(dynamic_bytes + i);
    }
  }
  return {};
}

bool is_shared_range(const void* p, size_t bytes) {
  auto* b = static_cast<const unsigned char*>(p);
  auto inside = [&](const unsigned char* lo, size_t n) { return b >= lo && b + bytes <= lo + n; };
  return inside(tls_begin, tls_bytes) || inside(dynamic_arena, dynamic_bytes_in_use);
}

bool locate_shared(const void* p, size_t bytes, SharedLocation* where) {
  auto* b = static_cast<const unsigned char*>(p);
  if (tls_begin != nullptr && b >= tls_begin && b < tls_begin + tls_bytes) {
    where->dynamic = false;
    where->offset = size_t(b - tls_begin);
    where->index = where->offset;
    where->in_bounds = where->offset + bytes <= tls_bytes;
    return true;
  }
  if (b >= dynamic_arena && b < dynamic_arena + sizeof dynamic_arena) {
    where->dynamic = true;
    where->offset = size_t(b - dynamic_arena);
    where->index = tls_bytes + where->offset;
    where->in_bounds = where->offset + bytes <= dynamic_bytes_in_use;
    return true;
  }
  return false;
}

size_t shared_shadow_bytes() { return tls_bytes + sizeof dynamic_arena; }

uint32_t shared_window_address(const void* p) {
  SharedLocation at;
  if (!locate_shared(p, 1, &at)) device_fault(cudaErrorIllegalAddress, "shared_address: pointer is not in shared memory");
  if (at.dynamic) return kDynamicWindowBase + static_cast<uint32_t>(at.offset);
  if (at.offset >= kDynamicWindowBase) {
    device_fault(cudaErrorIllegalAddress, "shared_address: the static __shared__ block exceeds the simulated window");
  }
  return static_cast<uint32_t>(at.offset);
}

unsigned char* shared_window_pointer(uint32_t address, size_t bytes) {
  if (address >= kDynamicWindowBase) {
    const size_t offset = address - kDynamicWindowBase;
    if (offset + bytes <= dynamic_bytes_in_use) return dynamic_arena + offset;
  } else if (tls_begin != nullptr && address + bytes <= tls_bytes) {
    return tls_begin + address;
  }
  const std::string what = "memcheck: shared window address " + std::to_string(address) + " (+" +
                           std::to_string(bytes) + " bytes) is outside the block's shared memory";
  device_fault(cudaErrorIllegalAddress, what.c_str());
}

}  // namespace sim
}  // namespace paralon
