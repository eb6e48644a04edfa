#include "em/serve/batcher.hpp"

#include "em/core/chunks.hpp"

#include "em/core/error.hpp"

#include <algorithm>

namespace em::serve {

using Clock = std::chrono::steady_clock;

void BatcherOptions::validate() const {
  if (max_batch_size < 1) usage_fail("--batch_size {}: must be at least 1 (images per forward pass)", max_batch_size);
  if (max_batch_delay_ms < 0 || max_batch_delay_ms > 60000)
    usage_fail("--max_batch_delay_ms {}: must be in [0, 60000]", max_batch_delay_ms);
  if (max_queue_images < 0 || max_queue_images > 100000000)
    usage_fail("--max_queue_images {}: must be in [0, 100000000] (0 = no bound)", max_queue_images);
}

Batcher::Batcher(PredictFn predict, BatcherOptions options, PassObserver observer)
    : predict_(std::move(predict)), options_(options), observer_(std::move(observer)) {
  if (observer_) {  // every forward pass that answers, whether of one submission, several or a chunk
    predict_ = [inner = std::move(predict_), this](const std::vector<infer::Prepared>& batch) {
      const auto t0 = Clock::now();
      auto results = inner(batch);
      observer_(static_cast<int64_t>(batch.size()), std::chrono::duration<double>(Clock::now() - t0).count());
      return results;
    };
  }
  options_.validate();
  thread_ = std::thread([this] { run(); });
}

Batcher::~Batcher() { stop(); }

std::future<std::vector<io::Json>> Batcher::submit(std::vector<infer::Prepared> images, uint64_t* id) {
  auto job = std::make_unique<Job>();
  job->images = std::move(images);
  job->queued = Clock::now();
  auto future = job->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) fail("server is shutting down: request not accepted");
    try {
      check_room_locked(static_cast<int64_t>(job->images.size()));
    } catch (const QueueFull&) {
      ++stats_.rejected;
      throw;
    }
    job->id = next_id_++;
    if (id) *id = job->id;
    if (job->images.empty()) {
      job->done.set_value({});
      ++stats_.requests;
      return future;
    }
    queued_images_ += static_cast<int64_t>(job->images.size());
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return future;
}

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Batcher::check_room(int64_t images) const {
  std::lock_guard<std::mutex> lock(mutex_);
  check_room_locked(images);
}

void Batcher::check_room_locked(int64_t images) const {
  if (options_.max_queue_images > 0 && queued_images_ > 0 && queued_images_ + images > options_.max_queue_images)
    throw QueueFull(fmt::format("server busy: {} images wait for the model already and this request brings {} "
                                "(--max_queue_images {}); retry later",
                                queued_images_, images, options_.max_queue_images));
}

bool Batcher::cancel(uint64_t id) {
  std::unique_ptr<Job> taken;  // destroyed outside the lock: its tensors may be large
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = std::find_if(queue_.begin(), queue_.end(), [id](const auto& job) { return job->id == id; });
    if (it == queue_.end()) return false;
    taken = std::move(*it);
    queue_.erase(it);
    queued_images_ -= static_cast<int64_t>(taken->images.size());
    ++stats_.cancelled;
  }
  return true;
}

BatcherStats Batcher::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  BatcherStats s = stats_;
  s.queued_images = queued_images_;
  return s;
}

void Batcher::run() {
  const auto delay = std::chrono::milliseconds(options_.max_batch_delay_ms);
  Clock::time_point model_free = Clock::now();
  std::chrono::duration<double> last_pass{0};
  size_t awaited = 0;  // submissions answered by the last pass + those queued when it ended
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued has been answered
    // An idle server lets the oldest image wait up to `delay` for company. Right after a forward pass the images
    // that queued meanwhile have waited long enough, but the clients just answered are about to send their next
    // request: wait for them too, up to `delay` and at most a tenth of the last pass (so a fast model is never
    // idled for long). Without this, closed-loop clients split into two halves that alternate, half-size batches.
    // It stops waiting as soon as as many submissions are queued as were answered or waiting at the end of it.
    const auto after_pass = std::chrono::duration_cast<Clock::duration>(std::min<std::chrono::duration<double>>(
        delay, last_pass / 10));
    const auto idle_deadline = queue_.front()->queued + delay;
    const bool waiting_for_answered = model_free + after_pass > idle_deadline;
    const auto deadline = std::max(idle_deadline, model_free + after_pass);
    while (!stopping_ && queued_images_ < options_.max_batch_size && Clock::now() < deadline) {
      if (waiting_for_answered && queue_.size() >= awaited) break;
      wake_.wait_until(lock, deadline);
    }
    std::vector<std::unique_ptr<Job>> jobs;
    int64_t images = 0;
    while (!queue_.empty()) {
      const auto n = static_cast<int64_t>(queue_.front()->images.size());
      // Whole submissions only; one larger than a batch goes alone (predict_in_chunks splits it).
      if (!jobs.empty() && images + n > options_.max_batch_size) break;
      images += n;
      queued_images_ -= n;
      jobs.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    const auto pass_start = Clock::now();
    run_batch(jobs);
    model_free = Clock::now();
    last_pass = model_free - pass_start;
    lock.lock();
    awaited = jobs.size() + queue_.size();
  }
}

std::vector<io::Json> Batcher::predict_in_chunks(const std::vector<infer::Prepared>& images) const {
  const auto max = static_cast<size_t>(options_.max_batch_size);
  if (images.size() <= max) return predict_(images);
  std::vector<io::Json> out;
  for_each_chunk(images.size(), max, [&](size_t begin, size_t end) {
    for (auto& r : predict_(std::vector<infer::Prepared>(images.begin() + begin, images.begin() + end)))
      out.push_back(std::move(r));
  });
  return out;
}

void Batcher::run_batch(std::vector<std::unique_ptr<Job>>& jobs) {
  const auto start = Clock::now();
  int64_t passes = 0, images = 0;
  // Each job's answer, handed over only after the stats count it: a client that reads /health right after its
  // reply sees its own images.
  std::vector<std::vector<io::Json>> answers(jobs.size());
  std::vector<std::exception_ptr> errors(jobs.size());
  auto run_alone = [&](size_t j) {
    try {
      const Job& job = *jobs[j];
      answers[j] = predict_in_chunks(job.images);
      passes += static_cast<int64_t>(num_chunks(job.images.size(), static_cast<size_t>(options_.max_batch_size)));
      if (answers[j].size() != job.images.size())
        fail("predictor returned {} results for {} images", answers[j].size(), job.images.size());
      images += static_cast<int64_t>(job.images.size());
    } catch (...) {
      errors[j] = std::current_exception();
    }
  };
  if (jobs.size() == 1 || !run_together(jobs, answers, passes, images))
    for (size_t j = 0; j < jobs.size(); ++j) run_alone(j);  // isolate a failure: only the breaking job fails
  const double busy = std::chrono::duration<double>(Clock::now() - start).count();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.busy_seconds += busy;
    stats_.requests += static_cast<int64_t>(jobs.size());
    stats_.images += images;
    stats_.batches += passes;
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (errors[j])
      jobs[j]->done.set_exception(errors[j]);
    else
      jobs[j]->done.set_value(std::move(answers[j]));
  }
}

bool Batcher::run_together(const std::vector<std::unique_ptr<Job>>& jobs, std::vector<std::vector<io::Json>>& answers,
                           int64_t& passes, int64_t& images) const {
  std::vector<infer::Prepared> batch;
  for (const auto& job : jobs) batch.insert(batch.end(), job->images.begin(), job->images.end());
  std::vector<io::Json> results;
  try {
    results = predict_(batch);
    ++passes;
  } catch (...) {
    return false;
  }
  if (results.size() != batch.size()) return false;
  size_t offset = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const size_t n = jobs[j]->images.size();
    answers[j].assign(std::make_move_iterator(results.begin() + offset),
                      std::make_move_iterator(results.begin() + offset + n));
    offset += n;
  }
  images += static_cast<int64_t>(batch.size());
  return true;
}

PredictThroughput measure_predict_throughput(const infer::Predictor& predictor, const infer::Prepared& sample,
                                             int64_t batch_size, double seconds) {
  std::vector<infer::Prepared> batch(static_cast<size_t>(batch_size), sample);
  predictor.predict(batch);  // warm-up: allocator, oneDNN primitive caches
  PredictThroughput out;
  out.batch_size = batch_size;
  const auto start = Clock::now();
  do {
    predictor.predict(batch);
    ++out.passes;
    out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } while (out.seconds < seconds);
  out.images_per_second = static_cast<double>(out.passes * batch_size) / out.seconds;
  return out;
}

std::vector<int64_t> doubling_batch_sizes(int64_t max_batch_size) {
  std::vector<int64_t> sizes;
  for (int64_t b = 1; b < max_batch_size; b *= 2) sizes.push_back(b);
  sizes.push_back(max_batch_size);
  return sizes;
}

io::Json measure_ceiling(const infer::Predictor& predictor, const io::Image& image,
                         const std::vector<int64_t>& batch_sizes, double seconds_per_size) {
  const infer::Prepared sample = predictor.prepare(image);
  io::Json rows = io::Json::array();
  io::Json best;
  double best_rate = -1;
  for (int64_t b : batch_sizes) {
    if (b < 1) usage_fail("batch size {}: must be at least 1", b);
    const PredictThroughput t = measure_predict_throughput(predictor, sample, b, seconds_per_size);
    io::Json row = {{"batch_size", b},
                    {"images_per_second", t.images_per_second},
                    {"ms_per_batch", 1000.0 * t.seconds / static_cast<double>(t.passes)}};
    if (t.images_per_second > best_rate) {
      best_rate = t.images_per_second;
      best = row;
    }
    rows.push_back(std::move(row));
  }
  return {{"batch_sizes", rows}, {"best", best}};
}

}  // namespace em::serve
