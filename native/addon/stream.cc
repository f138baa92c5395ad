#include "stream.h"

#include <exception>

namespace paralon {

Stream::Stream(Napi::Env env) : env_(env) {
  tsfn_ = Tsfn::New(env, "paralon-stream", 0, 1);
  tsfn_.Unref(env);  // referenced only while completions are outstanding
  tsfn_open_ = true;
  worker_ = std::thread([this] { run(); });
}

Stream::~Stream() {
  shutdown();
  close_js_handle();
  for (Delivery* d : orphans_) delete d;
}

void Stream::enqueue(const char* op, std::function<void()> work, Completion done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      // The device was disposed: run nothing, but never leave a promise hanging.
      if (done) throw std::runtime_error(std::string(op) + ": the device was disposed");
      return;
    }
    if (done && tsfn_open_ && outstanding_++ == 0) tsfn_.Ref(env_);
    queue_.push_back(Task{op, std::move(work), std::move(done)});
  }
  wake_.notify_one();
}

void Stream::run() {
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    std::string error;
    try {
      if (task.work) task.work();
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = std::string(task.op) + ": unknown native error";
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error.empty() && pending_error_.empty()) pending_error_ = error;
    if (task.done) {
      post(new Delivery{this, std::move(task.done), std::move(pending_error_)});
      pending_error_.clear();
    }
  }
}

void Stream::post(Delivery* d) {
  // Never destroy a completion here: it may own the last reference to this stream's device.
  if (!tsfn_open_ || tsfn_.NonBlockingCall(d) != napi_ok) orphans_.push_back(d);
}

void Stream::deliver(Napi::Env env, Napi::Function, void* context, Delivery* d) {
  (void)context;
  Stream* s = d->stream;
  if (--s->outstanding_ == 0 && s->tsfn_open_) s->tsfn_.Unref(env);
  if (env != nullptr) d->done(env, d->error);
  delete d;
}

void Stream::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Stream::close_js_handle() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (tsfn_open_) {
    tsfn_.Release();
    tsfn_open_ = false;
  }
}

}  // namespace paralon
