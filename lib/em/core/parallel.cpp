#include "em/core/parallel.hpp"

#include "em/core/progress.hpp"
#include "em/core/threads.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace em {

std::size_t parallel_workers(std::size_t n, int threads) {
  if (n == 0) return 0;
  const std::size_t wanted = static_cast<std::size_t>(threads > 0 ? threads : usable_cpus());
  return std::max<std::size_t>(1, std::min(wanted, n));
}

void parallel_for(std::size_t n, const ParallelOptions& options,
                  const std::function<void(std::size_t, std::size_t)>& fn) {
  const std::size_t workers = parallel_workers(n, options.threads);
  if (workers == 0) return;
  const bool show_progress = !options.progress_label.empty() && n >= options.progress_min;
  std::atomic<std::size_t> next{0}, done{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&](std::size_t worker) {
    try {
      for (std::size_t i; (i = next.fetch_add(1)) < n;) {
        fn(i, worker);
        done.fetch_add(1);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next = n;  // no further indices
    }
  };
  if (workers == 1 && !show_progress) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    // With a progress line the calling thread draws it; otherwise it is worker 0.
    const std::size_t first_spawned = show_progress ? 0 : 1;
    for (std::size_t w = first_spawned; w < workers; ++w) pool.emplace_back(work, w);
    if (show_progress) {
      Progress progress(options.progress_label, static_cast<int64_t>(n), options.progress_unit);
      while (done.load() < n) {
        {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (error) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        progress.update(static_cast<int64_t>(done.load()));
      }
      for (auto& t : pool) t.join();
      pool.clear();
      if (!error) progress.finish();
    } else {
      work(0);
    }
    for (auto& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace em
