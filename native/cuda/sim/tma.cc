// TMA (cp.async.bulk.tensor.2d … mbarrier::complete_tx::bytes) and mbarriers, modelled from the PTX ISA.
//
// mbarrier: an expected-arrival count, the arrivals pending in the current phase, a transaction count
// (expect_tx adds, complete_tx subtracts; it may go negative when a copy completes before its
// expect_tx) and the phase number. The phase completes when no arrival is pending and the
// transaction count is zero; try_wait.parity(P) is true once the phase with parity P has completed,
// i.e. when the current phase's parity differs from P.
//
// A TMA copy writes its box when issued (hardware may land it any time before the phase completes)
// and completes its bytes on the barrier at once. Under the sanitizers each copy has a sequence
// number; a thread may read its bytes (plain loads, wgmma operands) only after it observed the phase
// that completed the copy — its own successful mbarrier wait, or a __syncthreads after another
// thread's — else the read is a fault (a missing mbarrier wait shows even though the data is there);
// the issue is checked for hazards against earlier unsynchronised readers (racecheck), as a cp.async is.
// Landing at issue also makes an overwrite of a stage that an in-flight wgmma still reads visible at
// that wgmma's wait (sim/wgmma.cc compares its operands).
//
// Beyond hardware: using an uninitialised barrier, a wait that cannot complete (no progress of any
// barrier in the block while its threads keep polling: a deadlock on hardware), a destination not
// 128-byte aligned or outside shared memory, and a tensor map not built by make_tensor_map_2d.
#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/internal.h"

namespace paralon {
namespace sim {
namespace {

struct Barrier {
  uint32_t count = 0;     // arrivals per phase
  uint32_t pending = 0;   // arrivals still expected in the current phase
  int64_t tx = 0;         // transaction bytes outstanding (expected minus completed)
  uint32_t phase = 0;
  uint32_t phase_sequence = 0;      // the latest TMA copy counted in the current phase
  uint32_t completed_sequence = 0;  // ... in the completed phases
};

struct BarrierState {
  std::unordered_map<const void*, Barrier> barriers;
  uint64_t polls_without_progress = 0;
  uint32_t sequence = 0;           // TMA copies issued in this block
  std::vector<uint32_t> observed;  // per thread: copies up to this sequence number are visible to it
  int block_threads = 0;           // (observed is sized at the block's first mbarrier_init)
};
BarrierState bars;

constexpr uint64_t kDeadlockPolls = 1u << 20;

Barrier& find_barrier(const void* bar, const char* what) {
  auto it = bars.barriers.find(bar);
  if (it == bars.barriers.end()) {
    device_fault(cudaErrorLaunchFailure,
                 (std::string(what) + ": mbarrier not initialised (mbarrier_init in this block)").c_str());
  }
  return it->second;
}

void complete_if_done(Barrier& b) {
  bars.polls_without_progress = 0;
  if (b.pending != 0 || b.tx != 0) return;
  b.completed_sequence = std::max(b.completed_sequence, b.phase_sequence);
  ++b.phase;
  b.pending = b.count;
}

}  // namespace

std::string model_make_tensor_map_2d(TensorMap* map, const void* base, uint32_t elem_bytes, uint64_t inner, uint64_t outer,
                               uint64_t row_bytes, uint32_t box_inner, uint32_t box_outer, int swizzle) {
  // The constraints cuTensorMapEncodeTiled documents for these arguments.
  if (reinterpret_cast<uintptr_t>(base) % 16 != 0) return "tensor map: global address not 16-byte aligned";
  if (inner == 0 || outer == 0 || inner > (1ull << 32) || outer > (1ull << 32)) return "tensor map: dimension out of range";
  if (row_bytes % 16 != 0 || row_bytes < inner * elem_bytes || row_bytes >= (1ull << 40)) {
    return "tensor map: row stride must be a multiple of 16 bytes covering a row";
  }
  if (box_inner == 0 || box_outer == 0 || box_inner > 256 || box_outer > 256) return "tensor map: box dimension outside 1..256";
  if (box_inner * elem_bytes % 16 != 0) return "tensor map: box inner dimension must be a multiple of 16 bytes";
  if (swizzle < 0 || swizzle > 3) return "tensor map: unknown swizzle";
  const uint32_t span = swizzle == 1 ? 128 : swizzle == 2 ? 64 : swizzle == 3 ? 32 : 0;
  if (span != 0 && box_inner * elem_bytes > span) return "tensor map: box inner dimension exceeds the swizzle span";
  if (span != 0 && box_inner * elem_bytes != span) {
    return "tensor map: the simulator models swizzled boxes whose inner dimension is exactly the swizzle span";
  }
  *map = TensorMap{TensorMap::kMagic, elem_bytes, base, {inner, outer}, row_bytes, {box_inner, box_outer}, swizzle};
  return {};
}

void hopper_barriers_begin_block(int num_threads) {
  bars.barriers.clear();
  bars.polls_without_progress = 0;
  bars.sequence = 0;
  bars.observed.clear();
  bars.block_threads = num_threads;
}

bool tma_data_visible(uint32_t sequence, int thread) {
  return static_cast<size_t>(thread) < bars.observed.size() && bars.observed[thread] >= sequence;
}

void tma_barrier_completed() {
  if (bars.sequence == 0) return;  // no TMA copy in this block
  uint32_t seen = 0;
  for (uint32_t s : bars.observed) seen = std::max(seen, s);
  for (uint32_t& s : bars.observed) s = seen;
}

void model_mbarrier_init(uint64_t* bar, uint32_t count) {
  if (reinterpret_cast<uintptr_t>(bar) % 8 != 0 || !is_shared_range(bar, 8)) {
    device_fault(cudaErrorIllegalAddress, "mbarrier_init: barrier not 8-byte aligned in shared memory");
  }
  if (count == 0 || count > (1u << 20) - 1) device_fault(cudaErrorLaunchFailure, "mbarrier_init: count outside 1..2^20-1");
  if (bars.observed.empty()) bars.observed.assign(static_cast<size_t>(bars.block_threads), 0);
  Barrier& b = bars.barriers[bar];
  b = Barrier{};
  b.count = b.pending = count;
  bars.polls_without_progress = 0;
}

void model_mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  Barrier& b = find_barrier(bar, "mbarrier_arrive_expect_tx");
  if (b.pending == 0) device_fault(cudaErrorLaunchFailure, "mbarrier_arrive_expect_tx: more arrivals than the count");
  b.tx += bytes;
  --b.pending;
  complete_if_done(b);
}

bool model_mbarrier_try_wait_parity(uint64_t* bar, uint32_t parity) {
  Barrier& b = find_barrier(bar, "mbarrier_try_wait_parity");
  if ((b.phase & 1u) != (parity & 1u)) {
    uint32_t& seen = bars.observed.at(static_cast<size_t>(current_thread_index()));
    seen = std::max(seen, b.completed_sequence);
    return true;
  }
  if (++bars.polls_without_progress > kDeadlockPolls) {
    device_fault(cudaErrorLaunchTimeout,
                 ("mbarrier wait cannot complete: phase " + std::to_string(b.phase) + " still expects " +
                  std::to_string(b.pending) + " arrival(s) and " + std::to_string(b.tx) + " transaction byte(s)")
                     .c_str());
  }
  device_yield();
  return false;
}

void model_tma_load_2d(void* smem_dst, const TensorMap* map, uint64_t* bar, int c0, int c1) {
  if (map == nullptr || map->magic != TensorMap::kMagic) {
    device_fault(cudaErrorInvalidValue, "tma_load_2d: not a tensor map built by make_tensor_map_2d");
  }
  if (reinterpret_cast<uintptr_t>(smem_dst) % 128 != 0) {
    device_fault(cudaErrorMisalignedAddress, "tma_load_2d: shared destination not 128-byte aligned");
  }
  Barrier& b = find_barrier(bar, "tma_load_2d");
  const uint32_t eb = map->elem_bytes;
  const uint32_t row_bytes = map->box[0] * eb;
  const size_t box_bytes = static_cast<size_t>(row_bytes) * map->box[1];
  const uint32_t dst = shared_window_address(smem_dst);
  shared_window_pointer(dst, box_bytes);  // faults when the box does not fit
  const Swizzle sw = static_cast<Swizzle>(map->swizzle);
  const bool checks = access_checks_active.load(std::memory_order_relaxed);
  const int thread = current_thread_index();
  const uint32_t sequence = ++bars.sequence;
  b.phase_sequence = sequence;
  const auto* src = static_cast<const unsigned char*>(map->base);
  for (uint32_t r = 0; r < map->box[1]; ++r) {
    const int64_t y = static_cast<int64_t>(c1) + r;
    const bool row_in = y >= 0 && y < static_cast<int64_t>(map->dims[1]);
    // The elements of this box row inside the tensor: x in [c0, c0 + box0) ∩ [0, dims0).
    const int64_t x_lo = std::max<int64_t>(c0, 0);
    const int64_t x_hi = std::min<int64_t>(static_cast<int64_t>(c0) + map->box[0], static_cast<int64_t>(map->dims[0]));
    if (checks && row_in && x_hi > x_lo) {
      global_access(src + y * map->row_bytes + x_lo * eb, static_cast<size_t>(x_hi - x_lo) * eb, false);
    }
    for (uint32_t k = 0; k < map->box[0]; ++k) {
      const int64_t x = static_cast<int64_t>(c0) + k;
      const uint32_t at = swizzle_address(dst + r * row_bytes + k * eb, sw);
      unsigned char* out = shared_window_pointer(at, eb);
      if (checks) async_proxy_write(out, eb, thread, sequence);
      if (row_in && x >= x_lo && x < x_hi) {
        std::memcpy(out, src + y * map->row_bytes + x * eb, eb);
      } else {
        std::memset(out, 0, eb);  // out of bounds: zero fill (OOB_FILL_NONE)
      }
    }
  }
  b.tx -= static_cast<int64_t>(box_bytes);  // complete_tx counts the whole box, zero-filled bytes too
  complete_if_done(b);
}

}  // namespace sim
}  // namespace paralon
