// Built when nvcc was not found (or PARALON_CUDA=0): CUDA devices report why they are unavailable.
#include "ops.h"

namespace paralon {

std::unique_ptr<Backend> make_cuda_backend(int) {
  throw OpError("this build of Paralon has no CUDA backend (built without nvcc or with PARALON_CUDA=0)");
}

int cuda_device_count(std::string* reason) {
  if (reason) *reason = "built without CUDA";
  return 0;
}

}  // namespace paralon
