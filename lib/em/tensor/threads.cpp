#include "em/tensor/threads.hpp"

#include <cstdlib>

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include "em/core/threads.hpp"

namespace em::tensor {

void set_compute_threads(int n) {
  if (n <= 0) {
    if (std::getenv("OMP_NUM_THREADS") || std::getenv("MKL_NUM_THREADS")) return;
    n = usable_cpus();
  }
  at::set_num_threads(n);
  // Only settable before any inter-op work started; a second call (tests) must not throw.
  static bool interop_set = false;
  if (!interop_set) {
    interop_set = true;
    try {
      at::set_num_interop_threads(1);
    } catch (const c10::Error&) {
    }
  }
}

}  // namespace em::tensor
