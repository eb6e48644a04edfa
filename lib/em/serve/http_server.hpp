// em-serve's HTTP/1.1 layer on cpp-httplib (kept inside http_server.cpp, the only file that includes it): the
// routes (the platform's POST /inference, KServe V1, Open Inference Protocol V2 health and metadata, /health,
// /metrics) onto a ModelSet, the limits, the connections and the stop.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "em/serve/batcher.hpp"
#include "em/serve/memory_budget.hpp"
#include "em/serve/model_set.hpp"
#include "em/serve/service.hpp"

namespace em::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                           // 0 = any free port (the chosen one is logged)
  int64_t max_body_bytes = 64LL << 20;       // larger bodies: 413, refused from Content-Length before reading
  BatcherOptions batching{16, 5, /*max_queue_images=*/32};
  MemoryLimits memory;
  int http_threads = 64;                     // requests handled at once, from a whole head to the answer
  int read_timeout_s = 5;                    // a client silent this long mid-body is answered 400 and dropped
  int header_timeout_s = 10;                 // a request head must arrive whole this soon after its first byte: 408
  int body_timeout_s = 60;                   // a body must arrive whole this soon after its head: 400
  int64_t max_header_bytes = 64 << 10;       // request line + headers; larger: 431
  int max_connections = 1024;                // open at once; past it, the one waiting longest is closed
  int keep_alive_timeout_s = 5;              // an idle keep-alive connection is closed after this long
  int keep_alive_max_requests = 100;         // requests on one connection; the last one's answer closes it
  int64_t request_timeout_ms = 0;            // a predict request's deadline from its head (0 = none): 504
  std::string log_format = "text";           // access log: "text" lines or "json" objects
  void validate() const;                     // throws em::UsageError naming the flag
  ServiceOptions service_options() const;    // what each model's InferenceService gets
};

// HTTP on top of a ModelSet (docs/http-api.md). Statuses: 200; 400 malformed request or parameter; 404 unknown
// path or model; 405 wrong method (with Allow); 408 head not received in time; 411 POST without a length; 413
// body over max_body_bytes (or images over the memory limit); 415 a multipart form; 431 head over
// max_header_bytes; 500 model failure; 503 busy, loading or stopping (with Retry-After); 504 past
// request_timeout_ms. Every answer carries X-Request-Id (the client's, or made). One access-log line per request
// on stderr (method, path, status, milliseconds, client, request id; a JSON object with --log_format json).
// Connections waiting for a request head (new, slow or idle keep-alive ones) hold no thread: one poll thread reads
// heads, and only a connection with a whole head goes to one of http_threads threads.
class HttpServer {
 public:
  // The server may listen before `models` are loaded: liveness answers at once, readiness once they are.
  HttpServer(ModelSet& models, ServeOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port and returns the port (the chosen one for port 0). Throws em::Error naming the address.
  int bind();
  // Serves until stop(); returns once every request in flight has been answered.
  void run();
  // Any thread (not a signal handler): stop accepting, let requests in flight finish, close idle connections and
  // those still sending a head; a client stalled mid-body is waited for at most kStopGraceSeconds.
  void stop();
  static constexpr int kStopGraceSeconds = 2;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace em::serve
