// racecheck and the shared-memory half of initcheck.
//
// One shadow record per byte of shared memory (the static block, then the dynamic arena): the block it
// was last touched in, its last writer and last reader with the barrier epoch and the warp-sync count
// of their warp at the time. Two accesses by different threads are ordered when a __syncthreads
// completed between them (the block's epoch moved past the first one's), or, within one warp, when a
// __syncwarp including both lanes did. Only __syncwarp orders memory within a warp: shuffles, votes and
// the other warp collectives exchange registers, not shared memory (CUDA C++ Programming Guide), and
// since Volta a warp's lanes need not run in step between them.
//
// Reported: read-after-write and write-after-write between unordered threads, write-after-read
// against the last reader, and against "readers of several warps" (a reader of another warp then
// exists, and only a barrier could order it), including cp.async data landing over bytes another
// thread still reads. Epochs and warp-sync counts only grow (over blocks too), so nothing is reset
// per block except what the block serial makes stale.
#include <cstdio>
#include <string>
#include <vector>

#include "sim/internal.h"

namespace paralon {
namespace sim {
namespace {

// kAtomic: the last write was an atomic, which no plain access races with (a CAS loop's first plain
// read is the usual case), as compute-sanitizer's racecheck does.
// kAsyncCopy: the last write was cp.async data landing.
// kTma: the last write was a TMA copy; write_sync then holds its sequence number, and a thread may read
// the byte only once it has observed the mbarrier phase that copy completed (sim/tma.cc).
enum : uint8_t { kWritten = 1, kRead = 2, kReadersSpanWarps = 4, kAtomic = 8, kAsyncCopy = 16, kTma = 32 };

struct ByteShadow {
  uint32_t block;  // serial of the block these fields belong to; older: never touched in this block
  uint32_t write_epoch, write_sync, read_epoch, read_sync;
  uint16_t writer, reader;
  uint8_t flags;
};

struct WarpSync {
  uint32_t count;    // __syncwarp completions (monotonic)
  uint32_t full_at;  // count at the last one that included every lane of the warp
  uint32_t existing; // lanes of the warp in this block
  uint32_t pair[32][32];  // pair[b][a]: count at the last one including lanes a and b
};

struct RaceState {
  std::vector<ByteShadow> shadow;
  WarpSync warps[32];
  uint32_t block_serial = 0;
  uint32_t epoch = 1;
  uint32_t sync_counter = 1;
  bool racecheck = false, initcheck = false;
};
RaceState race;

bool ordered(uint16_t earlier, uint32_t earlier_epoch, uint32_t earlier_sync, int thread) {
  if (earlier == thread) return true;
  if (race.epoch > earlier_epoch) return true;
  if (earlier / 32 != thread / 32) return false;
  const WarpSync& w = race.warps[thread / 32];
  return w.full_at > earlier_sync || w.pair[thread % 32][earlier % 32] > earlier_sync;
}

std::string location_text(const SharedLocation& at, size_t byte) {
  return std::string(at.dynamic ? "dynamic" : "static") + " shared memory byte " + std::to_string(at.offset + byte);
}

[[noreturn]] void hazard(const char* kind, const SharedLocation& at, size_t byte, const std::string& other,
                         const char* action) {
  const std::string what = std::string("racecheck: ") + kind + " hazard at " + location_text(at, byte) + ": " +
                           other + ", with no __syncthreads (or, within a warp, __syncwarp) between, " + action;
  device_fault(cudaErrorLaunchFailure, what.c_str());
}

std::string writer_text(const ByteShadow& e) {
  return (e.flags & kAsyncCopy) ? "cp.async data of thread " + thread_text(e.writer) + " landed on it"
                                : "thread " + thread_text(e.writer) + " wrote it";
}

ByteShadow& entry(size_t index) {
  ByteShadow& e = race.shadow[index];
  if (e.block != race.block_serial) e = ByteShadow{race.block_serial, 0, 0, 0, 0, 0, 0, 0};
  return e;
}

void check_write(ByteShadow& e, const SharedLocation& at, size_t byte, int thread, const char* action) {
  if ((e.flags & kWritten) && !(e.flags & kAtomic) && !ordered(e.writer, e.write_epoch, e.write_sync, thread)) {
    hazard("write-after-write", at, byte, writer_text(e), action);
  }
  if (!(e.flags & kRead)) return;
  if (!ordered(e.reader, e.read_epoch, e.read_sync, thread)) {
    hazard("write-after-read", at, byte, "thread " + thread_text(e.reader) + " read it", action);
  }
  if ((e.flags & kReadersSpanWarps) && e.read_epoch == race.epoch) {
    hazard("write-after-read", at, byte, "threads of several warps read it", action);
  }
}

void record_write(ByteShadow& e, int thread) {
  e.flags = kWritten;
  e.writer = static_cast<uint16_t>(thread);
  e.write_epoch = race.epoch;
  e.write_sync = race.warps[thread / 32].count;
}

[[noreturn]] void out_of_bounds(const SharedLocation& at, size_t bytes, bool write) {
  const std::string what = "memcheck: " + std::to_string(bytes) + "-byte " + (write ? "write" : "read") + " at " +
                           location_text(at, 0) + ", past the end of the launch's dynamic shared memory";
  device_fault(cudaErrorIllegalAddress, what.c_str());
}

}  // namespace

void racecheck_begin_block(int num_warps, const uint32_t* existing_lanes) {
  const SanitizerConfig& c = launch_sanitizers();
  race.racecheck = c.racecheck;
  race.initcheck = c.initcheck;
  if (c.checks_accesses() && race.shadow.size() != shared_shadow_bytes()) {
    race.shadow.assign(shared_shadow_bytes(), ByteShadow{});  // once, by the first launch with checks
  }
  ++race.block_serial;
  ++race.epoch;
  for (int w = 0; w < num_warps; ++w) race.warps[w].existing = existing_lanes[w];
}

void racecheck_barrier() {
  ++race.epoch;
  tma_barrier_completed();
}

void racecheck_warp_synced(int warp, uint32_t group) {
  WarpSync& w = race.warps[warp];
  w.count = ++race.sync_counter;
  if (group == w.existing) {
    w.full_at = w.count;
    return;
  }
  for (uint32_t b = group; b != 0; b &= b - 1) {
    for (uint32_t a = group; a != 0; a &= a - 1) w.pair[__builtin_ctz(b)][__builtin_ctz(a)] = w.count;
  }
}

bool shared_access(const void* p, size_t bytes, bool write, int thread) {
  SharedLocation at;
  if (!locate_shared(p, bytes, &at)) return false;
  if (!at.in_bounds) out_of_bounds(at, bytes, write);
  for (size_t i = 0; i < bytes; ++i) {
    ByteShadow& e = entry(at.index + i);
    if (write) {
      if (race.racecheck) check_write(e, at, i, thread, "then this write");
      record_write(e, thread);
      continue;
    }
    if (race.initcheck && !(e.flags & kWritten)) {
      const std::string what = "initcheck: " + std::to_string(bytes) + "-byte read of " + location_text(at, i) +
                               ", never written in this block";
      device_fault(cudaErrorLaunchFailure, what.c_str());
    }
    if ((race.racecheck || race.initcheck) && (e.flags & kTma) && !tma_data_visible(e.write_sync, thread)) {
      const std::string what = "racecheck: read of " + location_text(at, i) + ", a TMA destination (issued by thread " +
                                thread_text(e.writer) + "), before this thread observed the mbarrier phase that "
                                "completes the copy";
      device_fault(cudaErrorLaunchFailure, what.c_str());
    }
    if (race.racecheck && (e.flags & kWritten) && !(e.flags & kAtomic) && !ordered(e.writer, e.write_epoch, e.write_sync, thread)) {
      hazard("read-after-write", at, i, writer_text(e), "then this read");
    }
    if ((e.flags & kRead) && e.read_epoch == race.epoch && e.reader / 32 != thread / 32) e.flags |= kReadersSpanWarps;
    if ((e.flags & kRead) && e.read_epoch != race.epoch) e.flags &= ~kReadersSpanWarps;
    e.flags |= kRead;
    e.reader = static_cast<uint16_t>(thread);
    e.read_epoch = race.epoch;
    e.read_sync = race.warps[thread / 32].count;
  }
  return true;
}

void cp_async_issued(const void* dst, int thread) {
  SharedLocation at;
  if (!race.racecheck || !locate_shared(dst, 16, &at) || !at.in_bounds) return;
  for (size_t i = 0; i < 16; ++i) check_write(entry(at.index + i), at, i, thread, "then a cp.async issued over it");
}

void cp_async_landed(const void* dst, int thread) {
  SharedLocation at;
  if (!locate_shared(dst, 16, &at) || !at.in_bounds) return;
  for (size_t i = 0; i < 16; ++i) {
    ByteShadow& e = entry(at.index + i);
    if (race.racecheck) check_write(e, at, i, thread, "then cp.async data landed over it (at the issuer's wait)");
    record_write(e, thread);
    e.flags |= kAsyncCopy;
  }
}

void async_proxy_write(const void* dst, size_t bytes, int thread, uint32_t sequence) {
  SharedLocation at;
  if (!locate_shared(dst, bytes, &at)) return;
  if (!at.in_bounds) out_of_bounds(at, bytes, true);
  for (size_t i = 0; i < bytes; ++i) {
    ByteShadow& e = entry(at.index + i);
    if (race.racecheck) check_write(e, at, i, thread, "then a TMA copy issued over it");
    record_write(e, thread);
    e.flags |= kAtomic | kAsyncCopy | kTma;
    e.write_sync = sequence;
  }
}

void shared_atomic(const void* p, size_t bytes, int thread) {
  SharedLocation at;
  if (!locate_shared(p, bytes, &at)) return;
  if (!at.in_bounds) out_of_bounds(at, bytes, true);
  for (size_t i = 0; i < bytes; ++i) {
    ByteShadow& e = entry(at.index + i);
    if (race.initcheck && !(e.flags & kWritten)) {
      const std::string what = "initcheck: atomic on " + location_text(at, i) + ", never written in this block";
      device_fault(cudaErrorLaunchFailure, what.c_str());
    }
    record_write(e, thread);
    e.flags |= kAtomic;
  }
}

}  // namespace sim
}  // namespace paralon
