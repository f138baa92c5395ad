// A persistent pool of worker threads for the CPU backend. parallel_for(n, fn) runs fn(chunk,
// thread) for every chunk in [0, n): chunks are claimed dynamically through one atomic counter, the
// calling thread works too (it is thread 0; workers are 1..size()-1), and the call returns when
// every chunk is done. Workers spin briefly after a job (ops of one forward pass follow each other
// within microseconds) and then sleep on a condition variable, so an idle pool costs no CPU.
// No allocation per call: the job is a plain function pointer plus a context pointer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace paralon {
namespace cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);  // ≤ 0: std::thread::hardware_concurrency()
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return num_threads_; }

  template <class Fn>
  void parallel_for(int64_t num_chunks, Fn&& fn) {
    if (num_chunks <= 0) return;
    if (num_chunks == 1 || num_threads_ == 1) {
      for (int64_t c = 0; c < num_chunks; ++c) fn(c, 0);
      return;
    }
    using F = std::remove_reference_t<Fn>;
    run(num_chunks, [](void* ctx, int64_t chunk, int thread) { (*static_cast<F*>(ctx))(chunk, thread); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Task = void (*)(void* ctx, int64_t chunk, int thread);
  void run(int64_t num_chunks, Task task, void* ctx);
  void work(int thread);
  void worker_loop(int thread);

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex caller_mutex_;  // one job at a time, whoever calls
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int> workers_busy_{0};
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  int64_t num_chunks_ = 0;
};

}  // namespace cpu
}  // namespace paralon
