// Compute threads: emkit's default is every usable CPU, not LibTorch's half of them.
#include <catch2/catch.hpp>

#include <sched.h>

#include <cstdlib>

#include <torch/torch.h>

#include "em/core/threads.hpp"
#include "em/tensor/threads.hpp"

TEST_CASE("usable_cpus counts the affinity mask", "[core][threads]") {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof(set), &set) == 0);
  CHECK(em::usable_cpus() == CPU_COUNT(&set));
  CHECK(em::usable_cpus() >= 1);
}

TEST_CASE("set_compute_threads: 0 means every usable CPU, n means n", "[core][threads]") {
  const int before = torch::get_num_threads();
  if (std::getenv("OMP_NUM_THREADS") || std::getenv("MKL_NUM_THREADS")) {
    WARN("OMP_NUM_THREADS/MKL_NUM_THREADS is set: the default-threads check is skipped");
  } else {
    em::tensor::set_compute_threads(0);
    CHECK(torch::get_num_threads() == em::usable_cpus());
  }
  em::tensor::set_compute_threads(1);
  CHECK(torch::get_num_threads() == 1);
  torch::set_num_threads(before);
}
