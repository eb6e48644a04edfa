// The CUDA cases of the unit tests: they run when EM_TEST_DEVICE=cuda (scripts/device_check.sh sets it on a GPU
// machine) and are reported skipped otherwise, so a CPU-only run says how much it did not check.
#pragma once
#include <cstdlib>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "test_support.hpp"

namespace em::test {

// cuda:0 when EM_TEST_DEVICE=cuda and a CUDA device is visible; otherwise skip() (with the reason) and nullopt.
inline std::optional<torch::Device> cuda_test_device() {
  const char* want = std::getenv("EM_TEST_DEVICE");
  if (want == nullptr || std::string(want) != "cuda") {
    skip("a CUDA case: runs with EM_TEST_DEVICE=cuda (scripts/device_check.sh)");
    return std::nullopt;
  }
  if (!torch::cuda::is_available()) {
    skip("EM_TEST_DEVICE=cuda, but this LibTorch sees no CUDA device");
    return std::nullopt;
  }
  return torch::Device(torch::kCUDA, 0);
}

}  // namespace em::test
