#include "em/serve/service.hpp"

#include "em/core/error.hpp"
#include "em/io/image.hpp"
#include "em/io/request.hpp"

#include <cmath>

namespace em::serve {

Reply error_reply(int status, const std::string& message) {
  return {status, io::dump_json(io::Json{{"error", message}}) + "\n"};
}

InferenceService::InferenceService(std::unique_ptr<infer::Predictor> predictor, std::string model_dir,
                                   BatcherOptions batching)
    : predictor_(std::move(predictor)),
      model_dir_(std::move(model_dir)),
      batcher_([p = predictor_.get()](const std::vector<infer::Prepared>& batch) { return p->predict(batch); },
               batching) {}

InferenceService::~InferenceService() { stop(); }

std::vector<infer::Prepared> InferenceService::prepare(const std::string& body) const {
  return predictor_->prepare_bytes(io::decode_request(body));  // decoded and named as em-predict does
}

Reply InferenceService::infer(const std::string& body) {
  std::vector<infer::Prepared> prepared;
  try {
    prepared = prepare(body);
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
