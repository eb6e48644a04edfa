// em-serve's endpoints for one model, without HTTP: request bytes in, a status and the response bytes out. A predict
// route decodes the request, prepares its images and predicts through the model's micro-batcher.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "em/infer/predictor.hpp"
#include "em/serve/batcher.hpp"
#include "em/serve/memory_budget.hpp"
#include "em/serve/metrics.hpp"

namespace em::serve {

// An answer before HTTP framing: the status and its JSON body (with a final newline).
struct Reply {
  int status = 200;
  std::string body;
  int retry_after_s = 0;  // > 0: a Retry-After header (503s of a full queue, a busy memory budget, a loading model)
  int64_t images = 0;     // instances in the request (the access log and metrics)
};
Reply error_reply(int status, const std::string& message, int retry_after_s = 0);  // {"error": message}

// What a model's service is built with (em-serve's flags).
struct ServiceOptions {
  BatcherOptions batching;
  MemoryLimits memory;
  int64_t request_timeout_ms = 0;  // from a request's head to its answer, at most (0 = no deadline); past it: 504
  void validate() const;           // throws em::UsageError naming the flag
};

// How one predict request is answered.
struct InferCall {
  using Clock = std::chrono::steady_clock;
  Clock::time_point start = Clock::now();  // when its head arrived: the deadline counts from here
  bool v1 = false;  // KServe V1: {"predictions": [one list per instance]} instead of em-predict's bytes
};

// The endpoints' logic for one model, independent of HTTP (the HTTP server calls it; unit tests call it directly).
class InferenceService {
 public:
  // `shared_budget`, when given, is the process's memory budget for images in flight, shared by every model's
  // service (it must outlive this one); otherwise the service has its own of options.memory.in_flight_mb.
  InferenceService(std::unique_ptr<infer::Predictor> predictor, std::string model_dir, ServiceOptions options,
                   MemoryBudget* shared_budget = nullptr);
  InferenceService(std::unique_ptr<infer::Predictor> predictor, std::string model_dir, BatcherOptions batching,
                   MemoryLimits memory = {});
  ~InferenceService();
  InferenceService(const InferenceService&) = delete;
  InferenceService& operator=(const InferenceService&) = delete;

  // One forward pass on a small synthetic image, outside the batcher and its statistics: what makes a server
  // "ready" (the first pass pays for allocations and kernel selection, not a client).
  void warm_up();

  // A predict route. Thread-safe: decodes and prepares on the calling thread, predicts through the batcher.
  // 200 with em-predict's bytes (or V1's {"predictions": ...}); 400 for a malformed request, an undecodable image or
  // a bad parameter (the message names the JSON path); 413 when its images need more memory than
  // memory.request_mb; 500 if the model fails; 503 (Retry-After) once stopping, when the batcher's queue is full
  // (batching.max_queue_images), or when the process budget (memory.in_flight_mb) has no room for it within
  // memory.wait_ms; 504 when request_timeout_ms passes first (a request still queued is taken out of the queue).
  // The memory is estimated from the image headers and reserved before anything is decoded.
  Reply infer(const std::string& body, const InferCall& call = {});
  // This model for /health: {"model": DIR, "algo": ..., "stats": {requests, images, batches, busy_seconds}}.
  io::Json describe() const;
  // GET /health of a one-model server: {"status": "ok"} and describe().
  Reply health() const;
  BatcherStats stats() const;
  const ModelMetrics& metrics() const { return metrics_; }
  // An answered predict request of this model, from its head to its answer (the HTTP layer measures it).
  void record_request(double seconds) { metrics_.record_request(seconds); }
  const infer::Predictor& predictor() const { return *predictor_; }
  const std::string& model_dir() const { return model_dir_; }
  // Answers everything already queued, then stops the batcher.
  void stop();

 private:
  std::unique_ptr<infer::Predictor> predictor_;
  std::string model_dir_;
  ServiceOptions options_;
  std::unique_ptr<MemoryBudget> own_budget_;
  MemoryBudget* budget_;
  ModelMetrics metrics_;
  Batcher batcher_;
};

}  // namespace em::serve
