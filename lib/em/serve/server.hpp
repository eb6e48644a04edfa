// The real-time inference endpoint of SPEC §8 (em-serve): POST /inference and GET /health over HTTP/1.1
// (cpp-httplib, kept inside server.cpp), a micro-batcher in front of the predictor, graceful stop on SIGINT/SIGTERM.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "em/infer/predictor.hpp"
#include "em/serve/batcher.hpp"

namespace em::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                           // 0 = any free port (the chosen one is logged)
  int64_t max_body_bytes = 64LL << 20;       // larger bodies: 413, refused from Content-Length before reading
  BatcherOptions batching;
  int http_threads = 32;                     // connections served at once (one thread each); others wait
  int read_timeout_s = 5;                    // a client silent this long mid-request is answered 400 and dropped
  void validate() const;                     // throws em::UsageError naming the flag
};

// An answer before HTTP framing: the status and its JSON body (with a final newline).
struct Reply {
  int status = 200;
  std::string body;
};
Reply error_reply(int status, const std::string& message);  // {"error": message}

// The endpoints' logic, independent of HTTP (the server calls it; unit tests call it directly).
class InferenceService {
 public:
  InferenceService(std::unique_ptr<infer::Predictor> predictor, std::string model_dir, BatcherOptions batching);
  ~InferenceService();

  // POST /inference. Thread-safe: decodes and prepares on the calling thread, predicts through the batcher.
  // 200 with em-predict's bytes; 400 for a malformed request or an undecodable image (the message names the
  // JSON path); 500 if the model fails; 503 once stopping.
  Reply infer(const std::string& body);
  // GET /health: {"status": "ok", "model": DIR, "algo": ..., "stats": {requests, images, batches}}.
  Reply health() const;
  BatcherStats stats() const;
  // Answers everything already queued, then stops the batcher.
  void stop();

 private:
  std::unique_ptr<infer::Predictor> predictor_;
  std::string model_dir_;
  Batcher batcher_;
};

// HTTP on top of an InferenceService. Statuses: 200; 400 malformed request; 404 unknown path; 405 wrong method
// (with Allow); 411 POST without a length; 413 body over max_body_bytes; 500 model failure. One access-log line
// per request on stderr (method, path, status, milliseconds, client).
class HttpServer {
 public:
  HttpServer(InferenceService& service, ServeOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port and returns the port (the chosen one for port 0). Throws em::Error naming the address.
  int bind();
  // Serves until stop(); returns once every request in flight has been answered.
  void run();
  // Any thread (not a signal handler): stop accepting, let requests in flight finish, close idle connections.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// em-serve's whole job: load the model, bind, log "listening on http://HOST:PORT", serve until SIGINT/SIGTERM,
// then finish the requests in flight and return. A second signal exits at once (130).
void serve(const std::string& model_dir, const infer::PredictOptions& predict_options, const ServeOptions& options);

}  // namespace em::serve
