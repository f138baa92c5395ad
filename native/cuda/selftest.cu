// Self-tests of the CUDA execution model: every intrinsic and wrapper of common.cuh checked against
// its documented behaviour (CUDA C++ Programming Guide for the intrinsics, PTX ISA for shfl, ldmatrix,
// mma.sync m16n8k16 and cp.async), with expectations computed on the host from the documentation,
// never from the simulator's own formulas. Built twice like every .cu: on the simulator the tests
// validate the simulator, on a GPU they validate that the simulator's model matches hardware.
// Tests of what only the simulator detects (poisoned shared memory, barrier divergence, shared
// memory overruns, warp-collective mismatches) are compiled for the simulator only.
//
// Every output buffer starts as 0xFF bytes; each kernel is tiny (one to five blocks), so memory
// traffic is irrelevant here.
#include "selftest.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "matmul_wgmma.h"
#if PARALON_CUDA_SIM_BUILD
#include "sim/sanitizers.h"
#endif

namespace paralon {
namespace PARALON_CUDA_NS {
namespace {

constexpr unsigned kFull = 0xffffffffu;

// =====================================================================================================
// Host helpers
// =====================================================================================================

template <typename T>
class Buffer {  // device memory, filled with 0xFF bytes on creation
 public:
  explicit Buffer(size_t n) : n_(n) {
    if (cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)) != cudaSuccess) p_ = nullptr;
    if (p_ != nullptr) cudaMemset(p_, 0xFF, n * sizeof(T));
  }
  explicit Buffer(const std::vector<T>& host) : Buffer(host.size()) {
    if (p_ != nullptr) cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { cudaFree(p_); }
  T* get() const { return p_; }
  std::vector<T> read() const {
    std::vector<T> h(n_);
    std::memset(h.data(), 0xFF, n_ * sizeof(T));
    if (p_ != nullptr) cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

// Empty when the launch and the kernel succeeded, else "cudaErrorX: message".
std::string launch_status() {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  return e == cudaSuccess ? std::string() : std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

// Counts checks and keeps the first mismatch.
class Checker {
 public:
  explicit Checker(std::string name) : name_(std::move(name)) {}
  void expect(bool ok, const std::string& what) {
    ++checks_;
    if (!ok && first_failure_.empty()) first_failure_ = what;
    failures_ += !ok;
  }
  void expect_eq(long long got, long long want, const std::string& what) {
    expect(got == want, what + ": got " + std::to_string(got) + ", expected " + std::to_string(want));
  }
  void launched(const std::string& status) {
    if (!status.empty()) expect(false, "launch failed: " + status);
  }
  SelfTestResult result() const {
    if (failures_ > 0) {
      return {name_, false, std::to_string(failures_) + " of " + std::to_string(checks_) + " checks failed; first: " + first_failure_};
    }
    return {name_, true, std::to_string(checks_) + " checks passed"};
  }

 private:
  std::string name_;
  int checks_ = 0, failures_ = 0;
  std::string first_failure_;
};

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// =====================================================================================================
// Warp shuffles
// =====================================================================================================

enum ShuffleKind { kIdx = 0, kUp = 1, kDown = 2, kXor = 3 };
struct ShuffleCase {
  int kind, width, arg;
};
const ShuffleCase kShuffleCases[] = {
    {kIdx, 32, 0}, {kIdx, 16, 0}, {kIdx, 8, 0}, {kIdx, 4, 0}, {kIdx, 2, 0}, {kIdx, 1, 0},
    {kUp, 32, 1},  {kUp, 16, 3},  {kUp, 8, 5},  {kUp, 4, 4},  {kDown, 32, 1}, {kDown, 16, 3},
    {kDown, 8, 7}, {kDown, 2, 1}, {kXor, 32, 1}, {kXor, 32, 16}, {kXor, 16, 5}, {kXor, 8, 12},
    {kXor, 4, 3},  {kXor, 2, 9},
};
constexpr int kNumShuffleCases = sizeof(kShuffleCases) / sizeof(kShuffleCases[0]);

// idx mode: source lane (lane * 7 + 3) % 40, deliberately past the width (wraps modulo width).
__host__ __device__ inline int idx_source(int lane) { return (lane * 7 + 3) % 40; }

// One warp per case (blockIdx.x = case); int value lane * 1000 + case, double and bf16 variants too.
__global__ void shuffle_kernel(const int* kinds, const int* widths, const int* args, int* out_int,
                               double* out_double, float* out_bf16) {
  const int lane = threadIdx.x, c = blockIdx.x;
  const int kind = kinds[c], width = widths[c], arg = args[c];
  const int v = lane * 1000 + c;
  const double dv = lane * 1.25 + 1.0e10;
  const __nv_bfloat16 bv = __float2bfloat16(static_cast<float>(lane - 7));
  int r = 0;
  double dr = 0;
  __nv_bfloat16 br;
  switch (kind) {
    case kIdx:
      r = __shfl_sync(kFull, v, idx_source(lane), width);
      dr = __shfl_sync(kFull, dv, idx_source(lane), width);
      br = __shfl_sync(kFull, bv, idx_source(lane), width);
      break;
    case kUp:
      r = __shfl_up_sync(kFull, v, arg, width);
      dr = __shfl_up_sync(kFull, dv, arg, width);
      br = __shfl_up_sync(kFull, bv, arg, width);
      break;
    case kDown:
      r = __shfl_down_sync(kFull, v, arg, width);
      dr = __shfl_down_sync(kFull, dv, arg, width);
      br = __shfl_down_sync(kFull, bv, arg, width);
      break;
    default:
      r = __shfl_xor_sync(kFull, v, arg, width);
      dr = __shfl_xor_sync(kFull, dv, arg, width);
      br = __shfl_xor_sync(kFull, bv, arg, width);
      break;
  }
  out_int[c * 32 + lane] = r;
  out_double[c * 32 + lane] = dr;
  out_bf16[c * 32 + lane] = __bfloat162float(br);
}

// Partial mask: only lanes 0, 3, 6, ..., 30 take part; each reads the next participant (cyclic).
__global__ void shuffle_partial_kernel(int* out) {
  const int lane = threadIdx.x;
  unsigned mask = 0;
  for (int l = 0; l < 32; l += 3) mask |= 1u << l;
  int r = -1;
  if (lane % 3 == 0) r = __shfl_sync(mask, lane * 10 + 1, (lane + 3) % 33);
  out[lane] = r;
}

// The source lane per the CUDA Programming Guide's description of each variant.
int documented_source(const ShuffleCase& c, int lane) {
  const int base = lane - lane % c.width;
  switch (c.kind) {
    case kIdx: return base + idx_source(lane) % c.width;
    case kUp: return lane % c.width >= c.arg ? lane - c.arg : lane;
    case kDown: return lane % c.width + c.arg < c.width ? lane + c.arg : lane;
    default: {
      const int j = lane ^ c.arg;  // earlier groups may be read, later ones give the own value
      return j >= base + c.width ? lane : j;
    }
  }
}

SelfTestResult test_shuffles() {
  Checker check("warp shuffles: idx/up/down/xor, widths 1-32, int/double/bf16, partial mask");
  std::vector<int> kinds, widths, args;
  for (const ShuffleCase& c : kShuffleCases) {
    kinds.push_back(c.kind);
    widths.push_back(c.width);
    args.push_back(c.arg);
  }
  Buffer<int> d_kinds(kinds), d_widths(widths), d_args(args);
  Buffer<int> out_int(kNumShuffleCases * 32);
  Buffer<double> out_double(kNumShuffleCases * 32);
  Buffer<float> out_bf16(kNumShuffleCases * 32);
  PARALON_LAUNCH(shuffle_kernel, kNumShuffleCases, 32, 0, nullptr, d_kinds.get(), d_widths.get(), d_args.get(),
                 out_int.get(), out_double.get(), out_bf16.get());
  check.launched(launch_status());
  const std::vector<int> got = out_int.read();
  const std::vector<double> got_d = out_double.read();
  const std::vector<float> got_b = out_bf16.read();
  static const char* const names[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync"};
  for (int c = 0; c < kNumShuffleCases; ++c) {
    const ShuffleCase& sc = kShuffleCases[c];
    for (int lane = 0; lane < 32; ++lane) {
      const int src = documented_source(sc, lane);
      const std::string what = std::string(names[sc.kind]) + "(width " + std::to_string(sc.width) + ", arg " +
                               std::to_string(sc.arg) + ") lane " + std::to_string(lane);
      check.expect_eq(got[c * 32 + lane], src * 1000 + c, what + " int");
      check.expect(got_d[c * 32 + lane] == src * 1.25 + 1.0e10, what + " double");
      check.expect(got_b[c * 32 + lane] == static_cast<float>(src - 7), what + " bf16");
    }
  }
  Buffer<int> partial(32);
  PARALON_LAUNCH(shuffle_partial_kernel, 1, 32, 0, nullptr, partial.get());
  check.launched(launch_status());
  const std::vector<int> p = partial.read();
  for (int lane = 0; lane < 32; ++lane) {
    const int want = lane % 3 == 0 ? ((lane + 3) % 33) * 10 + 1 : -1;
    check.expect_eq(p[lane], want, "partial-mask __shfl_sync lane " + std::to_string(lane));
  }
  return check.result();
}

// =====================================================================================================
// Votes, warp reductions, __syncwarp, __activemask
// =====================================================================================================

// 3 warps. Per warp w, 12 outputs: full-mask ballot/any/all, odd-lane (mask 0xAAAAAAAA) ballot/any/all,
// reduce add(int)/min(int)/max(unsigned)/and/or/xor over lanes 0-22 (mask 0x007FFFFF), activemask in
// a branch taken by lanes 4-19.
constexpr int kVoteOutputs = 13;
__global__ void vote_kernel(int* out) {
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
  int* o = out + (w * 32 + lane) * kVoteOutputs;
  o[0] = static_cast<int>(__ballot_sync(kFull, (lane * 5 + w) % 3 == 0));
  o[1] = __any_sync(kFull, lane == 17 && w == 1);
  o[2] = __all_sync(kFull, lane < 32 - w);
  if (lane % 2 == 1) {
    const unsigned odd = 0xAAAAAAAAu;
    o[3] = static_cast<int>(__ballot_sync(odd, lane % 4 == 1));
    o[4] = __any_sync(odd, lane == 7 + w);
    o[5] = __all_sync(odd, lane % 2 == 1 && w != 2);
    __syncwarp(odd);
  }
  if (lane < 23) {
    const unsigned low = 0x007FFFFFu;
    o[6] = __reduce_add_sync(low, lane * 3 - 20 + w);
    o[7] = __reduce_min_sync(low, (lane * 7) % 23 - 11);
    o[8] = static_cast<int>(__reduce_max_sync(low, static_cast<unsigned>((lane * 13) % 29 + w)));
    o[9] = static_cast<int>(__reduce_and_sync(low, 0xFFFF0000u | (1u << (lane % 8)) | 0x100u));
    o[10] = static_cast<int>(__reduce_or_sync(low, 1u << lane));
    o[11] = static_cast<int>(__reduce_xor_sync(low, static_cast<unsigned>(lane + 1)));
  }
  __syncwarp();
  if (lane >= 4 && lane < 20) o[12] = static_cast<int>(__activemask());
}

SelfTestResult test_votes() {
  Checker check("votes and warp reductions: ballot/any/all (full and partial masks), reduce_*, syncwarp, activemask");
  Buffer<int> out(96 * kVoteOutputs);
  PARALON_LAUNCH(vote_kernel, 1, 96, 0, nullptr, out.get());
  check.launched(launch_status());
  const std::vector<int> o = out.read();
  for (int w = 0; w < 3; ++w) {
    unsigned ballot = 0;
    for (int l = 0; l < 32; ++l) ballot |= ((l * 5 + w) % 3 == 0) ? 1u << l : 0u;
    int add = 0, mn = 1 << 30;
    unsigned mx = 0, or_all = 0, xr = 0;
    for (int l = 0; l < 23; ++l) {
      add += l * 3 - 20 + w;
      mn = std::min(mn, (l * 7) % 23 - 11);
      mx = std::max(mx, static_cast<unsigned>((l * 13) % 29 + w));
      or_all |= 1u << l;
      xr ^= static_cast<unsigned>(l + 1);
    }
    for (int lane = 0; lane < 32; ++lane) {
      const int* r = &o[(w * 32 + lane) * kVoteOutputs];
      const std::string at = " warp " + std::to_string(w) + " lane " + std::to_string(lane);
      check.expect_eq(static_cast<unsigned>(r[0]), ballot, "__ballot_sync" + at);
      check.expect_eq(r[1], w == 1, "__any_sync" + at);
      check.expect_eq(r[2], w == 0, "__all_sync" + at);
      if (lane % 2 == 1) {
        check.expect_eq(static_cast<unsigned>(r[3]), 0x22222222u, "partial __ballot_sync" + at);
        check.expect_eq(r[4], (7 + w) % 2 == 1, "partial __any_sync" + at);
        check.expect_eq(r[5], w != 2, "partial __all_sync" + at);
      }
      if (lane < 23) {
        check.expect_eq(r[6], add, "__reduce_add_sync" + at);
        check.expect_eq(r[7], mn, "__reduce_min_sync" + at);
        check.expect_eq(static_cast<unsigned>(r[8]), mx, "__reduce_max_sync" + at);
        check.expect_eq(static_cast<unsigned>(r[9]), 0xFFFF0100u, "__reduce_and_sync" + at);
        check.expect_eq(static_cast<unsigned>(r[10]), or_all, "__reduce_or_sync" + at);
        check.expect_eq(static_cast<unsigned>(r[11]), xr, "__reduce_xor_sync" + at);
      }
      if (lane >= 4 && lane < 20) {
        // Only lanes inside the branch can be active; the own lane always is.
        const unsigned m = static_cast<unsigned>(r[12]);
        check.expect((m & ~0x000FFFF0u) == 0 && (m >> lane & 1u), "__activemask" + at);
      }
    }
  }
  return check.result();
}

// =====================================================================================================
// Block barriers
// =====================================================================================================

// 100 threads (not a multiple of 32): the reductions, and a rotate through shared memory.
__global__ void barrier_kernel(int* out) {
  __shared__ int ring[100];
  const int t = threadIdx.x;
  int* o = out + t * 6;
  o[0] = __syncthreads_count(t % 7 == 0);
  o[1] = __syncthreads_and(t < 100);
  o[2] = __syncthreads_and(t != 50);
  o[3] = __syncthreads_or(t == 99);
  o[4] = __syncthreads_or(0);
  ring[t] = t * 3 + 1;
  __syncthreads();
  o[5] = ring[(t + 1) % 100];
}

SelfTestResult test_barriers() {
  Checker check("__syncthreads, _count/_and/_or on a 100-thread block");
  Buffer<int> out(600);
  PARALON_LAUNCH(barrier_kernel, 1, 100, 0, nullptr, out.get());
  check.launched(launch_status());
  const std::vector<int> o = out.read();
  for (int t = 0; t < 100; ++t) {
    const std::string at = " thread " + std::to_string(t);
    check.expect_eq(o[t * 6 + 0], 15, "__syncthreads_count" + at);
    check.expect_eq(o[t * 6 + 1], 1, "__syncthreads_and(all)" + at);
    check.expect_eq(o[t * 6 + 2], 0, "__syncthreads_and(one false)" + at);
    check.expect_eq(o[t * 6 + 3], 1, "__syncthreads_or(one true)" + at);
    check.expect_eq(o[t * 6 + 4], 0, "__syncthreads_or(none)" + at);
    check.expect_eq(o[t * 6 + 5], ((t + 1) % 100) * 3 + 1, "shared memory after __syncthreads" + at);
  }
  return check.result();
}

// =====================================================================================================
// Atomics
// =====================================================================================================

constexpr int kAtomicBlocks = 5, kAtomicThreads = 96;
struct AtomicGlobals {
  float sum_f;
  unsigned long long sum_ull;
  unsigned inc;
  int cas_counter;
  int exch;
  int max_i;
  unsigned min_u;
  unsigned bits_or;
};

// Per block, in shared memory: add / max / min / CAS-built float max; globally: contended adds, an
// atomicInc that wraps, a CAS-loop counter, an exchange chain, max/min/or.
__global__ void atomic_kernel(AtomicGlobals* g, int* block_out, int* exch_old) {
  __shared__ int s_count;
  __shared__ unsigned s_max;
  __shared__ int s_min;
  __shared__ float s_fmax;
  const int t = threadIdx.x, b = blockIdx.x, id = b * blockDim.x + t;
  if (t == 0) {
    s_count = 0;
    s_max = 0;
    s_min = 1 << 30;
    s_fmax = -1.0e30f;
  }
  __syncthreads();
  atomicAdd(&s_count, 1 + t % 3);
  atomicMax(&s_max, static_cast<unsigned>((t * 37 + b) % 101));
  atomicMin(&s_min, (t * 11) % 97 - 50 + b);
  const float mine = static_cast<float>((t * 29 + b * 7) % 83) * 0.5f;
  int* fmax_bits = reinterpret_cast<int*>(&s_fmax);
  int old = *fmax_bits, assumed;
  do {
    assumed = old;
    if (__int_as_float(assumed) >= mine) break;
    old = atomicCAS(fmax_bits, assumed, __float_as_int(mine));
  } while (old != assumed);
  atomicAdd(&g->sum_f, static_cast<float>(t % 4));
  atomicAdd(&g->sum_ull, (1ull << 33) + static_cast<unsigned long long>(id));
  atomicInc(&g->inc, 6u);
  int c = g->cas_counter, prev;
  do {
    prev = c;
    c = atomicCAS(&g->cas_counter, prev, prev + 2);
  } while (c != prev);
  exch_old[id] = atomicExch(&g->exch, id);
  atomicMax(&g->max_i, (id * 7919) % 1000 - 500);
  atomicMin(&g->min_u, static_cast<unsigned>((id * 104729) % 100000 + 17));
  atomicOr(&g->bits_or, 1u << (id % 32));
  __syncthreads();
  if (t == 0) {
    block_out[b * 4 + 0] = s_count;
    block_out[b * 4 + 1] = static_cast<int>(s_max);
    block_out[b * 4 + 2] = s_min;
    block_out[b * 4 + 3] = __float_as_int(s_fmax);
  }
}

SelfTestResult test_atomics() {
  Checker check("atomics on shared and global memory under contention (add/max/min/CAS/exch/inc/or)");
  const int n = kAtomicBlocks * kAtomicThreads;
  AtomicGlobals init{0.0f, 0ull, 0u, 0, -1, -1000000, 0xFFFFFFFFu, 0u};
  Buffer<AtomicGlobals> g(std::vector<AtomicGlobals>{init});
  Buffer<int> block_out(kAtomicBlocks * 4), exch_old(n);
  PARALON_LAUNCH(atomic_kernel, kAtomicBlocks, kAtomicThreads, 0, nullptr, g.get(), block_out.get(), exch_old.get());
  check.launched(launch_status());
  const AtomicGlobals r = g.read()[0];
  const std::vector<int> bo = block_out.read(), olds = exch_old.read();
  for (int b = 0; b < kAtomicBlocks; ++b) {
    int count = 0, mn = 1 << 30;
    unsigned mx = 0;
    float fmax = -1.0e30f;
    for (int t = 0; t < kAtomicThreads; ++t) {
      count += 1 + t % 3;
      mx = std::max(mx, static_cast<unsigned>((t * 37 + b) % 101));
      mn = std::min(mn, (t * 11) % 97 - 50 + b);
      fmax = std::max(fmax, static_cast<float>((t * 29 + b * 7) % 83) * 0.5f);
    }
    const std::string at = " block " + std::to_string(b);
    check.expect_eq(bo[b * 4 + 0], count, "shared atomicAdd" + at);
    check.expect_eq(bo[b * 4 + 1], mx, "shared atomicMax" + at);
    check.expect_eq(bo[b * 4 + 2], mn, "shared atomicMin" + at);
    check.expect_eq(static_cast<uint32_t>(bo[b * 4 + 3]), float_bits(fmax), "shared atomicCAS float max" + at);
  }
  float sum_f = 0;
  unsigned long long sum_ull = 0;
  int max_i = -1000000;
  unsigned min_u = 0xFFFFFFFFu, bits = 0;
  for (int id = 0; id < n; ++id) {
    sum_f += static_cast<float>((id % kAtomicThreads) % 4);
    sum_ull += (1ull << 33) + static_cast<unsigned long long>(id);
    max_i = std::max(max_i, (id * 7919) % 1000 - 500);
    min_u = std::min(min_u, static_cast<unsigned>((id * 104729) % 100000 + 17));
    bits |= 1u << (id % 32);
  }
  check.expect(r.sum_f == sum_f, "global atomicAdd(float): got " + std::to_string(r.sum_f) + ", expected " + std::to_string(sum_f));
  check.expect(r.sum_ull == sum_ull, "global atomicAdd(unsigned long long)");
  check.expect_eq(r.inc, n % 7, "atomicInc wrapping at 6");
  check.expect_eq(r.cas_counter, 2 * n, "atomicCAS loop counter");
  check.expect_eq(r.max_i, max_i, "global atomicMax(int)");
  check.expect_eq(r.min_u, min_u, "global atomicMin(unsigned)");
  check.expect_eq(r.bits_or, bits, "global atomicOr");
  // The exchange chain: the old values plus the final value are exactly {-1, 0, 1, ..., n-1}.
  std::vector<int> seen(n + 1, 0);
  bool in_range = r.exch >= 0 && r.exch < n;
  if (in_range) ++seen[r.exch + 1];
  for (int v : olds) {
    in_range = in_range && v >= -1 && v < n;
    if (v >= -1 && v < n) ++seen[v + 1];
  }
  bool permutation = in_range;
  for (int s : seen) permutation = permutation && s == 1;
  check.expect(permutation, "atomicExch chain: old values + final value are not a permutation of {-1..n-1}");
  return check.result();
}

// =====================================================================================================
// ldmatrix
// =====================================================================================================

// tile[m][r][c] = m * 1000 + r * 10 + c, rows padded to 16 elements (32 bytes, keeps 16-byte alignment).
// Output per variant (x4, x4.trans, x2, x2.trans), lane, register.
__global__ void ldmatrix_kernel(uint32_t* out) {
  __shared__ __align__(16) uint16_t tile[4][8][16];
  const int lane = threadIdx.x;
  for (int i = lane; i < 4 * 8 * 16; i += 32) {
    const int m = i / 128, r = (i / 16) % 8, c = i % 16;
    tile[m][r][c] = static_cast<uint16_t>(m * 1000 + r * 10 + c);
  }
  __syncwarp();
  const void* row_x4 = &tile[lane / 8][lane % 8][0];
  const void* row_x2 = lane < 16 ? row_x4 : nullptr;  // lanes 16-31: ignored by .x2
  uint32_t r[4];
  ldmatrix_x4(r, row_x4);
  for (int i = 0; i < 4; ++i) out[(0 * 32 + lane) * 4 + i] = r[i];
  ldmatrix_x4_trans(r, row_x4);
  for (int i = 0; i < 4; ++i) out[(1 * 32 + lane) * 4 + i] = r[i];
  ldmatrix_x2(r, row_x2);
  for (int i = 0; i < 2; ++i) out[(2 * 32 + lane) * 4 + i] = r[i];
  ldmatrix_x2_trans(r, row_x2);
  for (int i = 0; i < 2; ++i) out[(3 * 32 + lane) * 4 + i] = r[i];
}

SelfTestResult test_ldmatrix() {
  Checker check("ldmatrix x4 / x4.trans / x2 / x2.trans fragment layout");
  Buffer<uint32_t> out(4 * 32 * 4);
  PARALON_LAUNCH(ldmatrix_kernel, 1, 32, 0, nullptr, out.get());
  check.launched(launch_status());
  const std::vector<uint32_t> o = out.read();
  auto element = [](int m, int r, int c) { return static_cast<uint32_t>(m * 1000 + r * 10 + c); };
  static const char* const names[] = {"ldmatrix_x4", "ldmatrix_x4_trans", "ldmatrix_x2", "ldmatrix_x2_trans"};
  for (int v = 0; v < 4; ++v) {
    const bool trans = v % 2 == 1;
    const int count = v < 2 ? 4 : 2;
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane / 4, t = lane % 4;
      for (int m = 0; m < count; ++m) {
        // PTX ISA: lane l holds row l/4, columns 2(l%4) and 2(l%4)+1 (low half first); .trans transposes.
        const uint32_t want = trans ? element(m, 2 * t, g) | element(m, 2 * t + 1, g) << 16
                                    : element(m, g, 2 * t) | element(m, g, 2 * t + 1) << 16;
        check.expect_eq(o[(v * 32 + lane) * 4 + m], want,
                        std::string(names[v]) + " lane " + std::to_string(lane) + " r[" + std::to_string(m) + "]");
      }
    }
  }
  return check.result();
}

// =====================================================================================================
// mma.sync m16n8k16: a known 16x16 by 16x8 product, element by element
// =====================================================================================================

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  return static_cast<uint32_t>(__bfloat16_as_ushort(__float2bfloat16(lo))) |
         static_cast<uint32_t>(__bfloat16_as_ushort(__float2bfloat16(hi))) << 16;
}
__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
  return static_cast<uint32_t>(__half_as_ushort(__float2half(lo))) |
         static_cast<uint32_t>(__half_as_ushort(__float2half(hi))) << 16;
}

// One warp loads A [16x16] (row major), B [16x8] (k-major: B[k][n]) and C [16x8] into fragments exactly
// as documented in common.cuh, computes D = A·B + C in place (d aliases c) and stores D by the layout.
template <bool kBf16>
__global__ void mma_kernel(const float* A, const float* B, const float* C, float* D) {
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  auto pack = [](float lo, float hi) { return kBf16 ? pack_bf16(lo, hi) : pack_f16(lo, hi); };
  uint32_t a[4], b[2];
  a[0] = pack(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]);
  a[1] = pack(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]);
  a[2] = pack(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]);
  a[3] = pack(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9]);
  b[0] = pack(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]);
  b[1] = pack(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g]);
  float acc[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
  if (kBf16) {
    mma_bf16_16816(acc, a, b, acc);
  } else {
    mma_f16_16816(acc, a, b, acc);
  }
  D[g * 8 + 2 * t] = acc[0];
  D[g * 8 + 2 * t + 1] = acc[1];
  D[(g + 8) * 8 + 2 * t] = acc[2];
  D[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

template <bool kBf16>
SelfTestResult test_mma() {
  Checker check(kBf16 ? "mma_bf16_16816 fragment layout: 16x16 · 16x8 + C, element by element"
                      : "mma_f16_16816 fragment layout: 16x16 · 16x8 + C, element by element");
  // Small integers and halves: exact in bf16/f16 and in the f32 result, so D must match exactly.
  std::vector<float> A(16 * 16), B(16 * 8), C(16 * 8);
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 16; ++k) A[i * 16 + k] = static_cast<float>((i * 3 + k * 5) % 7 - 3) + (k == i ? 0.5f : 0.0f);
  for (int k = 0; k < 16; ++k)
    for (int j = 0; j < 8; ++j) B[k * 8 + j] = static_cast<float>((k * 2 + j * 7) % 5 - 2) * (j + 1 == k ? 4.0f : 1.0f);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) C[i * 8 + j] = static_cast<float>(i) - 0.25f * static_cast<float>(j);
  Buffer<float> dA(A), dB(B), dC(C), dD(16 * 8);
  PARALON_LAUNCH((mma_kernel<kBf16>), 1, 32, 0, nullptr, dA.get(), dB.get(), dC.get(), dD.get());
  check.launched(launch_status());
  const std::vector<float> D = dD.read();
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      double want = C[i * 8 + j];
      for (int k = 0; k < 16; ++k) want += static_cast<double>(A[i * 16 + k]) * B[k * 8 + j];
      check.expect(D[i * 8 + j] == static_cast<float>(want), "D[" + std::to_string(i) + "][" + std::to_string(j) +
                                                                  "] = " + std::to_string(D[i * 8 + j]) + ", expected " +
                                                                  std::to_string(want));
    }
  }
  return check.result();
}

// =====================================================================================================
// cp.async: zero-fill and wait_group ordering
// =====================================================================================================

// 64 threads, 16 bytes each per group, into dynamic shared memory. Group 0: chunk A; group 1: chunk B,
// zero-filled for threads t % 3 == 0. After wait<1> group 0 must be visible (read through another
// thread's slot); after wait<0> group 1. early_b records chunk B before wait<0> (the simulator lands a
// copy only at the wait, so it must still be poison there; hardware may have landed it already).
__global__ void cp_async_kernel(const float* src, float* out_a, float* out_b, uint32_t* early_b) {
  PARALON_DYNAMIC_SHARED(float, sm);
  const int t = threadIdx.x;
  cp_async_16(&sm[t * 4], &src[t * 4], true);
  cp_async_commit();
  cp_async_16(&sm[256 + t * 4], &src[256 + t * 4], t % 3 != 0);
  cp_async_commit();
  cp_async_wait<1>();
  early_b[t] = __float_as_uint(sm[256 + t * 4 + 1]);
  __syncthreads();
  const int other = (t * 5 + 3) % 64;
  for (int i = 0; i < 4; ++i) out_a[t * 4 + i] = sm[other * 4 + i];
  cp_async_wait<0>();
  __syncthreads();
  for (int i = 0; i < 4; ++i) out_b[t * 4 + i] = sm[256 + other * 4 + i];
}

SelfTestResult test_cp_async() {
  Checker check("cp.async: 16-byte copies, zero-fill, commit/wait_group ordering, dynamic shared memory");
  std::vector<float> src(512);
  for (int i = 0; i < 512; ++i) src[i] = static_cast<float>(i) * 0.75f - 100.0f;
  Buffer<float> d_src(src), out_a(256), out_b(256);
  Buffer<uint32_t> early_b(64);
  PARALON_LAUNCH(cp_async_kernel, 1, 64, 512 * sizeof(float), nullptr, d_src.get(), out_a.get(), out_b.get(),
                 early_b.get());
  check.launched(launch_status());
  const std::vector<float> a = out_a.read(), b = out_b.read();
  for (int t = 0; t < 64; ++t) {
    const int other = (t * 5 + 3) % 64;
    for (int i = 0; i < 4; ++i) {
      const std::string at = " thread " + std::to_string(t) + " element " + std::to_string(i);
      check.expect(a[t * 4 + i] == src[other * 4 + i], "group 0 after wait<1>" + at);
      const float want_b = other % 3 != 0 ? src[256 + other * 4 + i] : 0.0f;
      check.expect(b[t * 4 + i] == want_b && !std::signbit(b[t * 4 + i]) == !std::signbit(want_b),
                   "group 1 after wait<0> (zero-fill when pred is false)" + at);
    }
  }
#if PARALON_CUDA_SIM_BUILD
  const std::vector<uint32_t> early = early_b.read();
  for (int t = 0; t < 64; ++t) {
    check.expect_eq(early[t], sim::kPoisonWord, "group 1 visible before its wait_group, thread " + std::to_string(t));
  }
#endif
  return check.result();
}

// =====================================================================================================
// Math and conversion intrinsics
// =====================================================================================================

constexpr int kMathOutputs = 26;
__global__ void math_kernel(const float* in, uint32_t* out) {
  const float x = in[0], y = in[1], z = in[2], nan = in[3];
  int i = 0;
  out[i++] = __float_as_uint(__expf(x));                      // x = -3.7
  out[i++] = __float_as_uint(__logf(y));                      // y = 123.4
  out[i++] = __float_as_uint(rsqrtf(2.0f));
  out[i++] = __float_as_uint(__fdividef(1.0f, z));            // z = 3
  out[i++] = __float_as_uint(__bfloat162float(__float2bfloat16(1.00390625f)));  // tie → even: 1
  out[i++] = __float_as_uint(__bfloat162float(__float2bfloat16(1.01171875f)));  // tie → even: 1.015625
  out[i++] = __float_as_uint(__bfloat162float(__float2bfloat16(nan)));
  out[i++] = __half_as_ushort(__float2half(0.1f));
  out[i++] = __half_as_ushort(__float2half(65520.0f));       // rounds to +inf
  out[i++] = __half_as_ushort(__float2half(1.0f / 3.0f));
  out[i++] = __float_as_uint(__half2float(__ushort_as_half(static_cast<unsigned short>(0x0001))));  // 2^-24
  const float2 pair = __bfloat1622float2(__floats2bfloat162_rn(x, y));
  out[i++] = __float_as_uint(pair.x);
  out[i++] = __float_as_uint(pair.y);
  out[i++] = static_cast<uint32_t>(__float2int_rn(2.5f));
  out[i++] = static_cast<uint32_t>(__float2int_rn(-2.5f));
  out[i++] = static_cast<uint32_t>(__float2int_rn(3.5f));
  out[i++] = __float_as_uint(__saturatef(nan));
  out[i++] = __float_as_uint(fmaxf(nan, 1.0f));
  out[i++] = static_cast<uint32_t>(__popc(0xF0F0F001u));
  out[i++] = static_cast<uint32_t>(__clz(0x00010000));
  out[i++] = static_cast<uint32_t>(__ffs(0x00000300));
  out[i++] = __brev(0x00000001u);
  out[i++] = __byte_perm(0x33221100u, 0x77665544u, 0x5410u);
  out[i++] = __float_as_uint(__int_as_float(0x40490fdb));
  out[i++] = static_cast<uint32_t>(min(3, -2));
  out[i++] = max(2u, 7u);
}

SelfTestResult test_math() {
  Checker check("math and conversion intrinsics (__expf, __logf, rsqrtf, __fdividef, bf16/f16, bit ops)");
  const std::vector<float> in = {-3.7f, 123.4f, 3.0f, std::nanf("")};
  Buffer<float> d_in(in);
  Buffer<uint32_t> out(kMathOutputs);
  PARALON_LAUNCH(math_kernel, 1, 1, 0, nullptr, d_in.get(), out.get());
  check.launched(launch_status());
  const std::vector<uint32_t> o = out.read();
  auto as_float = [](uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  auto close = [&](int k, double want, double rel, const char* what) {
    const double got = as_float(o[k]);
    check.expect(std::fabs(got - want) <= rel * std::fabs(want), std::string(what) + ": got " + std::to_string(got));
  };
  close(0, std::exp(-3.7), 1e-6, "__expf(-3.7)");
  close(1, std::log(123.4), 1e-6, "__logf(123.4)");
  close(2, 1.0 / std::sqrt(2.0), 1e-6, "rsqrtf(2)");
  close(3, 1.0 / 3.0, 1e-6, "__fdividef(1, 3)");
  check.expect_eq(o[4], float_bits(1.0f), "__float2bfloat16 tie to even (down)");
  check.expect_eq(o[5], float_bits(1.015625f), "__float2bfloat16 tie to even (up)");
  check.expect(std::isnan(as_float(o[6])), "__float2bfloat16(NaN) is NaN");
  check.expect_eq(o[7], 0x2E66u, "__float2half(0.1)");
  check.expect_eq(o[8], 0x7C00u, "__float2half(65520) = inf");
  check.expect_eq(o[9], 0x3555u, "__float2half(1/3)");
  check.expect_eq(o[10], float_bits(std::ldexp(1.0f, -24)), "__half2float(smallest subnormal)");
  check.expect_eq(o[11], 0xC06D0000u, "__floats2bfloat162_rn(-3.7).x");  // -3.703125
  check.expect_eq(o[12], 0x42F70000u, "__floats2bfloat162_rn(123.4).y");  // 123.5
  check.expect_eq(static_cast<int>(o[13]), 2, "__float2int_rn(2.5)");
  check.expect_eq(static_cast<int>(o[14]), -2, "__float2int_rn(-2.5)");
  check.expect_eq(static_cast<int>(o[15]), 4, "__float2int_rn(3.5)");
  check.expect_eq(o[16], 0u, "__saturatef(NaN) = 0");
  check.expect_eq(o[17], float_bits(1.0f), "fmaxf(NaN, 1) = 1");
  check.expect_eq(o[18], 13, "__popc");
  check.expect_eq(o[19], 15, "__clz");
  check.expect_eq(o[20], 9, "__ffs");
  check.expect_eq(o[21], 0x80000000u, "__brev");
  check.expect_eq(o[22], 0x55441100u, "__byte_perm");
  check.expect_eq(o[23], 0x40490fdbu, "__int_as_float");
  check.expect_eq(static_cast<int>(o[24]), -2, "min(int, int)");
  check.expect_eq(o[25], 7u, "max(unsigned, unsigned)");
  return check.result();
}

// =====================================================================================================
// Stream capture and graphs (what the backend's decode graphs rely on)
// =====================================================================================================

__global__ void double_add_kernel(const int* a, int* b) { b[threadIdx.x] += 2 * a[threadIdx.x]; }

SelfTestResult test_graphs() {
  Checker check("stream capture: nothing runs while capturing; a replay re-reads pinned host memory and runs "
                "memset, kernel and copy in order; synchronising a capturing stream invalidates the capture");
  constexpr int n = 8;
  cudaStream_t s = nullptr;
  check.expect(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess, "cudaStreamCreateWithFlags");
  int* host = nullptr;
  check.expect(cudaMallocHost(reinterpret_cast<void**>(&host), n * sizeof(int)) == cudaSuccess, "cudaMallocHost");
  Buffer<int> a(n), b(n), c(n);
  if (s == nullptr || host == nullptr || a.get() == nullptr) return check.result();
  for (int i = 0; i < n; ++i) host[i] = -1;

  check.expect(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed) == cudaSuccess, "cudaStreamBeginCapture");
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  check.expect(cudaStreamIsCapturing(s, &status) == cudaSuccess && status == cudaStreamCaptureStatusActive,
               "cudaStreamIsCapturing reports an active capture");
  cudaMemcpyAsync(a.get(), host, n * sizeof(int), cudaMemcpyHostToDevice, s);
  cudaMemsetAsync(b.get(), 0, n * sizeof(int), s);
  PARALON_LAUNCH(double_add_kernel, 1, n, 0, s, a.get(), b.get());
  cudaMemcpyAsync(c.get(), b.get(), n * sizeof(int), cudaMemcpyDeviceToDevice, s);
  cudaGraph_t graph = nullptr;
  check.expect(cudaStreamEndCapture(s, &graph) == cudaSuccess && graph != nullptr, "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  check.expect(graph != nullptr && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess, "cudaGraphInstantiate");
  check.expect_eq(c.read()[0], -1, "c after the capture (nothing ran: still 0xFF bytes)");

  for (int round = 0; round < 2 && exec != nullptr; ++round) {
    for (int i = 0; i < n; ++i) host[i] = 100 * round + i;  // read by the graph's copy at launch time
    check.expect(cudaGraphLaunch(exec, s) == cudaSuccess, "cudaGraphLaunch");
    check.expect(cudaStreamSynchronize(s) == cudaSuccess, "cudaStreamSynchronize after the launch");
    const std::vector<int> got = c.read();
    for (int i = 0; i < n; ++i)
      check.expect_eq(got[i], 2 * (100 * round + i), "replay " + std::to_string(round) + ": c[" + std::to_string(i) + "]");
  }

  check.expect(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed) == cudaSuccess, "second capture");
  check.expect(cudaStreamSynchronize(s) != cudaSuccess, "cudaStreamSynchronize of a capturing stream fails");
  cudaGraph_t spoiled = nullptr;
  check.expect(cudaStreamEndCapture(s, &spoiled) == cudaErrorStreamCaptureInvalidated && spoiled == nullptr,
               "the capture is invalidated");
  cudaGetLastError();
  check.expect(cudaStreamIsCapturing(s, &status) == cudaSuccess && status == cudaStreamCaptureStatusNone,
               "the stream no longer captures");

  if (exec) cudaGraphExecDestroy(exec);
  if (graph) cudaGraphDestroy(graph);
  cudaFreeHost(host);
  cudaStreamDestroy(s);
  return check.result();
}

#if PARALON_CUDA_SIM_BUILD
// =====================================================================================================
// What only the simulator detects
// =====================================================================================================

// Each block reads its shared memory before writing it: every read must be poison, although the
// previous block wrote the same variables.
__global__ void poison_kernel(uint32_t* out) {
  __shared__ float stat[37];
  PARALON_DYNAMIC_SHARED(float, dyn);
  const int t = threadIdx.x;
  out[(blockIdx.x * 37 + t) * 2 + 0] = __float_as_uint(stat[t]);
  out[(blockIdx.x * 37 + t) * 2 + 1] = __float_as_uint(dyn[t * 3]);
  __syncthreads();
  stat[t] = 1.0f;
  dyn[t * 3] = 2.0f;
}

SelfTestResult test_poison() {
  Checker check("simulator: unwritten static and dynamic shared memory reads back as the poison (NaN) in every block");
  Buffer<uint32_t> out(3 * 37 * 2);
  PARALON_LAUNCH(poison_kernel, 3, 37, 37 * 3 * sizeof(float), nullptr, out.get());
  check.launched(launch_status());
  const std::vector<uint32_t> o = out.read();
  for (size_t k = 0; k < o.size(); ++k) {
    check.expect_eq(o[k], sim::kPoisonWord, std::string(k % 2 ? "dynamic" : "static") + " shared read " + std::to_string(k / 2));
  }
  return check.result();
}

__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void overrun_kernel(unsigned char* out) {
  PARALON_DYNAMIC_SHARED(unsigned char, bytes);
  bytes[threadIdx.x] = 7;  // 104 threads, 100 bytes requested
  out[threadIdx.x] = 1;
}

__global__ void mismatch_kernel(int* out) {
  const int lane = threadIdx.x;
  out[lane] = lane < 16 ? __shfl_sync(kFull, lane, 0) : static_cast<int>(__ballot_sync(kFull, 1));
}

#if PARALON_SIM_CHECKS
// 4 threads index a 32-element static shared array at 30..33 (-fsanitize=bounds builds only).
__global__ void shared_index_kernel(int* out) {
  __shared__ int small[32];
  const int i = static_cast<int>(threadIdx.x) + 30;
  small[i] = i;
  out[threadIdx.x] = small[i];
}
#endif

__global__ void healthy_kernel(int* out) { out[threadIdx.x] = static_cast<int>(threadIdx.x) + 1; }

// Expects `launch` to fail with `code` and a message containing `phrase`, then the device to work.
template <typename Launch>
void expect_fault(Checker& check, const char* what, Launch launch, cudaError_t code, const char* phrase) {
  launch();
  const cudaError_t e = cudaGetLastError();
  const std::string message = cudaGetErrorString(e);
  check.expect(e == code, std::string(what) + ": expected " + cudaGetErrorName(code) + ", got " + cudaGetErrorName(e));
  check.expect(message.find(phrase) != std::string::npos, std::string(what) + ": message \"" + message + "\"");
  check.expect(cudaGetLastError() == cudaSuccess, std::string(what) + ": the error is reported once");
  Buffer<int> ok(32);
  PARALON_LAUNCH(healthy_kernel, 1, 32, 0, nullptr, ok.get());
  const std::string status = launch_status();
  check.expect(status.empty() && ok.read()[31] == 32, std::string(what) + ": the next launch fails: " + status);
}

SelfTestResult test_faults() {
  Checker check("simulator: barrier divergence, shared memory overrun, warp-collective mismatch (and, in "
                "PARALON_SIM_CHECKS builds, static shared indices out of bounds) are launch errors");
  Buffer<int> out(64);
  Buffer<unsigned char> bytes(128);
  expect_fault(check, "barrier divergence",
               [&] { PARALON_LAUNCH(divergent_barrier_kernel, 2, 64, 0, nullptr, out.get()); },
               cudaErrorLaunchFailure, "barrier divergence in divergent_barrier_kernel block (0,0,0)");
  expect_fault(check, "dynamic shared memory overrun",
               [&] { PARALON_LAUNCH(overrun_kernel, 1, 104, 100, nullptr, bytes.get()); },
               cudaErrorIllegalAddress, "past the end of dynamic shared memory");
  expect_fault(check, "warp collective mismatch",
               [&] { PARALON_LAUNCH(mismatch_kernel, 1, 32, 0, nullptr, out.get()); },
               cudaErrorIllegalInstruction, "warp collective mismatch");
#if PARALON_SIM_CHECKS
  expect_fault(check, "static shared index out of bounds",
               [&] { PARALON_LAUNCH(shared_index_kernel, 1, 4, 0, nullptr, out.get()); },
               cudaErrorIllegalAddress, "index 32 out of bounds for type 'int [32]'");
#endif
  expect_fault(check, "bad launch configuration",
               [&] { PARALON_LAUNCH(healthy_kernel, 1, 1025, 0, nullptr, out.get()); },
               cudaErrorInvalidConfiguration, "healthy_kernel");
  return check.result();
}

// =====================================================================================================
// The sanitizers (sim/sanitizers.h): each catches a deliberately broken kernel, and none flags the
// correct version of it
// =====================================================================================================

// The sanitizers of one self-test; on leaving, none (run_selftests returns to the environment's).
class Sanitizers {
 public:
  explicit Sanitizers(bool race, bool mem, bool init, uint64_t seed = 0) {
    sim::SanitizerConfig c;
    c.racecheck = race;
    c.memcheck = mem;
    c.initcheck = init;
    c.schedule_seed = seed;
    sim::set_sanitizer_config(c);
  }
  Sanitizers(const Sanitizers&) = delete;
  Sanitizers& operator=(const Sanitizers&) = delete;
  ~Sanitizers() { sim::set_sanitizer_config(sim::SanitizerConfig{}); }
};

// Two warps exchange values through shared memory: thread t writes slot t, reads slot t ^ 32.
__global__ void exchange_kernel(int* out, int synced) {
  __shared__ int slots[64];
  const int t = threadIdx.x;
  slots[t] = t * 3;
  if (synced) __syncthreads();
  out[t] = slots[t ^ 32];
}

// One warp: lane l writes slot l, then reads slot l ^ 1 after a shuffle (which exchanges registers
// but orders no memory) or after __syncwarp.
__global__ void warp_exchange_kernel(int* out, int synced) {
  __shared__ int slots[32];
  const int lane = threadIdx.x;
  slots[lane] = lane + 100;
  if (synced) {
    __syncwarp();
  } else {
    out[32 + lane] = __shfl_sync(kFull, lane, 0);
  }
  out[lane] = slots[lane ^ 1];
}

// Warp 1 issues cp.async into the stage warp 0 is reading, with (or without) a barrier in between.
__global__ void cp_async_stage_kernel(const float* src, float* out, int synced) {
  PARALON_DYNAMIC_SHARED(float, stage);
  const int t = threadIdx.x;
  if (t < 16) {
    for (int i = 0; i < 4; ++i) stage[t * 4 + i] = 1.0f;
  }
  __syncthreads();
  if (t < 32) out[t] = stage[t];
  if (synced) __syncthreads();
  if (t >= 32 && t < 48) cp_async_16(&stage[(t - 32) * 4], &src[(t - 32) * 4], true);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  out[32 + t] = stage[t % 64];
}

SelfTestResult test_racecheck() {
  Checker check("sanitizers: racecheck finds a missing __syncthreads, a missing __syncwarp and a cp.async over a "
                "stage another warp reads; the synchronised kernels pass");
  Sanitizers on(true, false, false);
  Buffer<int> out(64);
  expect_fault(check, "missing __syncthreads", [&] { PARALON_LAUNCH(exchange_kernel, 2, 64, 0, nullptr, out.get(), 0); },
               cudaErrorLaunchFailure, "racecheck: ");
  PARALON_LAUNCH(exchange_kernel, 2, 64, 0, nullptr, out.get(), 1);
  check.launched(launch_status());
  check.expect_eq(out.read()[5], 37 * 3, "with __syncthreads: thread 5 reads thread 37's value");
  expect_fault(check, "missing __syncwarp",
               [&] { PARALON_LAUNCH(warp_exchange_kernel, 1, 32, 0, nullptr, out.get(), 0); },
               cudaErrorLaunchFailure, "racecheck: read-after-write hazard at static shared memory");
  PARALON_LAUNCH(warp_exchange_kernel, 1, 32, 0, nullptr, out.get(), 1);
  check.launched(launch_status());
  check.expect_eq(out.read()[6], 107, "with __syncwarp: lane 6 reads lane 7's value");
  std::vector<float> src(64, 2.0f);
  Buffer<float> d_src(src), fout(96);
  expect_fault(check, "cp.async over a stage being read",
               [&] { PARALON_LAUNCH(cp_async_stage_kernel, 1, 64, 64 * sizeof(float), nullptr, d_src.get(), fout.get(), 0); },
               cudaErrorLaunchFailure, "cp.async");
  PARALON_LAUNCH(cp_async_stage_kernel, 1, 64, 64 * sizeof(float), nullptr, d_src.get(), fout.get(), 1);
  check.launched(launch_status());
  check.expect(fout.read()[40] == 2.0f, "with the barrier: the stage holds the copied data");
  return check.result();
}

// The last-CTA ticket protocol of the fused flash-decoding merge (attention.cu): every block writes its
// partial, fences, takes a ticket; the block drawing the last one sums the partials and resets the
// ticket. `synced` = 0 plants the bug of reading the last-block flag (written by thread 0) without the
// barrier after it.
__global__ void ticket_merge_kernel(int* partial, int* ticket, int* total, int synced) {
  __shared__ int is_last;
  if (threadIdx.x == 0) partial[blockIdx.x] = static_cast<int>(blockIdx.x) + 1;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    is_last = atomicAdd(ticket, 1) == static_cast<int>(gridDim.x) - 1;
    if (is_last) atomicExch(ticket, 0);
  }
  if (synced) __syncthreads();
  if (!is_last) return;
  __threadfence();
  if (threadIdx.x == 0) {
    int sum = 0;
    for (unsigned b = 0; b < gridDim.x; ++b) sum += __ldcg(partial + b);
    *total = sum;
  }
}

SelfTestResult test_ticket_protocol() {
  Checker check("sanitizers: the fused decode merge's last-CTA ticket protocol passes racecheck, initcheck and "
                "random schedules, and reading the last-CTA flag without its barrier is caught (a missing "
                "__threadfence is not modelled: blocks run one after another)");
  std::vector<int> zero(1, 0);
  Buffer<int> partial(7), ticket(zero), total(1);
  {
    Sanitizers on(true, true, true, 12345);
    for (int launch = 0; launch < 2; ++launch) {  // the second launch relies on the first's reset
      PARALON_LAUNCH(ticket_merge_kernel, 7, 64, 0, nullptr, partial.get(), ticket.get(), total.get(), 1);
      check.launched(launch_status());
      check.expect_eq(total.read()[0], 28, "the last block sums the 7 partials");
      check.expect_eq(ticket.read()[0], 0, "the last block resets the ticket");
    }
  }
  Sanitizers race(true, false, false);
  expect_fault(check, "last-CTA flag read without a barrier",
               [&] { PARALON_LAUNCH(ticket_merge_kernel, 7, 64, 0, nullptr, partial.get(), ticket.get(), total.get(), 0); },
               cudaErrorLaunchFailure, "racecheck: ");
  return check.result();
}

__global__ void read_kernel(const float* in, float* out) { out[threadIdx.x] = in[threadIdx.x] + 1.0f; }

SelfTestResult test_memcheck() {
  Checker check("sanitizers: memcheck names an out-of-bounds read and a use after free (kernel, block, thread, "
                "address, allocation)");
  Sanitizers on(false, true, false);
  Buffer<float> in(std::vector<float>(100, 1.0f)), out(128);
  expect_fault(check, "read past the end",
               [&] { PARALON_LAUNCH(read_kernel, 1, 104, 0, nullptr, in.get(), out.get()); }, cudaErrorIllegalAddress,
               "memcheck: 4-byte read at 0x");
  const std::string message = cudaGetErrorString(cudaErrorIllegalAddress);
  check.expect(message.find("4 bytes past the end of the 400-byte allocation") != std::string::npos &&
                   message.find("in read_kernel block (0,0,0) thread (100,0,0)") != std::string::npos,
               "the out-of-bounds message names the allocation, kernel, block and thread: " + message);
  PARALON_LAUNCH(read_kernel, 1, 100, 0, nullptr, in.get(), out.get());
  check.launched(launch_status());
  float* freed = nullptr;
  cudaMalloc(reinterpret_cast<void**>(&freed), 64 * sizeof(float));
  cudaMemset(freed, 0, 64 * sizeof(float));
  cudaFree(freed);
  expect_fault(check, "use after free", [&] { PARALON_LAUNCH(read_kernel, 1, 64, 0, nullptr, freed, out.get()); },
               cudaErrorIllegalAddress, "use after free of the 256-byte allocation");
  return check.result();
}

// Reads shared memory before anyone wrote it (or after thread 0 did, behind a barrier).
__global__ void shared_init_kernel(float* out, int written) {
  __shared__ float value;
  if (written && threadIdx.x == 0) value = 3.0f;
  __syncthreads();
  out[threadIdx.x] = value;
}

SelfTestResult test_initcheck() {
  Checker check("sanitizers: initcheck finds reads of never-written device and shared memory");
  Sanitizers on(false, false, true);
  float* fresh = nullptr;
  cudaMalloc(reinterpret_cast<void**>(&fresh), 40 * sizeof(float));
  Buffer<float> out(64);
  expect_fault(check, "device memory never written",
               [&] { PARALON_LAUNCH(read_kernel, 1, 40, 0, nullptr, fresh, out.get()); }, cudaErrorLaunchFailure,
               "initcheck: 4-byte read at 0x");
  cudaMemset(fresh, 0, 20 * sizeof(float));  // half of it
  PARALON_LAUNCH(read_kernel, 1, 20, 0, nullptr, fresh, out.get());
  check.launched(launch_status());
  expect_fault(check, "device memory half written",
               [&] { PARALON_LAUNCH(read_kernel, 1, 21, 0, nullptr, fresh, out.get()); }, cudaErrorLaunchFailure,
               "of device memory never written (byte 80 of the 160-byte allocation");
  cudaFree(fresh);
  expect_fault(check, "shared memory never written",
               [&] { PARALON_LAUNCH(shared_init_kernel, 2, 32, 0, nullptr, out.get(), 0); }, cudaErrorLaunchFailure,
               "never written in this block");
  PARALON_LAUNCH(shared_init_kernel, 2, 32, 0, nullptr, out.get(), 1);
  check.launched(launch_status());
  check.expect(out.read()[31] == 3.0f, "written shared memory reads back");
  return check.result();
}

// Every lane of a warp increments one shared counter with a plain read-modify-write: the lockstep
// sweep (each lane runs to the next collective in turn) never loses an update; an interleaving does.
__global__ void lost_update_kernel(int* out) {
  __shared__ int counter;
  if (threadIdx.x == 0) counter = 0;
  __syncthreads();
  counter = counter + 1;
  __syncthreads();
  if (threadIdx.x == 0) out[0] = counter;
}

SelfTestResult test_random_schedules() {
  Checker check("sanitizers: seeded random schedules interleave the lanes of a warp (a plain read-modify-write "
                "loses updates; the lockstep sweep hides it) and reproduce per seed");
  Buffer<int> out(1);
  PARALON_LAUNCH(lost_update_kernel, 1, 32, 0, nullptr, out.get());
  check.launched(launch_status());
  check.expect_eq(out.read()[0], 32, "the lockstep sweep: every update lands");
  int lost = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    int first = 0;
    for (int repeat = 0; repeat < 2; ++repeat) {
      Sanitizers on(false, false, false, seed);
      PARALON_LAUNCH(lost_update_kernel, 1, 32, 0, nullptr, out.get());
      check.launched(launch_status());
      const int counted = out.read()[0];
      if (repeat == 0) first = counted;
      check.expect_eq(counted, first, "seed " + std::to_string(seed) + " reproduces its schedule");
    }
    lost += first < 32;
  }
  check.expect(lost > 0, "no seed of 1..4 lost an update");
  {
    Sanitizers on(true, false, false, 1);
    expect_fault(check, "racecheck under a random schedule",
                 [&] { PARALON_LAUNCH(lost_update_kernel, 1, 32, 0, nullptr, out.get()); }, cudaErrorLaunchFailure,
                 "racecheck: ");
  }
  return check.result();
}
#endif

#include "selftest_hopper.cuh"

}  // namespace

std::vector<SelfTestResult> run_selftests() {
  std::vector<SelfTestResult> results;
#if PARALON_CUDA_SIM_BUILD
  sim::set_sanitizer_config(sim::SanitizerConfig{});  // the model as on hardware, whatever the environment says
#endif
  results.push_back(test_shuffles());
  results.push_back(test_votes());
  results.push_back(test_barriers());
  results.push_back(test_atomics());
  results.push_back(test_ldmatrix());
  results.push_back(test_mma<true>());
  results.push_back(test_mma<false>());
  results.push_back(test_cp_async());
  results.push_back(test_math());
  results.push_back(test_graphs());
  if (hopper_tests_apply()) {
    results.push_back(test_wgmma<__nv_bfloat16>());
    results.push_back(test_wgmma<__half>());
    results.push_back(test_tma());
    results.push_back(test_wgmma_first_contact());
  }
#if PARALON_CUDA_SIM_BUILD
  results.push_back(test_poison());
  results.push_back(test_faults());
  results.push_back(test_racecheck());
  results.push_back(test_ticket_protocol());
  results.push_back(test_memcheck());
  results.push_back(test_initcheck());
  results.push_back(test_random_schedules());
  sim::clear_sanitizer_config();
#endif
  return results;
}

}  // namespace PARALON_CUDA_NS
}  // namespace paralon
