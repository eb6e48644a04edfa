#include "em/tensor/loader.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>

#include "em/tensor/device.hpp"

namespace em::tensor {
namespace {

// Loader workers run in parallel already; a LibTorch op inside one must not start its own team of all-core
// OpenMP threads (workers x cores threads). OpenMP's thread count is per calling thread, so setting it to 1 here
// leaves the training thread's count alone — at::set_num_threads would not: it also changes the process-wide
// default and the BLAS pools. The symbol is looked up at run time because emkit does not link OpenMP itself;
// LibTorch has loaded libgomp by then. get_num_threads() first: it runs LibTorch's lazy per-thread init, which
// would otherwise reset the count on this thread's first parallel op.
void limit_intra_op_threads_of_this_thread() {
  (void)at::get_num_threads();
  using SetNumThreads = void (*)(int);
  static const auto set = reinterpret_cast<SetNumThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set) set(1);
}

}  // namespace

PrefetchLoader::PrefetchLoader(size_t num_batches, MakeBatch make_batch, int num_workers, int queue_depth,
                               bool pin_memory)
    : num_batches_(num_batches),
      make_batch_(std::move(make_batch)),
      pin_memory_(pin_memory),
      window_(static_cast<size_t>(std::max({queue_depth, num_workers, 1}))) {
  int n = static_cast<int>(std::min<size_t>(std::max(num_workers, 0), num_batches));
  workers_.reserve(n);
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
}

PrefetchLoader::~PrefetchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

Batch PrefetchLoader::build(size_t batch_index) const {
  return pin_memory_ ? tensor::pin_memory(make_batch_(batch_index)) : make_batch_(batch_index);
}

void PrefetchLoader::worker_loop() {
  limit_intra_op_threads_of_this_thread();
  for (;;) {
    size_t index;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] {
        return stopping_ || next_claim_ >= num_batches_ || next_claim_ < next_out_ + window_;
      });
      if (stopping_ || next_claim_ >= num_batches_) return;
      index = next_claim_++;
    }
    Result result;
    try {
      result.batch = build(index);
    } catch (...) {
      result.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(index, std::move(result));
    }
    ready_cv_.notify_all();
  }
}

std::optional<Batch> PrefetchLoader::next() {
  if (next_out_ >= num_batches_) return std::nullopt;
  if (workers_.empty()) return build(next_out_++);  // advanced first: after a throw, the next call goes on
  Result result;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_cv_.wait(lock, [&] { return ready_.count(next_out_) > 0; });
    auto node = ready_.extract(next_out_);
    result = std::move(node.mapped());
    ++next_out_;
  }
  work_cv_.notify_all();  // room in the window
  if (result.error) std::rethrow_exception(result.error);
  return std::move(result.batch);
}

}  // namespace em::tensor
