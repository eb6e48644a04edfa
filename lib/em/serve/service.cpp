#include "em/serve/service.hpp"

#include "em/core/error.hpp"
#include "em/core/plural.hpp"
#include "em/io/image.hpp"
#include "em/io/request.hpp"

#include <cmath>

namespace em::serve {

Reply error_reply(int status, const std::string& message) {
  return {status, io::dump_json(io::Json{{"error", message}}) + "\n"};
}

InferenceService::InferenceService(std::unique_ptr<infer::Predictor> predictor, std::string model_dir,
                                   BatcherOptions batching, MemoryLimits memory)
    : predictor_(std::move(predictor)),
      model_dir_(std::move(model_dir)),
      memory_(memory),
      budget_(memory.in_flight_mb << 20),
      batcher_([p = predictor_.get()](const std::vector<infer::Prepared>& batch) { return p->predict(batch); },
               batching) {}

InferenceService::~InferenceService() { stop(); }

namespace {
std::string mib(int64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }
}  // namespace

Reply InferenceService::infer(const std::string& body) {
  std::vector<std::string> images;
  int64_t need = 0;
  try {
    images = io::decode_request(body);
    need = request_memory_bytes(*predictor_, images);
  } catch (const Error& e) {
    return error_reply(400, e.what());
  }
  if (need > memory_.request_mb << 20)
    return error_reply(413, fmt::format("request: {} would take about {} decoded and prepared: over the limit of "
                                        "{} MiB per request (--max_request_mb); send fewer or smaller images",
                                        count_of(static_cast<int64_t>(images.size()), "image"), mib(need),
                                        memory_.request_mb));
  // Held until the answer: the prepared images live in the batcher's queue until their forward pass.
  const MemoryBudget::Reservation reservation = budget_.reserve(need, std::chrono::milliseconds(memory_.wait_ms));
  if (!reservation)
    return error_reply(503, fmt::format("server busy: the requests in flight hold {} of the {} MiB for images "
                                        "(--max_memory_in_flight_mb) and this one needs {}; retry later",
                                        mib(budget_.in_use()), memory_.in_flight_mb, mib(need)));
  std::vector<infer::Prepared> prepared;
  try {
    prepared = predictor_->prepare_bytes(std::move(images));  // decoded and named as em-predict does
  } catch (const Error& e) {
    return error_reply(400, e.what());
  } catch (const std::exception& e) {
    return error_reply(500, fmt::format("request could not be prepared: {}", e.what()));
  }
  std::future<std::vector<io::Json>> results;
  try {
    results = batcher_.submit(std::move(prepared));
  } catch (const Error& e) {
    return error_reply(503, e.what());
  }
  try {
    return {200, infer::format_response(infer::make_response(results.get()))};
  } catch (const c10::Error& e) {
    return error_reply(500, fmt::format("prediction failed: {}", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return error_reply(500, fmt::format("prediction failed: {}", e.what()));
  }
}

BatcherStats InferenceService::stats() const { return batcher_.stats(); }

Reply InferenceService::health() const {
  const BatcherStats s = batcher_.stats();
  io::Json body = {{"status", "ok"},
                   {"model", model_dir_},
                   {"algo", algo_name(predictor_->algo())},
                   {"stats",
                    {{"requests", s.requests},
                     {"images", s.images},
                     {"batches", s.batches},
                     {"busy_seconds", std::round(s.busy_seconds * 1000) / 1000}}}};
  return {200, io::dump_json(body) + "\n"};
}

void InferenceService::stop() { batcher_.stop(); }

}  // namespace em::serve
