// A device stream: ops are queued from the JS thread and run in order on one worker thread, so the
// event loop never waits on compute. An op that fails leaves its error pending; the next completion
// (a read, a sample, a synchronize) reports it, naming the op.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace paralon {

class Stream {
 public:
  // Runs on the JS thread once the work finished; error is empty on success.
  using Completion = std::function<void(Napi::Env, const std::string& error)>;

  explicit Stream(Napi::Env env);
  ~Stream();

  // Queues `work` (run on the worker). With a completion, the promise-holding side is called back
  // on the JS thread afterwards with the first error raised since the previous completion.
  void enqueue(const char* op, std::function<void()> work, Completion done = nullptr);
  // Stops accepting work, drains the queue and joins the worker. Idempotent.
  void shutdown();
  // Releases the JS-thread handle so a device left open does not keep the process alive.
  void close_js_handle();

 private:
  struct Task {
    const char* op;
    std::function<void()> work;
    Completion done;
  };
  struct Delivery {
    Stream* stream;
    Completion done;
    std::string error;
  };
  static void deliver(Napi::Env env, Napi::Function, void* context, Delivery* d);
  using Tsfn = Napi::TypedThreadSafeFunction<void, Delivery, &Stream::deliver>;

  void run();
  void post(Delivery* d);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  std::string pending_error_;
  Napi::Env env_;
  Tsfn tsfn_;
  bool tsfn_open_ = false;
  int outstanding_ = 0;  // completions not yet delivered (JS thread only)
  std::vector<Delivery*> orphans_;  // completions that could not be delivered (device closing)
  std::thread worker_;
};

}  // namespace paralon
