#include "em/core/threads.hpp"

#include <sched.h>

#include <cstdlib>
#include <thread>

#include <torch/torch.h>

namespace em {

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

void set_compute_threads(int n) {
  if (n <= 0) {
    if (std::getenv("OMP_NUM_THREADS") || std::getenv("MKL_NUM_THREADS")) return;
    n = usable_cpus();
  }
  torch::set_num_threads(n);
  // Only settable before any inter-op work started; a second call (tests) must not throw.
  static bool interop_set = false;
  if (!interop_set) {
    interop_set = true;
    try {
      torch::set_num_interop_threads(1);
    } catch (const c10::Error&) {
    }
  }
}

}  // namespace em
