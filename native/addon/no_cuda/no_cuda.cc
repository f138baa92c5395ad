// Built when nvcc was not found (or PARALON_CUDA=0): CUDA devices report why they are unavailable.
#include "ops.h"

namespace paralon {

std::unique_ptr<Backend> make_cuda_backend(int) {
  throw OpError("no CUDA device: this build of Paralon has no CUDA backend (built without nvcc or with PARALON_CUDA=0)");
}

int cuda_device_count(std::string* reason) {
  if (reason) *reason = "no CUDA device: built without CUDA (no nvcc at build time, or PARALON_CUDA=0)";
  return 0;
}

}  // namespace paralon
