// CPU graphs: a decode step recorded once and replayed on the stream worker without returning to
// JavaScript between ops. Recording keeps each op's arguments instead of running the op; the host
// arrays an op reads are re-pointed into the graph's own memory: into its copy of the inputs when
// they lie inside one (rewritten at every replay), else into a constant copied at capture. A replay
// writes the new input values and runs the recorded ops in order. The pool's bounded spin (200 µs)
// already bridges the gaps between ops of a replay; holding the workers spinning for a whole replay
// was measured 3.5× slower on an oversubscribed machine (a spinning thread loses the scheduler's
// favour to sleepers, and its spin steals the core the stream worker needs), so it is not done.
#pragma once

#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "ops.h"

namespace paralon {
namespace cpu {

class CpuGraph final : public BackendGraph {
 public:
  std::vector<int32_t> inputs;  // the inputs concatenated, as replay() receives them
  std::vector<std::function<void()>> ops;
  std::vector<std::unique_ptr<char[]>> constants;  // host arrays that are not inputs, copied at capture
};

// A capture in progress: the graph being built and where the caller's inputs were at capture.
class GraphRecorder {
 public:
  explicit GraphRecorder(const std::vector<GraphInput>& inputs) : graph_(std::make_unique<CpuGraph>()) {
    size_t total = 0;
    for (const GraphInput& in : inputs) {
      sources_.push_back(in);
      offsets_.push_back(total);
      total += in.length;
    }
    graph_->inputs.resize(total);
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].length) std::memcpy(graph_->inputs.data() + offsets_[i], inputs[i].host, inputs[i].length * sizeof(int32_t));
  }

  // Where a recorded op reads the n elements at p from now on.
  const int32_t* rebase(const int32_t* p, size_t n) {
    if (!p) return p;
    for (size_t i = 0; i < sources_.size(); ++i) {
      const GraphInput& in = sources_[i];
      if (n > 0 && p >= in.host && p + n <= in.host + in.length) return graph_->inputs.data() + offsets_[i] + (p - in.host);
    }
    return constant(p, n);
  }
  template <class T>
  const T* constant(const T* p, size_t n) {
    if (!p) return p;
    auto copy = std::make_unique<char[]>(n * sizeof(T) + 1);
    if (n) std::memcpy(copy.get(), p, n * sizeof(T));
    const T* q = reinterpret_cast<const T*>(copy.get());
    graph_->constants.push_back(std::move(copy));
    return q;
  }

  void add(std::function<void()> op) { graph_->ops.push_back(std::move(op)); }
  std::unique_ptr<CpuGraph> finish() { return std::move(graph_); }

 private:
  std::unique_ptr<CpuGraph> graph_;
  std::vector<GraphInput> sources_;
  std::vector<size_t> offsets_;
};

}  // namespace cpu
}  // namespace paralon
