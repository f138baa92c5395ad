#include "cpu/thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define PARALON_CPU_RELAX() _mm_pause()
#else
#define PARALON_CPU_RELAX() std::this_thread::yield()
#endif

namespace paralon {
namespace cpu {

namespace {
// How long an idle worker polls for the next job before sleeping: long enough to bridge the gap
// between two ops of a forward pass, short enough not to burn a core between requests.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(200);
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  num_threads_ = num_threads < 1 ? 1 : num_threads;
  workers_.reserve(num_threads_ - 1);
  for (int t = 1; t < num_threads_; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::work(int thread) {
  for (;;) {
    const int64_t chunk = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (chunk >= num_chunks_) return;
    task_(ctx_, chunk, thread);
  }
}

void ThreadPool::run(int64_t num_chunks, Task task, void* ctx) {
  std::lock_guard<std::mutex> caller(caller_mutex_);
  task_ = task;
  ctx_ = ctx;
  num_chunks_ = num_chunks;
  next_chunk_.store(0, std::memory_order_relaxed);
  workers_busy_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // Publishing the generation under the mutex pairs with the workers' predicate check, so a
    // worker about to sleep cannot miss the job.
    std::lock_guard<std::mutex> lock(wake_mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  work(0);
  // Wait for the workers to finish their last chunks (they each decrement once per job).
  for (int spins = 0; workers_busy_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096) {
      PARALON_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::worker_loop(int thread) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    if (gen == seen) {
      const auto spin_until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
      for (int i = 0; gen == seen; ++i) {
        PARALON_CPU_RELAX();
        gen = generation_.load(std::memory_order_acquire);
        if ((i & 63) == 63 && std::chrono::steady_clock::now() > spin_until) break;
      }
      if (gen == seen) {
        std::unique_lock<std::mutex> lock(wake_mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        gen = generation_.load(std::memory_order_acquire);
      }
    }
    seen = gen;
    if (stop_.load(std::memory_order_relaxed)) return;
    work(thread);
    workers_busy_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace cpu
}  // namespace paralon
