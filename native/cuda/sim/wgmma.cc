// wgmma.mma_async m64nNk16 (f32 += bf16/f16 · bf16/f16, A and B from shared-memory descriptors, both
// K-major), wgmma.fence / commit_group / wait_group, modelled from the PTX ISA.
//
// Operand addressing (K-major, 2-byte elements), element (row r, k) of a 64 × 16 (A) or N × 16 (B) tile:
//   no swizzle:  start + (r / 8)·SBO + (k / 8)·LBO + (r % 8)·16 + (k % 8)·2
//   swizzled:    swizzle(start + (r / 8)·SBO + (r % 8)·span + k·2), span 128 / 64 / 32 bytes
// (hopper_layout.h's swizzle_address; the pattern is a function of the shared address, as TMA writes
// it, so a descriptor whose start is advanced by 32 bytes per k16 step inside a 128-byte row reads what
// a 1024-byte-aligned TMA box stored). Base offset ≠ 0 is not modelled (fault).
//
// Asynchrony: each thread issues its part: at issue the simulator copies the shared bytes its D
// fragment needs (two rows of A, N/4 columns of B) and the accumulator's contents; at the
// wgmma.wait_group that retires the group it computes D = A·B (+ D) with exact products and a double
// sum rounded once to f32 (as the mma.sync model), after checking that
//   - the operand bytes still hold what they held at issue (a stage overwritten — by TMA, cp.async or a
//     store — while the MMA may still read it is a fault, whatever the timing on hardware),
//   - the accumulator registers were not touched between issue and wait.
// Beyond hardware it also faults on: a wgmma with no wgmma.fence since the thread's last wait (or
// kernel start), a block size that is not whole warpgroups, threads of a warpgroup issuing different
// wgmmas (.aligned: descriptors, shape, scale-d, type) or different numbers of them, and a thread that
// ends with wgmma groups in flight. Under the sanitizers the operand reads are reported at issue and again at the wait
// (initcheck; racecheck: unsynchronised writes before, TMA data whose mbarrier phase this thread has
// not observed, and — at the wait — writes after it without a barrier).
#include <cstring>
#include <string>
#include <vector>

#include "sim/internal.h"

namespace paralon {
namespace sim {
namespace {

struct Operand {
  std::vector<uint32_t> address;  // shared window address of each element
  std::vector<uint16_t> bits;     // its contents at issue
};

struct PendingMma {
  uint32_t group;
  float* d;
  int n;
  int scale_d;
  MmaType type;
  Operand a, b;                   // a: rows r0, r0 + 8 × 16 k; b: columns (j, h) × 16 k
  std::vector<float> d_at_issue;  // first op of a chain on d: the accumulator as issued
};

struct ThreadMma {
  bool fenced = false;
  uint32_t committed = 0;
  uint32_t issued = 0;  // wgmmas issued in this block
  std::vector<PendingMma> ops;
};

// What the first thread of a warpgroup to reach its i-th wgmma issued; the others must match (.aligned).
struct Issue {
  uint64_t desc_a, desc_b;
  int n, scale_d;
  MmaType type;
  bool operator==(const Issue& o) const {
    return desc_a == o.desc_a && desc_b == o.desc_b && n == o.n && (scale_d != 0) == (o.scale_d != 0) && type == o.type;
  }
};

// Per block, sized at the block's first wgmma instruction (most kernels have none: nothing to reset).
std::vector<ThreadMma> threads;
std::vector<std::vector<Issue>> warpgroup_issues;
int block_threads = 0;

struct Descriptor {
  uint32_t start, lbo, sbo, base_offset;
  Swizzle swizzle;
};

Descriptor decode(uint64_t desc) {
  return Descriptor{static_cast<uint32_t>(desc & 0x3FFF) << 4, static_cast<uint32_t>((desc >> 16) & 0x3FFF) << 4,
                    static_cast<uint32_t>((desc >> 32) & 0x3FFF) << 4, static_cast<uint32_t>((desc >> 49) & 7),
                    static_cast<Swizzle>(desc >> 62)};
}

uint32_t element_address(const Descriptor& d, int r, int k) {
  if (d.swizzle == Swizzle::kNone) {
    return d.start + (r / 8) * d.sbo + (k / 8) * d.lbo + (r % 8) * 16 + (k % 8) * 2;
  }
  return swizzle_address(d.start + (r / 8) * d.sbo + (r % 8) * swizzle_span(d.swizzle) + k * 2, d.swizzle);
}

uint16_t read_element(uint32_t address, bool report, int thread) {
  unsigned char* p = shared_window_pointer(address, 2);
  if (address % 2 != 0) device_fault(cudaErrorMisalignedAddress, "wgmma: operand element not 2-byte aligned");
  if (report) shared_access(p, 2, false, thread);
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void gather(Operand& o, const Descriptor& d, int row, bool report, int thread) {
  for (int k = 0; k < 16; ++k) {
    const uint32_t at = element_address(d, row, k);
    o.address.push_back(at);
    o.bits.push_back(read_element(at, report, thread));
  }
}

float to_float(uint16_t bits, MmaType type) {
  if (type == kMmaBf16) {
    const uint32_t f = static_cast<uint32_t>(bits) << 16;
    float r;
    std::memcpy(&r, &f, 4);
    return r;
  }
  __half_raw raw;
  raw.x = bits;
  return __half2float(__half(raw));
}

void recheck(const Operand& o, const char* which, bool report, int thread) {
  for (size_t i = 0; i < o.address.size(); ++i) {
    if (read_element(o.address[i], report, thread) != o.bits[i]) {
      const std::string what = std::string("wgmma: shared memory of operand ") + which + " (window address " +
                               std::to_string(o.address[i]) +
                               ") changed between the wgmma and the wgmma.wait_group that retires it";
      device_fault(cudaErrorLaunchFailure, what.c_str());
    }
  }
}

void retire(PendingMma& op, int t) {
  const bool report = access_checks_active.load(std::memory_order_relaxed);
  const int thread = current_thread_index();
  recheck(op.a, "A", report, thread);
  recheck(op.b, "B", report, thread);
  if (!op.d_at_issue.empty() && std::memcmp(op.d_at_issue.data(), op.d, op.d_at_issue.size() * 4) != 0) {
    device_fault(cudaErrorLaunchFailure, "wgmma: accumulator registers changed while the wgmma was in flight");
  }
  const int lane = t % 32;
  for (int i = 0; i < op.n / 2; ++i) {
    const int r = wgmma_d_row(t, i), c = wgmma_d_col(t, i);
    const int ra = (r - (16 * (t / 32) + lane / 4)) / 8;       // 0 or 1: which of the thread's A rows
    const int cb = 2 * (c / 8) + (c % 2);                       // which of the thread's B columns
    double acc = op.scale_d ? static_cast<double>(op.d[i]) : 0.0;
    for (int k = 0; k < 16; ++k) {
      acc += static_cast<double>(to_float(op.a.bits[ra * 16 + k], op.type)) *
             static_cast<double>(to_float(op.b.bits[cb * 16 + k], op.type));
    }
    op.d[i] = static_cast<float>(acc);
  }
}

ThreadMma& me() {
  if (threads.empty()) {
    threads.assign(static_cast<size_t>(block_threads), ThreadMma{});
    warpgroup_issues.assign(static_cast<size_t>((block_threads + 127) / 128), {});
  }
  return threads.at(static_cast<size_t>(current_thread_index()));
}

}  // namespace

void hopper_barriers_begin_block(int num_threads);  // tma.cc

void hopper_begin_block(int num_threads) {
  block_threads = num_threads;
  threads.clear();
  warpgroup_issues.clear();
  hopper_barriers_begin_block(num_threads);
}

std::string hopper_end_block() {
  for (size_t i = 0; i < threads.size(); ++i) {
    const size_t first = i / 128 * 128;
    if (threads[i].issued != threads[first].issued) {
      return "wgmma is .aligned: thread " + thread_text(static_cast<int>(i)) + " issued " +
             std::to_string(threads[i].issued) + " wgmma(s), thread " + thread_text(static_cast<int>(first)) +
             " of its warpgroup " + std::to_string(threads[first].issued);
    }
    if (!threads[i].ops.empty()) {
      return "thread " + thread_text(static_cast<int>(i)) + " ended with " + std::to_string(threads[i].ops.size()) +
             " wgmma operation(s) not retired by wgmma.wait_group";
    }
  }
  return {};
}

void model_wgmma_fence() { me().fenced = true; }

void model_wgmma_commit() { ++me().committed; }

void model_wgmma_wait(int n) {
  ThreadMma& m = me();
  const int t = current_thread_index() % 128;
  const uint32_t retired = m.committed > uint32_t(n) ? m.committed - n : 0;  // groups < retired complete
  size_t kept = 0;
  for (size_t i = 0; i < m.ops.size(); ++i) {
    if (m.ops[i].group < retired) {
      retire(m.ops[i], t);
    } else {
      if (kept != i) m.ops[kept] = std::move(m.ops[i]);  // (a vector's self-move would empty it)
      ++kept;
    }
  }
  m.ops.resize(kept);
  m.fenced = false;
}

void model_wgmma_issue(float* d, int n, uint64_t desc_a, uint64_t desc_b, int scale_d, MmaType type) {
  const dim3 bd = current_block.block_dim;
  if ((bd.x * bd.y * bd.z) % 128 != 0) device_fault(cudaErrorLaunchFailure, "wgmma: the block is not whole warpgroups");
  if (n < 8 || n > 256 || n % 8 != 0) device_fault(cudaErrorLaunchFailure, "wgmma: N must be 8..256, a multiple of 8");
  ThreadMma& m = me();
  if (!m.fenced) device_fault(cudaErrorLaunchFailure, "wgmma: no wgmma.fence before this wgmma (since the last wait_group)");
  const Descriptor da = decode(desc_a), db = decode(desc_b);
  if (da.base_offset != 0 || db.base_offset != 0) {
    device_fault(cudaErrorLaunchFailure, "wgmma: descriptor base offset != 0 is not modelled by the simulator");
  }
  const int thread = current_thread_index();
  const int t = thread % 128, lane = t % 32;
  // .sync.aligned: every thread of the warpgroup executes the same wgmma sequence.
  std::vector<Issue>& seen = warpgroup_issues.at(static_cast<size_t>(thread / 128));
  const Issue issue{desc_a, desc_b, n, scale_d, type};
  if (m.issued == seen.size()) {
    seen.push_back(issue);
  } else if (!(seen[m.issued] == issue)) {
    device_fault(cudaErrorLaunchFailure,
                 ("wgmma is .aligned: wgmma #" + std::to_string(m.issued) + " of this thread differs (descriptors, " +
                  "shape, scale-d or type) from the same wgmma of another thread of its warpgroup")
                     .c_str());
  }
  ++m.issued;
  const bool report = access_checks_active.load(std::memory_order_relaxed);
  PendingMma op{m.committed, d, n, scale_d, type, {}, {}, {}};
  const int r0 = 16 * (t / 32) + lane / 4;
  gather(op.a, da, r0, report, thread);
  gather(op.a, da, r0 + 8, report, thread);
  for (int j = 0; j < n / 8; ++j) {
    for (int h = 0; h < 2; ++h) gather(op.b, db, 8 * j + 2 * (lane % 4) + h, report, thread);
  }
  bool chained = false;
  for (const PendingMma& p : m.ops) chained |= p.d == d;
  if (!chained) op.d_at_issue.assign(d, d + n / 2);
  m.ops.push_back(std::move(op));
}

}  // namespace sim
}  // namespace paralon
