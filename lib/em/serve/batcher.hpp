// Dynamic micro-batching for em-serve: request threads submit their prepared images, one batcher thread runs the
// forward pass on up to max_batch_size images at a time, waiting at most max_batch_delay_ms for a batch to fill.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "em/core/error.hpp"
#include "em/infer/predictor.hpp"
#include "em/io/json.hpp"

namespace em::serve {

struct BatcherOptions {
  int64_t max_batch_size = 16;    // images per forward pass
  int64_t max_batch_delay_ms = 5; // how long the oldest waiting image may wait for others to join its batch
  int64_t max_queue_images = 0;   // images waiting for a forward pass at most (0 = no bound); see submit()
  void validate() const;          // throws em::UsageError naming the option, the value and the valid range
};

struct BatcherStats {
  int64_t requests = 0;  // submissions answered (results or an error)
  int64_t images = 0;
  int64_t batches = 0;   // forward passes (predict() calls)
  double busy_seconds = 0;  // time spent in predict(): busy / wall time is the model's utilisation
  int64_t queued_images = 0;  // waiting for a forward pass now
  int64_t rejected = 0;       // submissions refused because the queue was full
  int64_t cancelled = 0;      // submissions taken back from the queue (their deadline passed)
};

// submit() when the queue holds max_queue_images already: the request is to be answered 503 at once.
class QueueFull : public Error {
 public:
  using Error::Error;
};

class Batcher {
 public:
  // One response JSON per image, in order; in production Predictor::predict, in tests a fake.
  using PredictFn = std::function<std::vector<io::Json>(const std::vector<infer::Prepared>&)>;
  // Told of each forward pass (its images and seconds), on the batcher thread: em-serve's metrics.
  using PassObserver = std::function<void(int64_t images, double seconds)>;

  Batcher(PredictFn predict, BatcherOptions options, PassObserver observer = nullptr);
  ~Batcher();  // stop()
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Thread-safe. The future gives one response per image, or the exception predict() threw for this submission
  // (a failed batch of several submissions is retried one submission at a time, so one bad request fails alone).
  // After stop(): throws em::Error. With max_queue_images set, a submission that would take the queue past it
  // throws QueueFull — unless the queue is empty (one request larger than the bound still runs, alone). `id`, when
  // given, receives the submission's number for cancel().
  std::future<std::vector<io::Json>> submit(std::vector<infer::Prepared> images, uint64_t* id = nullptr);
  // Throws QueueFull when `images` more would take the queue past max_queue_images (submit's own check): lets a
  // caller refuse a request before preparing it.
  void check_room(int64_t images) const;
  // Takes a submission back if it still waits in the queue (its future then never becomes ready); false when its
  // forward pass has begun (the answer is computed and dropped by the caller) or it was answered.
  bool cancel(uint64_t id);

  // Finishes every submission already queued, then joins the batcher thread. Idempotent.
  void stop();
  BatcherStats stats() const;

 private:
  struct Job {
    uint64_t id = 0;
    std::vector<infer::Prepared> images;
    std::promise<std::vector<io::Json>> done;
    std::chrono::steady_clock::time_point queued;
  };
  void check_room_locked(int64_t images) const;  // mutex_ held
  void run();
  void run_batch(std::vector<std::unique_ptr<Job>>& jobs);
  // All jobs' images in one forward pass; false (nothing answered) when it throws or miscounts.
  bool run_together(const std::vector<std::unique_ptr<Job>>& jobs, std::vector<std::vector<io::Json>>& answers,
                    int64_t& passes, int64_t& images) const;
  std::vector<io::Json> predict_in_chunks(const std::vector<infer::Prepared>& images) const;

  PredictFn predict_;
  BatcherOptions options_;
  PassObserver observer_;
  uint64_t next_id_ = 1;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  int64_t queued_images_ = 0;
  bool stopping_ = false;
  BatcherStats stats_;
  std::thread thread_;
};

// Model-bound throughput: predict() on `batch_size` copies of one prepared image, repeated for about `seconds`
// after one warm-up pass. What the batcher can reach at best; em-serve --measure_ceiling prints it.
struct PredictThroughput {
  int64_t batch_size = 0;
  int64_t passes = 0;
  double seconds = 0;
  double images_per_second = 0;
};
PredictThroughput measure_predict_throughput(const infer::Predictor& predictor, const infer::Prepared& sample,
                                             int64_t batch_size, double seconds);
// The throughput at each of `batch_sizes` and the best of them (the serving ceiling):
// {"batch_sizes": [{"batch_size", "images_per_second", "ms_per_batch"}...], "best": {...}}.
io::Json measure_ceiling(const infer::Predictor& predictor, const io::Image& image,
                         const std::vector<int64_t>& batch_sizes, double seconds_per_size);
// 1, 2, 4, ... up to max_batch_size, and max_batch_size itself.
std::vector<int64_t> doubling_batch_sizes(int64_t max_batch_size);

}  // namespace em::serve
