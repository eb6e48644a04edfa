// How many compute threads LibTorch runs. Its own default on x86 is half the logical CPUs (it assumes every core
// has two hyperthreads), which on a 2-vCPU machine is one thread: emkit's default is every CPU the process may use.
#pragma once

namespace em::tensor {

// Sets LibTorch's intra-op threads: n > 0 as given; n == 0: OMP_NUM_THREADS / MKL_NUM_THREADS when set (LibTorch
// reads them), otherwise usable_cpus(). Inter-op work stays on one thread (emkit runs one model at a time).
void set_compute_threads(int n);

}  // namespace em::tensor
