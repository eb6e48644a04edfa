#include "em/serve/service.hpp"

#include "em/core/error.hpp"
#include "em/core/plural.hpp"
#include "em/io/image.hpp"
#include "em/io/request.hpp"

#include <cmath>

namespace em::serve {

using Clock = InferCall::Clock;

Reply error_reply(int status, const std::string& message, int retry_after_s) {
  return {status, io::dump_json(io::Json{{"error", message}}) + "\n", retry_after_s};
}

void ServiceOptions::validate() const {
  batching.validate();
  memory.validate();
  if (request_timeout_ms < 0 || request_timeout_ms > 86400000)
    usage_fail("--request_timeout_ms {}: must be in [0, 86400000] (0 = no deadline)", request_timeout_ms);
}

InferenceService::InferenceService(std::unique_ptr<infer::Predictor> predictor, std::string model_dir,
                                   ServiceOptions options, MemoryBudget* shared_budget)
    : predictor_(std::move(predictor)),
      model_dir_(std::move(model_dir)),
      options_(options),
      own_budget_(shared_budget ? nullptr : std::make_unique<MemoryBudget>(options.memory.in_flight_mb << 20)),
      budget_(shared_budget ? shared_budget : own_budget_.get()),
      batcher_([p = predictor_.get()](const std::vector<infer::Prepared>& batch) { return p->predict(batch); },
               options.batching,
               [this](int64_t images, double seconds) { metrics_.record_pass(images, seconds); }) {
  options_.validate();
}

InferenceService::InferenceService(std::unique_ptr<infer::Predictor> predictor, std::string model_dir,
                                   BatcherOptions batching, MemoryLimits memory)
    : InferenceService(std::move(predictor), std::move(model_dir), ServiceOptions{batching, memory, 0}) {}

InferenceService::~InferenceService() { stop(); }

void InferenceService::warm_up() {
  // Mid-grey 64x64: every algorithm's preprocessing takes it (resizes, pads), and it decodes nothing.
  io::Image image{64, 64, 3, std::vector<uint8_t>(64 * 64 * 3, 128)};
  predictor_->predict({predictor_->prepare(image)});
}

namespace {
std::string mib(int64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }
}  // namespace

Reply InferenceService::infer(const std::string& body, const InferCall& call) {
  const bool has_deadline = options_.request_timeout_ms > 0;
  const auto deadline = has_deadline ? call.start + std::chrono::milliseconds(options_.request_timeout_ms)
                                     : Clock::time_point::max();
  auto timed_out = [&](const char* where) {
    return error_reply(504, fmt::format("request not answered within {} ms (--request_timeout_ms): {}",
                                        options_.request_timeout_ms, where));
  };
  io::Request request;
  int64_t need = 0;
  try {
    request = io::parse_request(body);
    predictor_->check_parameters(request.parameters);
    need = request_memory_bytes(*predictor_, request.images);
  } catch (const Error& e) {
    return error_reply(400, e.what());
  }
  const auto n = static_cast<int64_t>(request.images.size());
  auto with_count = [n](Reply r) {
    r.images = n;
    return r;
  };
  if (need > options_.memory.request_mb << 20)
    return with_count(error_reply(413, fmt::format("request: {} would take about {} decoded and prepared: over the "
                                                   "limit of {} MiB per request (--max_request_mb); send fewer or "
                                                   "smaller images",
                                                   count_of(n, "image"), mib(need), options_.memory.request_mb)));
  // A full queue is answered before anything is decoded (submit() checks again, atomically).
  try {
    batcher_.check_room(n);
  } catch (const QueueFull& e) {
    return with_count(error_reply(503, e.what(), 1));
  }
  // Held until the answer: the prepared images live in the batcher's queue until their forward pass.
  auto wait = std::chrono::milliseconds(options_.memory.wait_ms);
  if (has_deadline)
    wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  const MemoryBudget::Reservation reservation =
      budget_->reserve(need, std::max(wait, std::chrono::milliseconds(0)));
  if (!reservation) {
    if (Clock::now() >= deadline) return with_count(timed_out("waiting for memory"));
    return with_count(error_reply(503, fmt::format("server busy: the requests in flight hold {} of the {} MiB for "
                                                   "images (--max_memory_in_flight_mb) and this one needs {}; retry "
                                                   "later",
                                                   mib(budget_->in_use()), budget_->capacity() >> 20, mib(need)),
                                  1));
  }
  std::vector<infer::Prepared> prepared;
  try {
    prepared = predictor_->prepare_bytes(std::move(request.images), request.parameters);
  } catch (const Error& e) {
    return with_count(error_reply(400, e.what()));
  } catch (const std::exception& e) {
    return with_count(error_reply(500, fmt::format("request could not be prepared: {}", e.what())));
  }
  if (Clock::now() >= deadline) return with_count(timed_out("decoding the images"));
  std::future<std::vector<io::Json>> results;
  uint64_t id = 0;
  try {
    results = batcher_.submit(std::move(prepared), &id);
  } catch (const QueueFull& e) {
    return with_count(error_reply(503, e.what(), 1));
  } catch (const Error& e) {
    return with_count(error_reply(503, e.what()));
  }
  if (has_deadline && results.wait_until(deadline) != std::future_status::ready) {
    // Still queued: taken out, its memory freed. In a forward pass already: that pass's answer is dropped.
    const bool was_queued = batcher_.cancel(id);
    return with_count(timed_out(was_queued ? "waiting in the queue for the model" : "in the model's forward pass"));
  }
  try {
    std::vector<io::Json> per_instance = results.get();
    if (!call.v1) return with_count({200, infer::format_response(infer::make_response(std::move(per_instance)))});
    io::Json predictions = io::Json::array();
    for (auto& r : per_instance) predictions.push_back(std::move(r));
    return with_count({200, infer::format_response(io::Json{{"predictions", std::move(predictions)}})});
  } catch (const c10::Error& e) {
    return with_count(error_reply(500, fmt::format("prediction failed: {}", e.what_without_backtrace())));
  } catch (const std::exception& e) {
    return with_count(error_reply(500, fmt::format("prediction failed: {}", e.what())));
  }
}

BatcherStats InferenceService::stats() const { return batcher_.stats(); }

io::Json InferenceService::describe() const {
  const BatcherStats s = batcher_.stats();
  return {{"model", model_dir_},
          {"algo", algo_name(predictor_->algo())},
          {"precision", tensor::precision_name(predictor_->precision().precision)},
          {"stats",
           {{"requests", s.requests},
            {"images", s.images},
            {"batches", s.batches},
            {"busy_seconds", std::round(s.busy_seconds * 1000) / 1000},
            {"queued_images", s.queued_images}}}};
}

Reply InferenceService::health() const {
  io::Json body = {{"status", "ok"}};
  body.update(describe());
  return {200, io::dump_json(body) + "\n"};
}

void InferenceService::stop() { batcher_.stop(); }

}  // namespace em::serve
