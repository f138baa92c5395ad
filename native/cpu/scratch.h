// Per-thread scratch memory for the CPU kernels: one 64-byte aligned arena per pool thread. An op
// calls reserve() once, on the calling thread before its parallel region, then each thread carves
// its arena. Arenas only grow, so steady-state ops allocate nothing.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <string>
#include <vector>

#include "ops.h"

namespace paralon {
namespace cpu {

class ThreadScratch {
 public:
  explicit ThreadScratch(int num_threads) : arenas_(num_threads, nullptr) {}
  ~ThreadScratch() {
    for (void* p : arenas_) std::free(p);
  }
  ThreadScratch(const ThreadScratch&) = delete;
  ThreadScratch& operator=(const ThreadScratch&) = delete;

  // Makes every thread's arena at least `bytes` long; throws OpError naming `op` when out of memory.
  void reserve(size_t bytes, const char* op) {
    if (bytes <= capacity_) return;
    const size_t rounded = (bytes + 4095) & ~static_cast<size_t>(4095);
    for (void*& p : arenas_) {
      std::free(p);
      p = std::aligned_alloc(64, rounded);
      if (!p) {
        capacity_ = 0;
        for (void*& q : arenas_) {
          std::free(q);
          q = nullptr;
        }
        throw OpError(std::string(op) + ": out of memory for " + std::to_string(rounded) + " bytes of scratch");
      }
    }
    capacity_ = rounded;
  }

  // Arena of `thread`, valid until the next reserve().
  char* arena(int thread) const { return static_cast<char*>(arenas_[thread]); }

 private:
  std::vector<void*> arenas_;
  size_t capacity_ = 0;
};

// Bump allocator over one arena: carve(n) returns n elements of T, 64-byte aligned.
class ArenaCursor {
 public:
  explicit ArenaCursor(char* base) : base_(base) {}
  template <class T>
  T* carve(size_t n) {
    T* p = reinterpret_cast<T*>(base_ + used_);
    used_ += (n * sizeof(T) + 63) & ~static_cast<size_t>(63);
    return p;
  }

 private:
  char* base_;
  size_t used_ = 0;
};

// Bytes an ArenaCursor uses for n elements of T (to size reserve()).
template <class T>
constexpr size_t arena_bytes(size_t n) {
  return (n * sizeof(T) + 63) & ~static_cast<size_t>(63);
}

}  // namespace cpu
}  // namespace paralon
