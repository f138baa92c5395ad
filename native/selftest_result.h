// Result of one CUDA simulator self-test (native/cuda/selftest.cu). Plain C++ so the addon can
// use it without CUDA headers.
#pragma once

#include <string>
#include <vector>

namespace paralon {

struct SelfTestResult {
  std::string name;
  bool passed = false;
  std::string detail;
};

// The same self-tests compiled for real GPUs and for the simulator.
namespace cuda {
std::vector<SelfTestResult> run_selftests();
}
namespace cuda_sim {
std::vector<SelfTestResult> run_selftests();
}

}  // namespace paralon
