// The device side of the CUDA simulator: what a kernel sees when native/cuda/*.cu is compiled by the
// host compiler (PARALON_CUDA_SIM=1). Included through common.cuh only.
//
// Execution model (sim/block_runner.cc): one block at a time; the threads of a block are fibers on a
// dedicated simulator thread, each running until it reaches a collective (__syncthreads, a warp
// intrinsic, ldmatrix, mma) — so ordinary memory operations and atomics between collectives are
// atomic with respect to the other threads. A collective completes when its last participant
// arrives; that participant computes every lane's result (sim/warp_ops.cc).
//
// Static __shared__ variables are `static thread_local`: all fibers of a block share the simulator
// thread, so they share the variables; the thread-local storage block of the module is refilled
// with the poison kPoisonWord before every block (sim/shared_memory.cc), which makes unwritten shared
// memory read back as NaN (or a huge index). This is why nothing else in the simulator's module may
// keep thread_local state that the simulator thread uses.
//
// Loads and stores of kernel code are instrumented for the sanitizers (sim/sanitizers.h); atomics,
// which the instrumentation would see as racing plain accesses, report through atomic_access.
#pragma once

// cuda_bf16.h pulls in cuda_runtime_api.h (through vector_functions.h); keep it out. Its global
// cudaFree, cudaMemcpy, ... would be found by argument-dependent lookup for pointers to global types
// (__nv_bfloat16*, float4*) and make every such call ambiguous with the simulator's.
#ifndef __CUDA_RUNTIME_API_H__
#define __CUDA_RUNTIME_API_H__
#endif
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "sim/runtime_api.h"

// ---- the CUDA keywords, for the host compiler (host_defines.h maps them to attributes g++ warns about)
#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __constant__
#undef __managed__
#undef __forceinline__
#undef __noinline__  // left undefined: libstdc++ spells __attribute__((__noinline__))
#undef __launch_bounds__
#undef __grid_constant__
#define __global__
#define __device__
#define __host__
#define __constant__
#define __grid_constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)  // accepted, not enforced: a launch above its thread count runs here
#define __shared__ static thread_local

namespace paralon {
namespace sim {

// What unwritten device and shared memory holds: 0x7FF0 in every 16-bit half. A NaN as f32, bf16, f16
// and f64, and a huge positive int16/int32/int64 — never a sentinel a kernel tests for (−1 / any
// negative "masked" slot, 0, INT_MAX), so a read of missing metadata indexes far out of bounds.
constexpr uint32_t kPoisonWord = 0x7FF07FF0u;

// True while the sanitizers watch accesses (sim/access_hooks.cc); an atomic reports its access then.
extern std::atomic<bool> access_checks_active;
void check_atomic_access(void* address, size_t bytes);  // memcheck, initcheck; marks the bytes written
__attribute__((no_sanitize_thread)) inline void atomic_access(void* address, size_t bytes) {
  if (access_checks_active.load(std::memory_order_relaxed)) check_atomic_access(address, bytes);
}

// ---- what a lane brings to a warp collective, and what it gets back ----------------------------------
enum class WarpOp : uint8_t {
  kShuffle,     // variant: ShuffleMode; arg = lane/delta/lane mask (PTX operand b), clamp = operand c
  kBallot,      // in[0] = predicate
  kAny,
  kAll,
  kSyncWarp,
  kActiveMask,  // resolved when the warp cannot make progress otherwise (see block_runner.cc)
  kReduce,      // variant: ReduceKind; in[0] = value
  kLdmatrix,    // variant: number of matrices (1, 2, 4) | kLdmatrixTrans; ptr = this lane's row
  kMma,         // variant: MmaType; in[0..3] = a, in[4..5] = b, in[6..9] = c (f32 bits)
};
enum ShuffleMode : uint8_t { kShflIdx, kShflUp, kShflDown, kShflXor };
enum ReduceKind : uint8_t { kRedAddU, kRedAddS, kRedMinU, kRedMinS, kRedMaxU, kRedMaxS, kRedAnd, kRedOr, kRedXor };
enum MmaType : uint8_t { kMmaBf16, kMmaF16 };
constexpr uint8_t kLdmatrixTrans = 0x10;

struct LaneSlot {
  WarpOp op;
  uint8_t variant;
  uint32_t mask;
  int32_t arg;
  uint32_t clamp;
  const void* ptr;
  uint32_t in[10];
  uint32_t out[4];
};

// The current fiber's identity; the runner points current_thread at the fiber it resumes.
struct ThreadContext {
  uint3 thread_idx;
  uint32_t lane, warp;
  LaneSlot slot;
};
struct BlockContext {
  uint3 block_idx;
  dim3 block_dim, grid_dim;
  unsigned char* dynamic_shared;
};
extern ThreadContext* current_thread;
extern BlockContext current_block;

// Posts current_thread->slot to its warp and returns once every lane of slot.mask has posted the same
// operation and the results are in slot.out (or the block was aborted with an error).
void warp_collective();
// __syncthreads and its reductions: kind 0 plain, 1 count, 2 and, 3 or.
int block_barrier(int kind, int predicate);
// Ends the current thread with a launch failure naming the kernel, block and thread.
[[noreturn]] void device_fault(cuda_names::cudaError_t code, const char* what);
// cp.async emulation: the copy is captured now and lands in shared memory at the wait.
void cp_async_issue(void* smem_dst, const void* gmem_src, bool pred);
void cp_async_commit_group();
void cp_async_wait_group(int n);
void device_yield();  // lets the other threads of the block run (spin loops, __nanosleep)
inline unsigned char* dynamic_shared_memory() { return current_block.dynamic_shared; }

// Function-pointer launch (PARALON_LAUNCH): copies the arguments, as CUDA does, then runs the grid.
struct LaunchRequest {
  const char* name;
  const void* kernel;
  dim3 grid, block;
  size_t dynamic_shared_bytes;
  cuda_names::cudaStream_t stream;
  void (*thread_entry)(void* frame);  // runs the kernel body for the current thread
  std::shared_ptr<void> frame;        // shared: a launch recorded into a graph keeps its arguments
};
void run_launch(const LaunchRequest& request);

template <typename... P, typename... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t dynamic_shared_bytes,
            cuda_names::cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "PARALON_LAUNCH: wrong number of kernel arguments");
  struct Frame {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> args;
  };
  auto frame = std::make_shared<Frame>(Frame{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)});
  LaunchRequest request{name, reinterpret_cast<const void*>(kernel), grid, block, dynamic_shared_bytes,
                        stream, [](void* f) {
                          Frame* fr = static_cast<Frame*>(f);
                          std::apply(fr->kernel, fr->args);  // each thread gets its own copies
                        },
                        std::move(frame)};
  run_launch(request);
}

namespace detail {
template <typename T>
inline T shuffle(uint32_t mask, T var, int32_t b, uint32_t c, ShuffleMode mode) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffle of a type over 8 bytes");
  LaneSlot& s = current_thread->slot;
  s.op = WarpOp::kShuffle;
  s.variant = mode;
  s.mask = mask;
  s.arg = b;
  s.clamp = c;
  s.in[0] = s.in[1] = 0;
  std::memcpy(s.in, &var, sizeof(T));
  warp_collective();
  T r;
  std::memcpy(&r, s.out, sizeof(T));
  return r;
}
inline uint32_t vote(WarpOp op, uint32_t mask, uint32_t value, uint8_t variant = 0) {
  LaneSlot& s = current_thread->slot;
  s.op = op;
  s.variant = variant;
  s.mask = mask;
  s.in[0] = value;
  warp_collective();
  return s.out[0];
}
inline void ldmatrix(uint32_t* r, const void* smem, uint8_t variant, int count) {
  LaneSlot& s = current_thread->slot;
  s.op = WarpOp::kLdmatrix;
  s.variant = variant;
  s.mask = 0xffffffffu;
  s.ptr = smem;
  warp_collective();
  for (int i = 0; i < count; ++i) r[i] = s.out[i];
}
inline void mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], MmaType type) {
  LaneSlot& s = current_thread->slot;
  s.op = WarpOp::kMma;
  s.variant = type;
  s.mask = 0xffffffffu;
  for (int i = 0; i < 4; ++i) s.in[i] = a[i];
  s.in[4] = b[0];
  s.in[5] = b[1];
  std::memcpy(s.in + 6, c, 4 * sizeof(float));
  warp_collective();
  std::memcpy(d, s.out, 4 * sizeof(float));
}
template <typename T>
inline T bit_cast(const void* p) {
  T r;
  std::memcpy(&r, p, sizeof(T));
  return r;
}
}  // namespace detail

// =====================================================================================================
// Everything a .cu file names, brought into paralon::cuda_sim by common.cuh.
namespace cuda_names {

constexpr int warpSize = 32;
#define threadIdx (static_cast<const uint3&>(::paralon::sim::current_thread->thread_idx))
#define blockIdx (static_cast<const uint3&>(::paralon::sim::current_block.block_idx))
#define blockDim (static_cast<const dim3&>(::paralon::sim::current_block.block_dim))
#define gridDim (static_cast<const dim3&>(::paralon::sim::current_block.grid_dim))

// ---- barriers and warp collectives (PTX bar.sync / bar.red, shfl.sync, vote.sync, redux.sync) -------
inline void __syncthreads() { block_barrier(0, 0); }
inline int __syncthreads_count(int p) { return block_barrier(1, p); }
inline int __syncthreads_and(int p) { return block_barrier(2, p); }
inline int __syncthreads_or(int p) { return block_barrier(3, p); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { detail::vote(WarpOp::kSyncWarp, mask, 0); }

template <typename T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
  return detail::shuffle(mask, var, src_lane, ((warpSize - width) << 8) | 0x1f, kShflIdx);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return detail::shuffle(mask, var, static_cast<int32_t>(delta), (warpSize - width) << 8, kShflUp);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return detail::shuffle(mask, var, static_cast<int32_t>(delta), ((warpSize - width) << 8) | 0x1f, kShflDown);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
  return detail::shuffle(mask, var, lane_mask, ((warpSize - width) << 8) | 0x1f, kShflXor);
}
inline unsigned __ballot_sync(unsigned mask, int pred) { return detail::vote(WarpOp::kBallot, mask, pred != 0); }
inline int __any_sync(unsigned mask, int pred) { return static_cast<int>(detail::vote(WarpOp::kAny, mask, pred != 0)); }
inline int __all_sync(unsigned mask, int pred) { return static_cast<int>(detail::vote(WarpOp::kAll, mask, pred != 0)); }
inline unsigned __activemask() { return detail::vote(WarpOp::kActiveMask, 0, 0); }
inline unsigned __reduce_add_sync(unsigned mask, unsigned v) { return detail::vote(WarpOp::kReduce, mask, v, kRedAddU); }
inline int __reduce_add_sync(unsigned mask, int v) {
  return static_cast<int>(detail::vote(WarpOp::kReduce, mask, static_cast<uint32_t>(v), kRedAddS));
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned v) { return detail::vote(WarpOp::kReduce, mask, v, kRedMinU); }
inline int __reduce_min_sync(unsigned mask, int v) {
  return static_cast<int>(detail::vote(WarpOp::kReduce, mask, static_cast<uint32_t>(v), kRedMinS));
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned v) { return detail::vote(WarpOp::kReduce, mask, v, kRedMaxU); }
inline int __reduce_max_sync(unsigned mask, int v) {
  return static_cast<int>(detail::vote(WarpOp::kReduce, mask, static_cast<uint32_t>(v), kRedMaxS));
}
inline unsigned __reduce_and_sync(unsigned mask, unsigned v) { return detail::vote(WarpOp::kReduce, mask, v, kRedAnd); }
inline unsigned __reduce_or_sync(unsigned mask, unsigned v) { return detail::vote(WarpOp::kReduce, mask, v, kRedOr); }
inline unsigned __reduce_xor_sync(unsigned mask, unsigned v) { return detail::vote(WarpOp::kReduce, mask, v, kRedXor); }

// ---- tensor cores and async copies (fragment layouts: see common.cuh) --------------------------------
inline void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  detail::mma(d, a, b, c, kMmaBf16);
}
inline void mma_f16_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  detail::mma(d, a, b, c, kMmaF16);
}
inline void ldmatrix_x4(uint32_t r[4], const void* smem) { detail::ldmatrix(r, smem, 4, 4); }
inline void ldmatrix_x2(uint32_t r[2], const void* smem) { detail::ldmatrix(r, smem, 2, 2); }
inline void ldmatrix_x4_trans(uint32_t r[4], const void* smem) { detail::ldmatrix(r, smem, 4 | kLdmatrixTrans, 4); }
inline void ldmatrix_x2_trans(uint32_t r[2], const void* smem) { detail::ldmatrix(r, smem, 2 | kLdmatrixTrans, 2); }
inline void cp_async_16(void* smem_dst, const void* gmem_src, bool pred) { cp_async_issue(smem_dst, gmem_src, pred); }
inline void cp_async_commit() { cp_async_commit_group(); }
template <int N>
inline void cp_async_wait() {
  static_assert(N >= 0 && N <= 7, "cp.async.wait_group takes 0..7");
  cp_async_wait_group(N);
}

// ---- atomics: a fiber is never interrupted inside one (random schedules switch only at instrumented
// accesses, and atomics are not instrumented), so read-modify-write is atomic ----------------------------
#define PARALON_SIM_ATOMIC(name, T, expr)                                 \
  __attribute__((no_sanitize_thread)) inline T name(T* address, T val) { \
    atomic_access(address, sizeof(T));                                    \
    T old = *address;                                                     \
    *address = (expr);                                                    \
    return old;                                                           \
  }
PARALON_SIM_ATOMIC(atomicAdd, int, old + val)
PARALON_SIM_ATOMIC(atomicAdd, unsigned, old + val)
PARALON_SIM_ATOMIC(atomicAdd, unsigned long long, old + val)
PARALON_SIM_ATOMIC(atomicAdd, float, old + val)
PARALON_SIM_ATOMIC(atomicAdd, double, old + val)
PARALON_SIM_ATOMIC(atomicSub, int, old - val)
PARALON_SIM_ATOMIC(atomicSub, unsigned, old - val)
PARALON_SIM_ATOMIC(atomicExch, int, val)
PARALON_SIM_ATOMIC(atomicExch, unsigned, val)
PARALON_SIM_ATOMIC(atomicExch, unsigned long long, val)
PARALON_SIM_ATOMIC(atomicExch, float, val)
PARALON_SIM_ATOMIC(atomicMin, int, val < old ? val : old)
PARALON_SIM_ATOMIC(atomicMin, unsigned, val < old ? val : old)
PARALON_SIM_ATOMIC(atomicMin, long long, val < old ? val : old)
PARALON_SIM_ATOMIC(atomicMin, unsigned long long, val < old ? val : old)
PARALON_SIM_ATOMIC(atomicMax, int, val > old ? val : old)
PARALON_SIM_ATOMIC(atomicMax, unsigned, val > old ? val : old)
PARALON_SIM_ATOMIC(atomicMax, long long, val > old ? val : old)
PARALON_SIM_ATOMIC(atomicMax, unsigned long long, val > old ? val : old)
PARALON_SIM_ATOMIC(atomicAnd, int, old & val)
PARALON_SIM_ATOMIC(atomicAnd, unsigned, old & val)
PARALON_SIM_ATOMIC(atomicAnd, unsigned long long, old & val)
PARALON_SIM_ATOMIC(atomicOr, int, old | val)
PARALON_SIM_ATOMIC(atomicOr, unsigned, old | val)
PARALON_SIM_ATOMIC(atomicOr, unsigned long long, old | val)
PARALON_SIM_ATOMIC(atomicXor, int, old ^ val)
PARALON_SIM_ATOMIC(atomicXor, unsigned, old ^ val)
PARALON_SIM_ATOMIC(atomicXor, unsigned long long, old ^ val)
PARALON_SIM_ATOMIC(atomicInc, unsigned, old >= val ? 0u : old + 1)         // PTX atom.inc wraps at val
PARALON_SIM_ATOMIC(atomicDec, unsigned, (old == 0 || old > val) ? val : old - 1)
#undef PARALON_SIM_ATOMIC
template <typename T>
__attribute__((no_sanitize_thread)) inline T atomic_cas(T* address, T compare, T val) {
  atomic_access(address, sizeof(T));
  T old = *address;
  if (old == compare) {
    *address = val;
  } else {
    device_yield();  // a failed CAS is usually a spin loop: let the holder run
  }
  return old;
}
inline int atomicCAS(int* a, int c, int v) { return atomic_cas(a, c, v); }
inline unsigned atomicCAS(unsigned* a, unsigned c, unsigned v) { return atomic_cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v) {
  return atomic_cas(a, c, v);
}
inline unsigned short atomicCAS(unsigned short* a, unsigned short c, unsigned short v) { return atomic_cas(a, c, v); }

inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }
inline void __threadfence() { std::atomic_signal_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_signal_fence(std::memory_order_seq_cst); }
inline void __nanosleep(unsigned) { device_yield(); }
[[noreturn]] inline void __trap() { device_fault(cudaErrorLaunchFailure, "__trap()"); }
long long clock64();

// ---- loads and stores with cache hints: plain accesses on the host ----------------------------------
template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T __ldcg(const T* p) { return *p; }
template <typename T> inline T __ldca(const T* p) { return *p; }
template <typename T> inline T __ldcs(const T* p) { return *p; }
template <typename T> inline T __ldlu(const T* p) { return *p; }
template <typename T> inline T __ldcv(const T* p) { return *p; }
template <typename T> inline void __stcg(T* p, T v) { *p = v; }
template <typename T> inline void __stcs(T* p, T v) { *p = v; }
template <typename T> inline void __stwb(T* p, T v) { *p = v; }
template <typename T> inline void __stwt(T* p, T v) { *p = v; }

// ---- math: the fast intrinsics are computed exactly (hardware approximations differ by a few ulp) ----
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { *s = sinf(x); *c = cosf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) {
  // PTX div.approx.f32: 0 for 2^126 < |y| < 2^128 (x finite), NaN for an infinite x there.
  float ay = fabsf(y);
  if (ay > 8.50705917e37f && ay < INFINITY) return std::isinf(x) ? NAN : 0.0f;
  return x / y;
}
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }  // NaN → 0
inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(truncf(x)); }
inline int __float2int_rd(float x) { return static_cast<int>(floorf(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(ceilf(x)); }
inline unsigned __float2uint_rn(float x) { return static_cast<unsigned>(nearbyintf(x)); }
inline unsigned __float2uint_rz(float x) { return static_cast<unsigned>(truncf(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline float __uint2float_rn(unsigned x) { return static_cast<float>(x); }
inline int __float_as_int(float x) { return detail::bit_cast<int>(&x); }
inline unsigned __float_as_uint(float x) { return detail::bit_cast<unsigned>(&x); }
inline float __int_as_float(int x) { return detail::bit_cast<float>(&x); }
inline float __uint_as_float(unsigned x) { return detail::bit_cast<float>(&x); }
inline long long __double_as_longlong(double x) { return detail::bit_cast<long long>(&x); }
inline double __longlong_as_double(long long x) { return detail::bit_cast<double>(&x); }

// ---- integer intrinsics ------------------------------------------------------------------------------
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((uint64_t(a) * b) >> 32); }
inline int __mulhi(int a, int b) { return static_cast<int>((int64_t(a) * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  uint64_t v = (uint64_t(y) << 32) | x;
  unsigned r = 0;
  for (int i = 0; i < 4; ++i) r |= static_cast<unsigned>((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned shift) {
  return static_cast<unsigned>(((uint64_t(hi) << 32 | lo) << (shift & 31)) >> 32);
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned shift) {
  return static_cast<unsigned>((uint64_t(hi) << 32 | lo) >> (shift & 31));
}

// CUDA's device min/max: one overload per type pair; floating point follows fminf/fmaxf (NaN-ignoring).
template <typename A, typename B>
inline std::common_type_t<A, B> min(A a, B b) {
  using T = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point<T>::value) return std::fmin(T(a), T(b));
  else return T(b) < T(a) ? T(b) : T(a);
}
template <typename A, typename B>
inline std::common_type_t<A, B> max(A a, B b) {
  using T = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point<T>::value) return std::fmax(T(a), T(b));
  else return T(a) < T(b) ? T(b) : T(a);
}

}  // namespace cuda_names
}  // namespace sim
}  // namespace paralon
