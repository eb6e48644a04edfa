// How many CPUs this process may use (its affinity mask), for emkit's own worker pools and for the LibTorch
// layer's compute-thread default (tensor/threads.hpp).
#pragma once

namespace em {

// CPUs this process may run on (its affinity mask, which taskset and cgroup cpusets set); at least 1.
int usable_cpus();

}  // namespace em
