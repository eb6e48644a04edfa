// The one worker pool of emkit's own CPU work (image checks, COCO evaluation, label-map scans): fn(i) for every i in
// [0, n) on up to `threads` threads, an atomic counter handing out indices. LibTorch's intra-op threads are separate
// (tensor/threads.hpp); long-lived workers (the prefetching loader, the server's batcher) own their threads.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace em {

struct ParallelOptions {
  int threads = 0;             // 0 = every usable CPU (usable_cpus()); never more threads than items
  std::string progress_label;  // non-empty: a progress line on stderr when there are at least progress_min items
  std::string progress_unit = "item";
  std::size_t progress_min = 1000;
};

// fn(index, worker): worker is in [0, workers) and stable within one thread (for per-thread scratch space).
// The first exception any call throws stops the handing out of further indices and is rethrown here once every
// worker has returned. Which thread runs which index is unspecified: results must not depend on it.
void parallel_for(std::size_t n, const ParallelOptions& options,
                  const std::function<void(std::size_t index, std::size_t worker)>& fn);

// How many workers parallel_for(n, options, ...) runs: min(n, threads or usable_cpus()), at least 1 when n > 0.
std::size_t parallel_workers(std::size_t n, int threads);

}  // namespace em
