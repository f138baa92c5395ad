// The simulator's sanitizers (compute-sanitizer's tools, on the host): racecheck, memcheck, initcheck,
// and seeded randomised schedules. Off unless asked for: PARALON_SIM_SANITIZE=racecheck,memcheck,
// initcheck (or "all") and PARALON_SIM_SCHEDULE_SEED=N in the environment, read at every launch, or
// set_sanitizer_config (which overrides the environment until cleared).
//
// How accesses are seen: the kernel files are compiled for the simulator with GCC's ThreadSanitizer
// instrumentation (-fsanitize=thread) but without its runtime; every load and store of kernel code
// calls __tsan_readN / __tsan_writeN, defined in sim/access_hooks.cc, which classify the address
// (fiber stack: ignored; shared memory: sim/racecheck.cc; device allocation: sim/memcheck.cc) and,
// under a random schedule, may switch to another thread of the block first. Code in sim/*.cc is not
// instrumented; what it does on a kernel's behalf (cp.async, ldmatrix, atomics) reports explicitly.
// Findings end the launch like any fault: the error names the tool, the kernel, block, thread and
// address.
#pragma once

#include <cstddef>
#include <cstdint>

namespace paralon {
namespace sim {

struct SanitizerConfig {
  bool racecheck = false;  // shared memory hazards between threads with no barrier / warp sync between
  bool memcheck = false;   // global accesses outside a live allocation (redzones, freed memory)
  bool initcheck = false;  // reads of device or shared memory never written
  uint64_t schedule_seed = 0;  // 0: the deterministic alternating sweep; else seeded random schedules
  bool checks_accesses() const { return racecheck || memcheck || initcheck || schedule_seed != 0; }
};

// The configuration launches use: the override when set, else the environment (an unknown tool name
// there sets *error, when given, and is otherwise ignored).
SanitizerConfig sanitizer_config(const char** error = nullptr);
// Overrides the environment (self-tests, harnesses); clear_sanitizer_config returns to it.
void set_sanitizer_config(const SanitizerConfig& config);
void clear_sanitizer_config();
// Parses "racecheck,memcheck,initcheck" / "all" / "" (unknown names are an error: false, with `error`).
bool parse_sanitizer_list(const char* text, SanitizerConfig* config, const char** error);

}  // namespace sim
}  // namespace paralon
