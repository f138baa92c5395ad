// Self-tests of the CUDA execution model (native/cuda/selftest.cu): every intrinsic and wrapper of
// common.cuh against its documented behaviour. The same tests run on the simulator (validating it)
// and on a real GPU (validating that the simulator matches hardware); the few that check what only
// the simulator can detect (poisoned shared memory, barrier divergence, ...) run on the simulator only.
// Plain C++: included by the addon, which is compiled without CUDA.
#pragma once

#include <string>
#include <vector>

namespace paralon {

struct SelfTestResult {
  std::string name;
  bool passed;
  std::string detail;  // what was checked, or the first mismatch / error
};

namespace cuda {
std::vector<SelfTestResult> run_selftests();  // needs a CUDA device
}
namespace cuda_sim {
std::vector<SelfTestResult> run_selftests();
}

}  // namespace paralon
