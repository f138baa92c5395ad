// The entry points of GCC's ThreadSanitizer instrumentation (its runtime ABI: __tsan_readN(addr), ...),
// defined here instead of libtsan's: the simulator's kernel files are compiled with -fsanitize=thread
// (CMakeLists.txt) and every load and store of kernel code lands here. While no launch with checks
// runs, each costs a call and a relaxed load. Otherwise the address is classified: an access from
// host code of a .cu file (not on a fiber stack) or to a fiber's own stack is ignored; shared memory
// goes to racecheck.cc, device memory to memcheck.cc, anything else (kernel arguments, module data) is
// not checked. Under a random schedule a shared or device access first yields to another thread of
// the block with probability 1/4, so lanes of a warp interleave between collectives.
#include <cstddef>
#include <cstdint>

#include "sim/internal.h"

namespace paralon {
namespace sim {

std::atomic<bool> access_checks_active{false};

namespace {

struct HookState {
  SanitizerConfig config;
  uintptr_t stacks_begin = 0;
  size_t stacks_bytes = 0;
  uint64_t rng = 0;
};
HookState hooks;

bool on_fiber_stack(uintptr_t a) { return a - hooks.stacks_begin < hooks.stacks_bytes; }

// splitmix64
uint64_t next_random() {
  uint64_t z = (hooks.rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Kernel code (on a fiber) touching memory that is not its own stack.
bool from_kernel(uintptr_t address) {
  return on_fiber_stack(reinterpret_cast<uintptr_t>(__builtin_frame_address(0))) && !on_fiber_stack(address);
}

void maybe_yield() {
  if (hooks.config.schedule_seed != 0 && (next_random() & 3) == 0) device_yield();
}

__attribute__((noinline)) void check(const void* p, size_t bytes, bool write) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (bytes == 0 || !from_kernel(a)) return;
  SharedLocation at;
  if (locate_shared(p, bytes, &at)) {
    maybe_yield();
    shared_access(p, bytes, write, current_thread_index());
    return;
  }
  if (global_access(p, bytes, write)) maybe_yield();  // checked now, yields after: the access is next
}

inline void hook(const void* p, size_t bytes, bool write) {
  if (access_checks_active.load(std::memory_order_relaxed)) check(p, bytes, write);
}

}  // namespace

void set_fiber_stacks(const void* begin, size_t bytes) {
  hooks.stacks_begin = reinterpret_cast<uintptr_t>(begin);
  hooks.stacks_bytes = bytes;
}

void access_checks_begin_launch(const SanitizerConfig& config) {
  hooks.config = config;
  hooks.rng = config.schedule_seed * 0x2545F4914F6CDD1Dull;  // a launch's schedule depends on the seed only
  if (config.checks_accesses()) memcheck_begin_launch();
  access_checks_active.store(config.checks_accesses(), std::memory_order_relaxed);
}

void access_checks_end_launch() {
  access_checks_active.store(false, std::memory_order_relaxed);
  memcheck_end_launch();
}

const SanitizerConfig& launch_sanitizers() { return hooks.config; }
bool random_schedule() { return hooks.config.schedule_seed != 0; }
uint64_t schedule_random() { return next_random(); }

void check_atomic_access(void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (!from_kernel(a)) return;
  const int thread = current_thread_index();
  SharedLocation at;
  if (locate_shared(p, bytes, &at)) {
    shared_atomic(p, bytes, thread);
  } else if (global_access(p, bytes, false)) {
    global_access(p, bytes, true);
  }
}

}  // namespace sim
}  // namespace paralon

using paralon::sim::hook;

extern "C" {
// Called by every instrumented module's constructor; there is nothing to set up.
void __tsan_init() {}

#define PARALON_SIM_HOOKS(N)                                                   \
  void __tsan_read##N(void* p) { hook(p, N, false); }                          \
  void __tsan_write##N(void* p) { hook(p, N, true); }                          \
  void __tsan_unaligned_read##N(void* p) { hook(p, N, false); }                \
  void __tsan_unaligned_write##N(void* p) { hook(p, N, true); }
PARALON_SIM_HOOKS(1)
PARALON_SIM_HOOKS(2)
PARALON_SIM_HOOKS(4)
PARALON_SIM_HOOKS(8)
PARALON_SIM_HOOKS(16)
#undef PARALON_SIM_HOOKS
void __tsan_read_range(void* p, size_t n) { hook(p, n, false); }
void __tsan_write_range(void* p, size_t n) { hook(p, n, true); }

// Host code of the .cu files (std::atomic, shared_ptr, virtual calls) is instrumented too: its atomics
// become these calls, which must do the operation. The memory-order argument is ignored: every one
// is sequentially consistent, which is never weaker than asked.
void __tsan_vptr_update(void**, void*) {}
void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
#define PARALON_SIM_ATOMICS(N, T)                                                                             \
  T __tsan_atomic##N##_load(const volatile T* a, int) { return __atomic_load_n(a, __ATOMIC_SEQ_CST); }         \
  void __tsan_atomic##N##_store(volatile T* a, T v, int) { __atomic_store_n(a, v, __ATOMIC_SEQ_CST); }         \
  T __tsan_atomic##N##_exchange(volatile T* a, T v, int) { return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); } \
  T __tsan_atomic##N##_fetch_add(volatile T* a, T v, int) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); } \
  T __tsan_atomic##N##_fetch_sub(volatile T* a, T v, int) { return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST); } \
  T __tsan_atomic##N##_fetch_and(volatile T* a, T v, int) { return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST); } \
  T __tsan_atomic##N##_fetch_or(volatile T* a, T v, int) { return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST); }   \
  T __tsan_atomic##N##_fetch_xor(volatile T* a, T v, int) { return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST); } \
  T __tsan_atomic##N##_fetch_nand(volatile T* a, T v, int) {                                                  \
    return __atomic_fetch_nand(a, v, __ATOMIC_SEQ_CST);                                                       \
  }                                                                                                           \
  int __tsan_atomic##N##_compare_exchange_strong(volatile T* a, T* c, T v, int, int) {                        \
    return __atomic_compare_exchange_n(a, c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);                   \
  }                                                                                                           \
  int __tsan_atomic##N##_compare_exchange_weak(volatile T* a, T* c, T v, int, int) {                          \
    return __atomic_compare_exchange_n(a, c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);                   \
  }                                                                                                           \
  T __tsan_atomic##N##_compare_exchange_val(volatile T* a, T c, T v, int, int) {                              \
    __atomic_compare_exchange_n(a, &c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);                         \
    return c;                                                                                                 \
  }
PARALON_SIM_ATOMICS(8, uint8_t)
PARALON_SIM_ATOMICS(16, uint16_t)
PARALON_SIM_ATOMICS(32, uint32_t)
PARALON_SIM_ATOMICS(64, uint64_t)
#undef PARALON_SIM_ATOMICS
}
