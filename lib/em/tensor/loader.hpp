// Prefetching batch loader: worker threads build batches ahead of the consumer in a bounded window and hand them
// out in order (the seeded randomness that makes runs reproducible is data/sampling.hpp).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "em/tensor/batch.hpp"

namespace em::tensor {

// Builds batch 0, 1, 2, ... with make_batch on num_workers threads, at most queue_depth batches ahead of the one
// next() returns (ready or in progress; raised to num_workers so every worker can be busy). Batches come out in
// index order whatever order workers finish. An exception thrown by make_batch(i) is rethrown by the next() call
// that would have returned batch i; the following call goes on with batch i + 1.
// num_workers == 0 builds each batch in next(), on the calling thread (for debugging and tiny data).
// Workers run LibTorch ops single-threaded (their OpenMP thread count is set to 1), so N workers use N cores,
// not N x cores; keep make_batch to decode/resize/plain tensor building.
// pin_memory (tensor::pin_memory_available(device) for a CUDA target): each batch's tensors are moved to
// page-locked host memory by the worker that built it, so the consumer's to_device() copies run asynchronously.
// next() and the destructor belong to one consumer thread. The destructor stops promptly: workers finish the batch
// in hand, nothing new starts, and all are joined.
class PrefetchLoader {
 public:
  using MakeBatch = std::function<Batch(size_t batch_index)>;

  PrefetchLoader(size_t num_batches, MakeBatch make_batch, int num_workers = 2, int queue_depth = 4,
                 bool pin_memory = false);
  ~PrefetchLoader();
  PrefetchLoader(const PrefetchLoader&) = delete;
  PrefetchLoader& operator=(const PrefetchLoader&) = delete;

  // The next batch in order, or nullopt after the last.
  std::optional<Batch> next();
  size_t size() const { return num_batches_; }

 private:
  struct Result {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  void worker_loop();
  Batch build(size_t batch_index) const;

  size_t num_batches_;
  MakeBatch make_batch_;
  bool pin_memory_;
  size_t window_;
  size_t next_out_ = 0;    // index next() returns next
  size_t next_claim_ = 0;  // index the next idle worker builds
  bool stopping_ = false;
  std::map<size_t, Result> ready_;
  std::mutex mutex_;
  std::condition_variable work_cv_;   // workers wait for room in the window
  std::condition_variable ready_cv_;  // the consumer waits for batch next_out_
  std::vector<std::thread> workers_;
};

}  // namespace em::tensor
