// The simulator runtime's internal interfaces (not for kernels or backend code).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "sim/device.h"
#include "sim/hopper.h"
#include "sim/runtime_api.h"
#include "sim/sanitizers.h"

namespace paralon {
namespace sim {

using namespace cuda_names;

// ---- shared_memory.cc: static __shared__ (the module's TLS block on the simulator thread) and the
// dynamic shared memory arena. All of it runs on the simulator thread.
constexpr size_t kMaxDynamicShared = 99 * 1024;   // sharedMemPerBlockOptin of the simulated device
constexpr size_t kDefaultDynamicShared = 48 * 1024;
void shared_memory_thread_init();                  // once, on the simulator thread
void shared_memory_prepare_block(size_t dynamic_bytes);  // poison static + dynamic, place canaries
// Empty when the canaries after the dynamic shared memory are intact, else what was overwritten.
std::string shared_memory_check_canaries(size_t dynamic_bytes);
bool is_shared_range(const void* p, size_t bytes);
// Where an access lands in shared memory, for racecheck and initcheck: `index` counts bytes over the
// static block then the dynamic arena (shared_shadow_bytes in all); `in_bounds` is false for the part
// of the dynamic arena past the launch's dynamic size. False when p is not in shared memory.
struct SharedLocation {
  size_t index;
  bool dynamic, in_bounds;
  size_t offset;  // within the static block or the dynamic shared memory
};
bool locate_shared(const void* p, size_t bytes, SharedLocation* where);
size_t shared_shadow_bytes();

// Fills with kPoisonWord's pattern (0x7FF0 per 16-bit half; p must be 2-byte aligned).
inline void fill_poison(void* p, size_t bytes) {
  auto* h = static_cast<uint16_t*>(p);
  for (size_t i = 0; i < bytes / 2; ++i) h[i] = 0x7FF0;
}

// ---- warp_ops.cc: the results of a completed warp collective. lanes[l] is lane l's slot (null for
// lanes that do not exist); group is the set of participating lanes, all with the same op. Faults
// (misaligned ldmatrix rows, ...) end the calling fiber through device_fault.
void compute_warp_op(LaneSlot* const lanes[32], uint32_t group);
std::string describe_warp_op(const LaneSlot& slot);

// ---- block_runner.cc
bool on_simulator_fiber();  // true while kernel code runs (on the simulator thread)
// The running thread's index in its block, and a thread index as "(x,y,z)".
int current_thread_index();
std::string thread_text(int index);

// ---- racecheck.cc: shared memory hazards and never-written shared bytes (simulator thread)
void racecheck_begin_block(int num_warps, const uint32_t* existing_lanes);
void racecheck_barrier();                               // a __syncthreads completed
void racecheck_warp_synced(int warp, uint32_t group);   // a __syncwarp of these lanes completed
// A plain access by thread `thread`; false when p is not shared memory. Faults on a finding.
bool shared_access(const void* p, size_t bytes, bool write, int thread);
// cp.async: issue checks the destination for hazards; landing records the write.
void cp_async_issued(const void* dst, int thread);
void cp_async_landed(const void* dst, int thread);
// TMA: copy number `sequence`, issued by `thread`, writes these bytes now (hazards checked against
// earlier accesses); a thread may read them once tma_data_visible(sequence, it) (sim/tma.cc).
void async_proxy_write(const void* dst, size_t bytes, int thread, uint32_t sequence);

// ---- tma.cc: which TMA copies a thread has observed complete (an mbarrier wait that succeeded, or a
// __syncthreads after another thread's: tma_barrier_completed)
bool tma_data_visible(uint32_t sequence, int thread);
void tma_barrier_completed();
// An atomic on shared memory: initialised and recorded as a write, never a hazard with other atomics.
void shared_atomic(const void* p, size_t bytes, int thread);

// ---- memcheck.cc: device memory accesses (simulator thread)
void memcheck_begin_launch();  // snapshots the allocations
void memcheck_end_launch();
// False when p is not in (or near) a device allocation. Faults on a finding.
bool global_access(const void* p, size_t bytes, bool write);

// ---- access_hooks.cc: which checks run in the current launch
void access_checks_begin_launch(const SanitizerConfig& config);
void access_checks_end_launch();
const SanitizerConfig& launch_sanitizers();  // the configuration of the launch being run
bool random_schedule();                 // seeded random schedules in this launch
uint64_t schedule_random();             // the schedule's next random number
void set_fiber_stacks(const void* begin, size_t bytes);  // accesses there are local memory

// ---- runtime_api.cc, called from run_launch on the launching host thread
size_t dynamic_shared_limit(const void* kernel);
bool is_valid_stream(cudaStream_t stream);
// When `stream` is capturing, appends `work` to the graph being captured and returns true; the
// caller then does nothing now (the work runs at every cudaGraphLaunch).
bool capture_work(cudaStream_t stream, std::function<void()> work);
// `asynchronous` errors (kernel faults) are also returned by synchronisation calls.
void record_error(cudaError_t code, std::string message, bool asynchronous);

}  // namespace sim
}  // namespace paralon
