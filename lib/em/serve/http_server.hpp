// em-serve's HTTP/1.1 layer on cpp-httplib (kept inside http_server.cpp, the only file that includes it): the
// routes POST /inference and GET /health onto an InferenceService, the limits, the connection loop and the stop.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "em/serve/batcher.hpp"
#include "em/serve/service.hpp"

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

// HTTP on top of an InferenceService. Statuses: 200; 400 malformed request; 404 unknown path; 405 wrong method
// (with Allow); 411 POST without a length; 413 body over max_body_bytes; 415 a multipart form; 500 model failure.
// One access-log line per request on stderr (method, path, status, milliseconds, client).
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

}  // namespace em::serve
