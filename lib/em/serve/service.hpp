// em-serve's endpoints without HTTP: request bytes in, a status and the response bytes out. POST /inference decodes
// the request, prepares its images and predicts through the micro-batcher; GET /health reports the model and counts.
#pragma once
#include <memory>
#include <string>

#include "em/infer/predictor.hpp"
#include "em/serve/batcher.hpp"
#include "em/serve/memory_budget.hpp"

namespace em::serve {

// An answer before HTTP framing: the status and its JSON body (with a final newline).
struct Reply {
  int status = 200;
  std::string body;
};
Reply error_reply(int status, const std::string& message);  // {"error": message}

// The endpoints' logic, independent of HTTP (the HTTP server calls it; unit tests call it directly).
class InferenceService {
 public:
  InferenceService(std::unique_ptr<infer::Predictor> predictor, std::string model_dir, BatcherOptions batching,
                   MemoryLimits memory = {});
  ~InferenceService();
  InferenceService(const InferenceService&) = delete;
  InferenceService& operator=(const InferenceService&) = delete;

  // POST /inference. Thread-safe: decodes and prepares on the calling thread, predicts through the batcher.
  // 200 with em-predict's bytes; 400 for a malformed request or an undecodable image (the message names the
  // JSON path); 413 when its images need more memory than memory.request_mb; 500 if the model fails; 503 once
  // stopping, or when the process budget (memory.in_flight_mb) has no room for it within memory.wait_ms.
  // The memory is estimated from the image headers and reserved before anything is decoded.
  Reply infer(const std::string& body);
  // GET /health: {"status": "ok", "model": DIR, "algo": ..., "stats": {requests, images, batches, busy_seconds}}.
  Reply health() const;
  BatcherStats stats() const;
  // Answers everything already queued, then stops the batcher.
  void stop();

 private:
  std::unique_ptr<infer::Predictor> predictor_;
  std::string model_dir_;
  MemoryLimits memory_;
  MemoryBudget budget_;
  Batcher batcher_;
};

}  // namespace em::serve
