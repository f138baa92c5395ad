// Runs a launch: one block after another on the simulator thread, the threads of a block as fibers.
//
// A fiber runs until it reaches a collective. __syncthreads completes when every thread of the block
// has arrived; a warp collective when every live lane of its mask has posted the same operation —
// the completing thread computes all results (warp_ops.cc) and carries on, the others become
// runnable. The scheduler sweeps the runnable fibers, alternating ascending and descending order at
// every block barrier so that a missing __syncthreads between a write and another thread's read is
// exposed in one of the two orders; under a seeded random schedule (sim/sanitizers.h) every sweep
// takes a fresh random order instead, and accesses may yield (sim/access_hooks.cc). When nothing is
// runnable: pending __activemask() calls resolve (to the lanes of the warp that reached one);
// otherwise the block is stuck and the launch fails with the reason — barrier divergence when threads
// exited while others wait at __syncthreads, a deadlock description otherwise. Nothing ever blocks
// the process. The sanitizers hear of every barrier, __syncwarp, ldmatrix row and cp.async here.
//
// Launches are serialised by one mutex and handed to a dedicated simulator thread, whose thread-local
// storage holds the static __shared__ variables (see shared_memory.cc).
#include <sys/mman.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sim/allocations.h"
#include "sim/fiber.h"
#include "sim/internal.h"

namespace paralon {
namespace sim {

ThreadContext* current_thread = nullptr;
BlockContext current_block;

namespace {

constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = 128 * 1024;
constexpr size_t kGuardBytes = 4096;

enum class State : uint8_t { kRunnable, kAtBarrier, kAtWarp, kExited };

struct PendingCopy {
  unsigned char* dst;
  unsigned char data[16];
  uint32_t group;
};

struct SimThread {
  ThreadContext ctx;
  FiberContext fiber;
  State state;
  uint32_t committed_groups;         // cp.async groups committed so far
  std::vector<PendingCopy> copies;   // issued, not yet landed
};

struct Warp {
  uint32_t live;     // lanes that exist and have not exited
  uint32_t pending;  // lanes waiting at a warp collective
};

struct Fault {
  cudaError_t code = cudaSuccess;
  std::string message;
};

// State of the launch being simulated (simulator thread only).
struct Launch {
  const LaunchRequest* request = nullptr;
  SimThread threads[kMaxThreads];
  Warp warps[kMaxThreads / 32];
  LaneSlot* lane_slots[kMaxThreads / 32][32];
  int num_threads = 0, num_warps = 0, exited = 0;
  int first_exited = -1;
  int barrier_arrived = 0, barrier_kind = 0, barrier_acc = 0;
  bool descending = false;
  SimThread* running = nullptr;
  std::vector<int> order;  // this sweep's order under a random schedule
  FiberContext scheduler;
  Fault fault;
  unsigned char* stacks = nullptr;
};
Launch launch_state;

std::string dim_text(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

std::string where(const SimThread* t) {
  std::string s = std::string(launch_state.request->name) + " block " + dim_text(current_block.block_idx);
  if (t != nullptr) s += " thread " + dim_text(t->ctx.thread_idx);
  return s;
}

// Back to the scheduler; returns when this fiber is resumed.
void suspend() { fiber_switch(&launch_state.running->fiber, &launch_state.scheduler); }

[[noreturn]] void abandon_fiber() {
  fiber_switch(&launch_state.running->fiber, &launch_state.scheduler);
  __builtin_trap();  // a faulted or exited fiber is never resumed
}

void set_fault(cudaError_t code, const std::string& message) {
  if (launch_state.fault.code == cudaSuccess) launch_state.fault = Fault{code, message};
}

std::string lanes_text(uint32_t mask) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", mask);
  return buf;
}

// Completes the group of pending lane `lane` if every live lane of its mask waits at the same
// operation with the same mask; false if some have not arrived yet. Once all of them wait somewhere,
// a lane at a different collective whose mask includes `lane` can never join: that is a fault (the two
// would wait for each other forever). One whose mask excludes `lane` is just elsewhere, as after a
// divergent branch.
bool try_complete(int warp, int lane) {
  Launch& L = launch_state;
  Warp& w = L.warps[warp];
  LaneSlot* const* slots = L.lane_slots[warp];
  const LaneSlot& s = *slots[lane];
  const bool whole_warp = s.op == WarpOp::kMma || s.op == WarpOp::kLdmatrix;
  const uint32_t group = s.mask & w.live;
  if (whole_warp && w.live != 0xffffffffu) {
    device_fault(cudaErrorIllegalInstruction, (describe_warp_op(s) + " needs all 32 lanes of the warp; live lanes " +
                                               lanes_text(w.live)).c_str());
  }
  if ((group & ~w.pending) != 0) return false;  // some lanes are still running
  uint32_t matching = 0;
  for (uint32_t m = group; m != 0; m &= m - 1) {
    const int other = __builtin_ctz(m);
    const LaneSlot& o = *slots[other];
    if (o.op == s.op && o.variant == s.variant && o.mask == s.mask) {
      matching |= 1u << other;
    } else if (o.op != WarpOp::kActiveMask && (o.mask >> lane & 1u)) {
      device_fault(cudaErrorIllegalInstruction,
                   ("warp collective mismatch: lane " + std::to_string(lane) + " is at " + describe_warp_op(s) +
                    ", lane " + std::to_string(other) + " at " + describe_warp_op(o)).c_str());
    }
  }
  if (matching != group) return false;
  if (s.op == WarpOp::kLdmatrix && access_checks_active.load(std::memory_order_relaxed)) {
    for (int r = 0; r < 8 * (s.variant & 0xF); ++r) shared_access(slots[r]->ptr, 16, false, warp * 32 + r);
  }
  compute_warp_op(slots, group);
  if (s.op == WarpOp::kSyncWarp) racecheck_warp_synced(warp, group);
  w.pending &= ~group;
  for (uint32_t m = group; m != 0; m &= m - 1) {
    SimThread& t = L.threads[warp * 32 + __builtin_ctz(m)];
    if (&t != L.running) t.state = State::kRunnable;
  }
  return true;
}

void complete_barrier() {
  Launch& L = launch_state;
  for (int i = 0; i < L.num_threads; ++i) {
    SimThread& t = L.threads[i];
    if (t.state != State::kAtBarrier) continue;
    t.ctx.slot.out[0] = static_cast<uint32_t>(L.barrier_acc);
    t.state = State::kRunnable;
  }
  L.barrier_arrived = 0;
  L.descending = !L.descending;
  racecheck_barrier();
}

[[noreturn]] void barrier_divergence() {
  Launch& L = launch_state;
  const SimThread& gone = L.threads[L.first_exited];
  set_fault(cudaErrorLaunchFailure,
            "barrier divergence in " + where(nullptr) + ": thread " + dim_text(gone.ctx.thread_idx) +
                " exited while " + std::to_string(L.barrier_arrived) + " thread(s) wait at __syncthreads");
  abandon_fiber();
}

void thread_main(void* arg) {
  Launch& L = launch_state;
  auto* self = static_cast<SimThread*>(arg);
  L.request->thread_entry(L.request->frame.get());
  self->state = State::kExited;
  ++L.exited;
  if (L.first_exited < 0) L.first_exited = static_cast<int>(self - L.threads);
  Warp& w = L.warps[self->ctx.warp];
  w.live &= ~(1u << self->ctx.lane);
  if (L.barrier_arrived > 0 && L.barrier_arrived == L.num_threads - L.exited) barrier_divergence();
  for (uint32_t m = w.pending; m != 0; m &= m - 1) {
    const int lane = __builtin_ctz(m);
    if ((w.pending >> lane & 1u) && L.lane_slots[self->ctx.warp][lane]->op != WarpOp::kActiveMask) {
      try_complete(self->ctx.warp, lane);
    }
  }
  abandon_fiber();
}

// Nothing is runnable: resolve __activemask() or report why the block cannot finish.
bool resolve_stall() {
  Launch& L = launch_state;
  bool resolved = false;
  for (int w = 0; w < L.num_warps; ++w) {
    uint32_t waiting = 0;
    for (uint32_t m = L.warps[w].pending; m != 0; m &= m - 1) {
      const int lane = __builtin_ctz(m);
      if (L.lane_slots[w][lane]->op == WarpOp::kActiveMask) waiting |= 1u << lane;
    }
    if (waiting == 0) continue;
    for (uint32_t m = waiting; m != 0; m &= m - 1) {
      SimThread& t = L.threads[w * 32 + __builtin_ctz(m)];
      t.ctx.slot.out[0] = waiting;
      t.state = State::kRunnable;
    }
    L.warps[w].pending &= ~waiting;
    resolved = true;
  }
  if (resolved) return true;
  if (L.barrier_arrived > 0 && L.exited > 0 && L.barrier_arrived == L.num_threads - L.exited) {
    const SimThread& gone = L.threads[L.first_exited];
    set_fault(cudaErrorLaunchFailure, "barrier divergence in " + where(nullptr) + ": thread " +
                                          dim_text(gone.ctx.thread_idx) + " exited while " +
                                          std::to_string(L.barrier_arrived) + " thread(s) wait at __syncthreads");
    return false;
  }
  std::string why = "deadlock in " + where(nullptr) + ": " + std::to_string(L.barrier_arrived) +
                    " thread(s) wait at __syncthreads";
  for (int i = 0; i < L.num_threads; ++i) {
    const SimThread& t = L.threads[i];
    if (t.state != State::kAtWarp) continue;
    const uint32_t missing = t.ctx.slot.mask & L.warps[t.ctx.warp].live & ~L.warps[t.ctx.warp].pending;
    why += "; thread " + dim_text(t.ctx.thread_idx) + " waits at " + describe_warp_op(t.ctx.slot) +
           " for lanes " + lanes_text(missing) + " of its warp";
    break;
  }
  set_fault(cudaErrorLaunchTimeout, why);
  return false;
}

// The order of the next sweep over the block's threads.
void plan_sweep(int num_threads) {
  Launch& L = launch_state;
  if (!random_schedule()) {
    for (int k = 0; k < num_threads; ++k) L.order[k] = L.descending ? num_threads - 1 - k : k;
    return;
  }
  for (int k = 0; k < num_threads; ++k) L.order[k] = k;
  for (int k = num_threads - 1; k > 0; --k) std::swap(L.order[k], L.order[schedule_random() % (k + 1)]);
}

void run_block(int num_threads) {
  Launch& L = launch_state;
  const dim3 bd = current_block.block_dim;
  L.exited = 0;
  L.first_exited = -1;
  L.barrier_arrived = 0;
  L.descending = false;
  L.order.resize(num_threads);
  uint32_t existing[kMaxThreads / 32];
  for (int w = 0; w < L.num_warps; ++w) {
    const int lanes = num_threads - 32 * w < 32 ? num_threads - 32 * w : 32;
    L.warps[w].live = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    L.warps[w].pending = 0;
    existing[w] = L.warps[w].live;
  }
  racecheck_begin_block(L.num_warps, existing);
  hopper_begin_block(num_threads);
  for (int i = 0; i < num_threads; ++i) {
    SimThread& t = L.threads[i];
    t.ctx.thread_idx = make_uint3(i % bd.x, (i / bd.x) % bd.y, i / (bd.x * bd.y));
    t.ctx.lane = i % 32;
    t.ctx.warp = i / 32;
    t.state = State::kRunnable;
    t.committed_groups = 0;
    t.copies.clear();
    unsigned char* stack = L.stacks + i * (kStackBytes + kGuardBytes) + kGuardBytes;
    fiber_prepare(&t.fiber, stack, kStackBytes, thread_main, &t);
  }
  while (L.fault.code == cudaSuccess && L.exited < num_threads) {
    bool ran = false;
    plan_sweep(num_threads);
    for (int k = 0; k < num_threads && L.fault.code == cudaSuccess; ++k) {
      SimThread& t = L.threads[L.order[k]];
      if (t.state != State::kRunnable) continue;
      L.running = &t;
      current_thread = &t.ctx;
      fiber_switch(&L.scheduler, &t.fiber);
      ran = true;
    }
    if (!ran && L.fault.code == cudaSuccess && L.exited < num_threads && !resolve_stall()) break;
  }
  L.running = nullptr;
  current_thread = nullptr;
}

void run_blocks(const LaunchRequest& r) {
  Launch& L = launch_state;
  L.request = &r;
  L.fault = Fault{};
  L.num_threads = static_cast<int>(r.block.x * r.block.y * r.block.z);
  L.num_warps = (L.num_threads + 31) / 32;
  for (int i = 0; i < L.num_threads; ++i) L.lane_slots[i / 32][i % 32] = &L.threads[i].ctx.slot;
  for (int i = L.num_threads; i < L.num_warps * 32; ++i) L.lane_slots[i / 32][i % 32] = nullptr;
  current_block.block_dim = r.block;
  current_block.grid_dim = r.grid;
  for (unsigned z = 0; z < r.grid.z; ++z) {
    for (unsigned y = 0; y < r.grid.y; ++y) {
      for (unsigned x = 0; x < r.grid.x; ++x) {
        current_block.block_idx = make_uint3(x, y, z);
        shared_memory_prepare_block(r.dynamic_shared_bytes);
        run_block(L.num_threads);
        if (L.fault.code == cudaSuccess) {
          std::string overrun = shared_memory_check_canaries(r.dynamic_shared_bytes);
          if (!overrun.empty()) set_fault(cudaErrorIllegalAddress, overrun + " in " + where(nullptr));
        }
        if (L.fault.code == cudaSuccess) {
          std::string in_flight = hopper_end_block();
          if (!in_flight.empty()) set_fault(cudaErrorLaunchFailure, in_flight + " in " + where(nullptr));
        }
        if (L.fault.code != cudaSuccess) return;
      }
    }
  }
}

void run_grid(const LaunchRequest& r, const SanitizerConfig& config) {
  set_init_tracking(config.initcheck);
  access_checks_begin_launch(config);
  run_blocks(r);
  access_checks_end_launch();
}

// ---- the simulator thread ----
struct Worker {
  std::mutex launch_mutex;  // one launch at a time, process-wide
  std::mutex m;
  std::condition_variable cv;
  const LaunchRequest* job = nullptr;
  SanitizerConfig config;
  bool done = false;
  std::thread thread;
  std::thread::id id;  // of the simulator thread (a detached std::thread forgets it)

  Worker() {
    void* mem = mmap(nullptr, kMaxThreads * (kStackBytes + kGuardBytes), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) return;
    launch_state.stacks = static_cast<unsigned char*>(mem);
    set_fiber_stacks(mem, kMaxThreads * (kStackBytes + kGuardBytes));
    for (int i = 0; i < kMaxThreads; ++i) {
      mprotect(launch_state.stacks + i * (kStackBytes + kGuardBytes), kGuardBytes, PROT_NONE);
    }
    thread = std::thread([this] { loop(); });
    id = thread.get_id();
    thread.detach();  // lives as long as the process; never joined during static destruction
  }

  void loop() {
    shared_memory_thread_init();
    std::unique_lock<std::mutex> lock(m);
    for (;;) {
      cv.wait(lock, [this] { return job != nullptr; });
      run_grid(*job, config);
      job = nullptr;
      done = true;
      cv.notify_all();
    }
  }

  bool ready() const { return launch_state.stacks != nullptr; }

  Fault run(const LaunchRequest& r, const SanitizerConfig& c) {
    std::lock_guard<std::mutex> serial(launch_mutex);
    std::unique_lock<std::mutex> lock(m);
    job = &r;
    config = c;
    done = false;
    cv.notify_all();
    cv.wait(lock, [this] { return done; });
    return launch_state.fault;
  }
};

Worker& worker() {
  static Worker* w = new Worker();  // intentionally leaked: the detached thread may outlive statics
  return *w;
}

std::string config_text(const LaunchRequest& r) {
  return std::string(r.name) + "<<<" + dim_text(r.grid) + ", " + dim_text(r.block) + ", " +
         std::to_string(r.dynamic_shared_bytes) + ">>>";
}

}  // namespace

// ---- called by kernels (on a fiber) ----

void warp_collective() {
  Launch& L = launch_state;
  SimThread& t = *L.running;
  LaneSlot& s = t.ctx.slot;
  const uint32_t bit = 1u << t.ctx.lane;
  if (s.op != WarpOp::kActiveMask && !(s.mask & bit)) {
    device_fault(cudaErrorIllegalInstruction,
                 (describe_warp_op(s) + " called by lane " + std::to_string(t.ctx.lane) + ", which is not in its mask").c_str());
  }
  L.warps[t.ctx.warp].pending |= bit;
  if (s.op != WarpOp::kActiveMask && try_complete(static_cast<int>(t.ctx.warp), static_cast<int>(t.ctx.lane))) return;
  t.state = State::kAtWarp;
  suspend();
}

int block_barrier(int kind, int predicate) {
  Launch& L = launch_state;
  SimThread& t = *L.running;
  if (L.barrier_arrived == 0) {
    L.barrier_kind = kind;
    L.barrier_acc = kind == 2 ? 1 : 0;
  } else if (kind != L.barrier_kind) {
    static const char* const names[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and", "__syncthreads_or"};
    device_fault(cudaErrorIllegalInstruction, (std::string("barrier mismatch: ") + names[kind] +
                                               " while other threads wait at " + names[L.barrier_kind]).c_str());
  }
  const int p = predicate != 0;
  if (kind == 1) L.barrier_acc += p;
  if (kind == 2) L.barrier_acc &= p;
  if (kind == 3) L.barrier_acc |= p;
  t.state = State::kAtBarrier;
  ++L.barrier_arrived;
  if (L.barrier_arrived == L.num_threads - L.exited) {
    if (L.exited > 0) barrier_divergence();
    complete_barrier();
  } else {
    suspend();
  }
  return static_cast<int>(t.ctx.slot.out[0]);
}

void device_fault(cudaError_t code, const char* what) {
  set_fault(code, std::string(what) + " in " + where(launch_state.running));
  abandon_fiber();
}

void device_yield() { suspend(); }

int current_thread_index() {
  const ThreadContext& t = *current_thread;
  return static_cast<int>(t.warp * 32 + t.lane);
}

std::string thread_text(int index) {
  const dim3 bd = current_block.block_dim;
  const unsigned i = static_cast<unsigned>(index);
  return dim_text(make_uint3(i % bd.x, (i / bd.x) % bd.y, i / (bd.x * bd.y)));
}

bool on_simulator_fiber() {
  return launch_state.running != nullptr && std::this_thread::get_id() == worker().id;
}

void cp_async_issue(void* smem_dst, const void* gmem_src, bool pred) {
  SimThread& t = *launch_state.running;
  if (reinterpret_cast<uintptr_t>(smem_dst) % 16 != 0 || (pred && reinterpret_cast<uintptr_t>(gmem_src) % 16 != 0)) {
    device_fault(cudaErrorMisalignedAddress, "cp_async_16: address not 16-byte aligned");
  }
  if (!is_shared_range(smem_dst, 16)) device_fault(cudaErrorIllegalAddress, "cp_async_16: destination is not shared memory");
  if (access_checks_active.load(std::memory_order_relaxed)) {
    if (pred) global_access(gmem_src, 16, false);
    cp_async_issued(smem_dst, current_thread_index());
  }
  PendingCopy c;
  c.dst = static_cast<unsigned char*>(smem_dst);
  c.group = t.committed_groups;
  if (pred) {
    std::memcpy(c.data, gmem_src, 16);
  } else {
    std::memset(c.data, 0, 16);
  }
  t.copies.push_back(c);
}

void cp_async_commit_group() { ++launch_state.running->committed_groups; }

void cp_async_wait_group(int n) {
  SimThread& t = *launch_state.running;
  const uint32_t landed = t.committed_groups > uint32_t(n) ? t.committed_groups - n : 0;  // groups < landed
  size_t kept = 0;
  for (const PendingCopy& c : t.copies) {
    if (c.group < landed) {
      if (access_checks_active.load(std::memory_order_relaxed)) cp_async_landed(c.dst, current_thread_index());
      std::memcpy(c.dst, c.data, 16);
    } else {
      t.copies[kept++] = c;
    }
  }
  t.copies.resize(kept);
}

namespace cuda_names {
long long clock64() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace cuda_names

// ---- called by PARALON_LAUNCH on the launching host thread ----

void run_launch(const LaunchRequest& r) {
  const unsigned long long threads = 1ull * r.block.x * r.block.y * r.block.z;
  std::string bad;
  cudaError_t code = cudaErrorInvalidConfiguration;
  if (on_simulator_fiber()) {  // the launching kernel fails; error state is the host thread's, not ours
    device_fault(cudaErrorNotSupported,
                 (std::string("launch of ") + r.name + " from a kernel (dynamic parallelism is not simulated)").c_str());
  }
  if (threads == 0 || threads > kMaxThreads || r.block.z > 64) {
    bad = "block of " + std::to_string(threads) + " threads (1..1024, z ≤ 64)";
  } else if (r.grid.x == 0 || r.grid.y == 0 || r.grid.z == 0 || r.grid.x > 0x7fffffffu || r.grid.y > 65535 ||
             r.grid.z > 65535) {
    bad = "grid dimensions out of range";
  } else if (r.dynamic_shared_bytes > dynamic_shared_limit(r.kernel)) {
    code = cudaErrorInvalidValue;
    bad = std::to_string(r.dynamic_shared_bytes) + " bytes of dynamic shared memory over the kernel's limit of " +
          std::to_string(dynamic_shared_limit(r.kernel)) + " (cudaFuncSetAttribute raises it up to 99 KiB)";
  } else if (!is_valid_stream(r.stream)) {
    code = cudaErrorInvalidResourceHandle;
    bad = "invalid stream";
  } else if (!worker().ready()) {
    code = cudaErrorMemoryAllocation;
    bad = "cannot map the simulator's fiber stacks";
  }
  const char* config_error = nullptr;
  const SanitizerConfig config = sanitizer_config(&config_error);
  if (bad.empty() && config_error != nullptr) {
    code = cudaErrorInvalidValue;
    bad = config_error;
  }
  if (!bad.empty()) {
    record_error(code, "launch of " + config_text(r) + " failed: " + bad, false);
    return;
  }
  if (capture_work(r.stream, [r] {  // a replay runs under the configuration of its time
        Fault f = worker().run(r, sanitizer_config());
        if (f.code != cudaSuccess) record_error(f.code, f.message, true);
      })) {
    return;
  }
  Fault f = worker().run(r, config);
  if (f.code != cudaSuccess) record_error(f.code, f.message, true);
}

}  // namespace sim
}  // namespace paralon
