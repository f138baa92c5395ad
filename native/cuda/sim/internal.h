// The simulator runtime's internal interfaces (not for kernels or backend code).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "sim/device.h"
#include "sim/runtime_api.h"

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

// ---- warp_ops.cc: the results of a completed warp collective. lanes[l] is lane l's slot (null for
// lanes that do not exist); group is the set of participating lanes, all with the same op. Faults
// (misaligned ldmatrix rows, ...) end the calling fiber through device_fault.
void compute_warp_op(LaneSlot* const lanes[32], uint32_t group);
std::string describe_warp_op(const LaneSlot& slot);

// ---- block_runner.cc
bool on_simulator_fiber();  // true while kernel code runs (on the simulator thread)

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
