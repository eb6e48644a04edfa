#include "em/serve/http_server.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/io/json.hpp"

#include <httplib.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>

namespace em::serve {
namespace {

// For the access log: ": <the error message>" of an error reply's {"error": ...} body, "" for a success.
std::string error_of(const httplib::Response& res) {
  if (res.status < 400 || res.body.empty()) return "";
  try {
    const io::Json body = io::parse_json(res.body, "reply");
    if (body.is_object() && body.contains("error") && body["error"].is_string())
      return ": " + body["error"].get<std::string>();
  } catch (const std::exception&) {
  }
  return "";
}

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// What the httplib callbacks of one request share. A connection is served by one thread from its first byte to
// its close, so thread-local state is per request (reset before each one).
struct RequestState {
  Clock::time_point start = Clock::now();
  bool routed = false;     // passed our pre-routing (headers parsed and understood)
  bool has_body = false;   // Content-Length > 0 or chunked
  bool body_read = false;  // the handler read the whole body: the connection can carry another request
  int status = 0;
};
thread_local RequestState t_request;

// A socket as httplib's Stream, owned by our connection loop: unlike httplib's per-request stream, its read
// buffer lives as long as the connection, and writes never raise SIGPIPE.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int fd, int read_timeout_ms, int write_timeout_ms)
      : fd_(fd), read_timeout_ms_(read_timeout_ms), write_timeout_ms_(write_timeout_ms) {}

  bool has_buffered() const { return offset_ < size_; }
  bool wait(short events, int timeout_ms) const {
    pollfd p{fd_, events, 0};
    for (;;) {
      int r = ::poll(&p, 1, timeout_ms);
      if (r < 0 && errno == EINTR) continue;
      return r > 0;
    }
  }

  bool is_readable() const override { return has_buffered() || wait(POLLIN, read_timeout_ms_); }
  bool is_writable() const override { return wait(POLLOUT, write_timeout_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (has_buffered()) {
      size_t n = std::min(size, size_ - offset_);
      std::memcpy(ptr, buffer_ + offset_, n);
      offset_ += n;
      return static_cast<ssize_t>(n);
    }
    // Large reads go straight to the caller; small ones (httplib reads header lines byte by byte) fill the buffer.
    const bool direct = size >= sizeof(buffer_);
    ssize_t n = receive(direct ? ptr : buffer_, direct ? size : sizeof(buffer_));
    if (n <= 0 || direct) return n;
    offset_ = 0;
    size_ = static_cast<size_t>(n);
    return read(ptr, size);
  }

  ssize_t write(const char* ptr, size_t size) override {
    for (;;) {
      ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!wait(POLLOUT, write_timeout_ms_)) return -1;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(false, ip, port); }
  socket_t socket() const override { return fd_; }

 private:
  ssize_t receive(char* ptr, size_t size) {
    for (;;) {
      ssize_t n = ::recv(fd_, ptr, size, MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!wait(POLLIN, read_timeout_ms_)) return -1;  // the client went silent: give up on it
    }
  }
  void address(bool peer, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    auto* a = reinterpret_cast<sockaddr*>(&addr);
    if ((peer ? ::getpeername(fd_, a, &len) : ::getsockname(fd_, a, &len)) != 0) return;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (::getnameinfo(a, len, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      ip = host;
      port = std::atoi(serv);
    }
  }

  int fd_;
  int read_timeout_ms_, write_timeout_ms_;
  char buffer_[16384];
  size_t offset_ = 0, size_ = 0;
};

// httplib's server with our connection loop in place of its own (process_and_close_socket is its documented
// override point, as SSLServer uses): idle keep-alive connections notice a stop at once, a request answered before
// its body was read closes the connection (the unread body must not parse as the next request), and that close
// drains the client's remaining bytes first, so the kernel does not reset the connection under our reply.
class EndpointServer final : public httplib::Server {
 public:
  std::atomic<bool> stopping{false};

  socket_t listener() const { return svr_sock_; }
  void close_listener() {
    socket_t sock = svr_sock_.exchange(INVALID_SOCKET);
    if (sock != INVALID_SOCKET) {
      ::shutdown(sock, SHUT_RDWR);
      ::close(sock);
    }
  }

 private:
  bool process_and_close_socket(socket_t sock) override {
    int one = 1;  // replies are written as header + body: without this, Nagle delays the body by an ACK
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ConnectionStream stream(sock, static_cast<int>(read_timeout_sec_ * 1000),
                            static_cast<int>(write_timeout_sec_ * 1000));
    bool ok = true, drain = false;
    for (size_t served = 0; served < keep_alive_max_count_; ++served) {
      if (!wait_for_request(stream, served)) break;
      t_request = RequestState{};
      const bool last = served + 1 == keep_alive_max_count_ || stopping;
      bool client_closes = false;
      ok = process_request(stream, last, client_closes, nullptr);
      if (t_request.status >= 400 && !t_request.body_read && (t_request.has_body || !t_request.routed)) {
        drain = true;
        break;
      }
      if (!ok || client_closes || last) break;
    }
    if (drain) drain_input(sock);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  // Waits for the next request's first byte (keep-alive). Once stopping, only a connection not served yet with its
  // request already sent gets an answer; every other one closes now.
  bool wait_for_request(ConnectionStream& stream, size_t served) {
    if (stream.has_buffered()) return !stopping || served == 0;
    const auto deadline = Clock::now() + std::chrono::seconds(keep_alive_timeout_sec_);
    for (;;) {
      if (stopping) return served == 0 && stream.wait(POLLIN, 0);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      if (stream.wait(POLLIN, static_cast<int>(std::min<int64_t>(left, 100)))) return true;
    }
  }

  static void drain_input(socket_t sock) {
    ::shutdown(sock, SHUT_WR);  // our reply is complete: tell the client, then swallow what it still sends
    char buf[65536];
    size_t total = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(1);
    while (total < (16u << 20)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd p{sock, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      ssize_t n = ::recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
  }
};

void set_reply(httplib::Response& res, const Reply& reply) {
  res.status = reply.status;
  res.set_content(reply.body, "application/json");
}

std::optional<uint64_t> content_length(const httplib::Request& req) {
  if (!req.has_header("Content-Length")) return std::nullopt;
  const std::string value = req.get_header_value("Content-Length");
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size()) return std::numeric_limits<uint64_t>::max();
  return n;
}

std::string human_bytes(uint64_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return fmt::format("{} MiB", n >> 20);
  return fmt::format("{} bytes", n);
}

}  // namespace

void ServeOptions::validate() const {
  if (host.empty()) usage_fail("--host: empty; give an address such as 127.0.0.1 or 0.0.0.0");
  if (port < 0 || port > 65535) usage_fail("--port {}: must be in [0, 65535] (0 = any free port)", port);
  if (max_body_bytes < 1) usage_fail("--max_body_bytes {}: must be at least 1", max_body_bytes);
  if (http_threads < 1 || http_threads > 4096) usage_fail("--http_threads {}: must be in [1, 4096]", http_threads);
  if (read_timeout_s < 1 || read_timeout_s > 3600)
    usage_fail("--read_timeout {}: must be in [1, 3600] seconds", read_timeout_s);
  batching.validate();
}

// ---------------------------------------------------------------------------------------------------------------
namespace {
std::string status_text(int status) {
  switch (status) {
    case 400: return "malformed HTTP request";
    case 404: return "no such endpoint (POST /inference, GET /health)";
    case 413: return "request too large";
    case 414: return "request line too long";
    case 416: return "range not satisfiable";
    case 500: return "internal server error";
    default: return fmt::format("HTTP status {}", status);
  }
}

std::string exception_text(std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "unknown exception";
}
}  // namespace

struct HttpServer::Impl {
  using Handled = httplib::Server::HandlerResponse;

  InferenceService& service;
  ServeOptions options;
  EndpointServer server;

  Impl(InferenceService& s, ServeOptions o) : service(s), options(std::move(o)) {
    configure_connections();
    install_routes();
    install_error_replies();
  }

  // Threads, timeouts, keep-alive and the body limit httplib enforces itself.
  void configure_connections() {
    const auto threads = static_cast<size_t>(options.http_threads);
    server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // httplib's default also sets SO_REUSEPORT, which would let a second em-serve share the port silently.
    server.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server.set_read_timeout(options.read_timeout_s);
    server.set_write_timeout(options.read_timeout_s);
    server.set_keep_alive_timeout(5);
    server.set_keep_alive_max_count(1000);
    server.set_payload_max_length(static_cast<size_t>(options.max_body_bytes));
  }

  void install_routes() {
    using httplib::Request;
    using httplib::Response;
    server.set_pre_routing_handler([this](const Request& req, Response& res) { return pre_route(req, res); });
    server.set_expect_100_continue_handler([this](const Request& req, Response& res) {
      return pre_route(req, res) == Handled::Handled ? res.status : 100;
    });
    server.Post("/inference", [this](const Request& req, Response& res, const httplib::ContentReader& reader) {
      inference(req, res, reader);
    });
    server.Get("/health", [this](const Request&, Response& res) { set_reply(res, service.health()); });
  }

  // Errors httplib answers itself (a malformed request line, a bad range...) and exceptions get a JSON body like
  // ours; the logger writes the access-log line.
  void install_error_replies() {
    using httplib::Request;
    using httplib::Response;
    server.set_error_handler(httplib::Server::HandlerWithResponse([](const Request&, Response& res) {
      if (!res.body.empty()) return Handled::Unhandled;
      set_reply(res, error_reply(res.status, status_text(res.status)));
      return Handled::Handled;
    }));
    server.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
      set_reply(res, error_reply(500, "internal error: " + exception_text(ep)));
    });
    server.set_logger([](const Request& req, const Response& res) {
      t_request.status = res.status;
      log::info("{} {} {} {:.1f} ms {}{}", req.method.empty() ? "-" : req.method, req.path.empty() ? "-" : req.path,
                res.status, ms_since(t_request.start), req.remote_addr, error_of(res));
    });
  }

  // Path and method first, then the body's size from its headers: everything refusable is refused before a byte
  // of the body is read (also answering "Expect: 100-continue", so curl never sends a body that would be refused).
  Handled pre_route(const httplib::Request& req, httplib::Response& res) {
    const auto length = content_length(req);
    const bool chunked = req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos;
    t_request.routed = true;
    t_request.has_body = chunked || (length && *length > 0);
    auto refuse = [&](const Reply& reply) {
      set_reply(res, reply);
      return Handled::Handled;
    };
    const bool inference = req.path == "/inference";
    if (!inference && req.path != "/health")
      return refuse(error_reply(404, fmt::format("{}: no such endpoint (POST /inference, GET /health)", req.path)));
    const std::string allow = inference ? "POST" : "GET, HEAD";
    if (inference ? req.method != "POST" : req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", allow);
      return refuse(
          error_reply(405, fmt::format("{} {}: method not allowed (allowed: {})", req.method, req.path, allow)));
    }
    if (inference)
      if (auto refusal = refuse_inference_body(req, length, chunked)) return refuse(*refusal);
    return Handled::Unhandled;
  }

  // POST /inference's body, judged from its headers alone.
  std::optional<Reply> refuse_inference_body(const httplib::Request& req, std::optional<uint64_t> length,
                                             bool chunked) const {
    const auto max = static_cast<uint64_t>(options.max_body_bytes);
    if (length && *length == std::numeric_limits<uint64_t>::max())
      return error_reply(400,
                         fmt::format("Content-Length \"{}\": not a number", req.get_header_value("Content-Length")));
    if (length && *length > max)
      return error_reply(413, fmt::format("request body of {} bytes: over the limit of {} (--max_body_bytes)",
                                          *length, human_bytes(max)));
    if (!length && !chunked)
      return error_reply(411, "POST /inference needs a Content-Length (or chunked transfer encoding)");
    if (req.get_header_value("Content-Type").rfind("multipart/", 0) == 0)
      return error_reply(415,
                         "send the request JSON itself as the body ({\"instances\": [...]}), not a multipart form");
    return std::nullopt;
  }

  void inference(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    const auto max = static_cast<size_t>(options.max_body_bytes);
    std::string body;
    if (auto length = content_length(req)) body.reserve(static_cast<size_t>(*length));
    bool too_large = false;
    // Chunked or compressed bodies announce no final size: the limit is enforced while reading too.
    bool complete = reader([&](const char* data, size_t n) {
      if (body.size() + n > max) {
        too_large = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (too_large) {
      std::string().swap(body);
      return set_reply(res, error_reply(413, fmt::format("request body: over the limit of {} (--max_body_bytes)",
                                                         human_bytes(max))));
    }
    if (!complete)
      return set_reply(res, error_reply(400, "request body: incomplete (the client stopped sending, or a broken "
                                             "chunked or compressed encoding)"));
    t_request.body_read = true;
    set_reply(res, service.infer(body));
  }
};

HttpServer::HttpServer(InferenceService& service, ServeOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  const ServeOptions& o = impl_->options;
  EndpointServer& s = impl_->server;
  errno = 0;
  int port = o.port == 0 ? s.bind_to_any_port(o.host) : (s.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port <= 0)
    fail("cannot listen on {}:{} ({})", o.host, o.port,
         errno != 0 ? std::strerror(errno) : "not an address of this machine?");
  // httplib listens with a backlog of 5: a burst of new connections would wait for SYN retries (1 s each).
  ::listen(s.listener(), SOMAXCONN);
  return port;
}

void HttpServer::run() {
  if (!impl_->server.listen_after_bind() && !impl_->server.stopping) fail("the listening socket failed");
}

void HttpServer::stop() {
  impl_->server.stopping = true;
  impl_->server.close_listener();
}

}  // namespace em::serve
