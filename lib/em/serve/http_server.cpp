#include "em/serve/http_server.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/io/json.hpp"
#include "em/serve/metrics.hpp"

#include <httplib.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

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

// What the httplib callbacks of one request share. A request is served by one worker thread from its head to its
// answer, so thread-local state is per request (reset before each one).
// The endpoints, as routes match them (the model name apart).
enum class Route { none, inference, health, metrics, v1_models, v1_model, v1_predict, v2_server, v2_live, v2_ready,
                   v2_model, v2_model_ready };

struct RequestState {
  Clock::time_point start = Clock::now();
  bool routed = false;     // passed our pre-routing (headers parsed and understood)
  bool has_body = false;   // Content-Length > 0 or chunked
  bool body_read = false;  // the handler read the whole body: the connection can carry another request
  int status = 0;
  Route route = Route::none;
  std::string model;       // the model a route names (POST /inference: the default one); "" for others
  std::string request_id;  // X-Request-Id, taken from the request or made
  int64_t images = 0;      // instances of a predict request
};
thread_local RequestState t_request;

// The stop as the connections see it: once stopping, no read waits past the grace period.
struct StopState {
  std::atomic<bool> stopping{false};
  std::atomic<Clock::rep> grace_end{Clock::time_point::max().time_since_epoch().count()};
  Clock::time_point read_limit() const { return Clock::time_point(Clock::duration(grace_end.load())); }
  void begin() {
    grace_end = (Clock::now() + std::chrono::seconds(HttpServer::kStopGraceSeconds)).time_since_epoch().count();
    stopping = true;
  }
};

int64_t ms_until(Clock::time_point t) {
  if (t == Clock::time_point::max()) return std::numeric_limits<int>::max();
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
}

// The numeric address of a socket's peer (or its own end).
void socket_address(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  auto* a = reinterpret_cast<sockaddr*>(&addr);
  if ((peer ? ::getpeername(fd, a, &len) : ::getsockname(fd, a, &len)) != 0) return;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (::getnameinfo(a, len, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
    ip = host;
    port = std::atoi(serv);
  }
}

bool poll_one(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

// One request's socket as httplib's Stream. It starts with the bytes the head reader received (the whole head,
// perhaps more), and hands back what it read past this request (pipelined requests). Reads wait at most
// read_timeout of silence, and never past the body deadline or the stop's grace; writes never raise SIGPIPE.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int fd, std::string received, int read_timeout_ms, int write_timeout_ms,
                   Clock::time_point deadline, const StopState& stop)
      : fd_(fd), buffer_(std::move(received)), read_timeout_ms_(read_timeout_ms),
        write_timeout_ms_(write_timeout_ms), deadline_(deadline), stop_(stop) {}

  bool has_buffered() const { return offset_ < buffer_.size(); }
  std::string take_buffered() { return buffer_.substr(offset_); }

  bool is_readable() const override { return has_buffered() || wait_readable(); }
  bool is_writable() const override { return poll_one(fd_, POLLOUT, write_timeout_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (has_buffered()) {
      size_t n = std::min(size, buffer_.size() - offset_);
      std::memcpy(ptr, buffer_.data() + offset_, n);
      offset_ += n;
      return static_cast<ssize_t>(n);
    }
    // Large reads go straight to the caller; small ones (httplib reads lines byte by byte) fill the buffer.
    constexpr size_t kChunk = 16384;
    if (size >= kChunk) return receive(ptr, size);
    buffer_.resize(kChunk);
    offset_ = 0;
    ssize_t n = receive(buffer_.data(), kChunk);
    buffer_.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return n <= 0 ? n : read(ptr, size);
  }

  ssize_t write(const char* ptr, size_t size) override {
    for (;;) {
      ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!poll_one(fd_, POLLOUT, write_timeout_ms_)) return -1;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { socket_address(fd_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { socket_address(fd_, false, ip, port); }
  socket_t socket() const override { return fd_; }

 private:
  ssize_t receive(char* ptr, size_t size) {
    for (;;) {
      ssize_t n = ::recv(fd_, ptr, size, MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!wait_readable()) return -1;  // silent too long, past the deadline, or stopping: give up on it
    }
  }
  // In slices, so that a stop shortens a wait already begun.
  bool wait_readable() const {
    const auto silent_until = Clock::now() + std::chrono::milliseconds(read_timeout_ms_);
    for (;;) {
      const auto limit = std::min({silent_until, deadline_, stop_.read_limit()});
      const int64_t left = ms_until(limit);
      if (left <= 0) return false;
      if (poll_one(fd_, POLLIN, static_cast<int>(std::min<int64_t>(left, 100)))) return true;
    }
  }
  int fd_;
  std::string buffer_;
  size_t offset_ = 0;
  int read_timeout_ms_, write_timeout_ms_;
  Clock::time_point deadline_;
  const StopState& stop_;
};

std::string peer_address(int fd) {
  std::string ip = "-";
  int port = 0;
  socket_address(fd, true, ip, port);
  return ip;
}

// An open connection outside a request: its socket, the bytes received and not yet served, its count of requests.
struct Connection {
  int fd = -1;
  std::string pending;      // a partial head, or a whole one (and perhaps requests pipelined behind it)
  size_t scanned = 0;       // pending[0, scanned) holds no head end
  size_t served = 0;        // requests answered on it
  Clock::time_point since;  // when it began waiting (the longest waiting is closed first when too many are open)
  Clock::time_point deadline;
  bool head_started = false;  // a first byte of the next request has arrived
  bool closing = false;       // answered and shut for writing: what the client still sends is swallowed
  size_t swallowed = 0;
};

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
           return a == std::tolower(static_cast<unsigned char>(b));
         });
}

// Whether a request head announces a body (a Content-Length other than 0, or a Transfer-Encoding). Only picks the
// queue: httplib parses the head itself.
bool announces_body(std::string_view head) {
  for (size_t line = head.find("\r\n"); line != std::string_view::npos; line = head.find("\r\n", line + 2)) {
    std::string_view field = head.substr(line + 2, head.find("\r\n", line + 2) - (line + 2));
    if (starts_with_nocase(field, "transfer-encoding:")) return true;
    if (starts_with_nocase(field, "content-length:")) {
      std::string_view value = field.substr(15);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      if (value != "0") return true;
    }
  }
  return false;
}

// What a worker does with a connection after one request.
enum class After { keep, close, drain };

// Every connection between requests, and the threads that serve requests. One poll thread (the head reader)
// watches the waiting connections: it gathers each request head against --header_timeout_s and
// --max_header_bytes, closes idle keep-alive connections, and puts a connection with a whole head in the ready
// queue, which http_threads workers serve one request at a time; one more worker serves only requests without a
// body (GET /health), so they never wait behind uploads or the model. A connection done with a request comes back
// to the head reader, so neither slow nor idle clients ever hold a worker. A reply that must close the connection
// with the client still sending (408, 431, an unread body) is followed by a short swallow of its bytes, so the
// kernel does not reset the connection under the reply.
class ConnectionPool {
 public:
  using ServeOne = std::function<After(Connection&)>;

  ConnectionPool(const ServeOptions& options, const StopState& stop, ServeOne serve_one)
      : options_(options), stop_(stop), serve_one_(std::move(serve_one)) {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) fail("eventfd: {}", std::strerror(errno));
  }
  ~ConnectionPool() {
    shut_down();
    ::close(wake_fd_);
  }

  void start() {
    reader_ = std::thread([this] { read_heads(); });
    for (int i = 0; i < options_.http_threads; ++i) workers_.emplace_back([this] { work(false); });
    workers_.emplace_back([this] { work(true); });
  }
  // From the accept thread.
  void add(int fd) {
    int one = 1;  // replies are written as header + body: without this, Nagle delays the body by an ACK
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    ++open_;
    hand_to_reader(std::move(c));
  }
  // After stop_.begin(): the head reader serves the heads already received, closes every other waiting
  // connection and ends; the workers finish the ready queue and end.
  void shut_down() {
    wake();
    if (reader_.joinable()) reader_.join();
    for (auto& w : workers_)
      if (w.joinable()) w.join();
    workers_.clear();
  }
  // Has the head reader look at the stop (or new connections) now.
  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }

 private:
  void hand_to_reader(std::unique_ptr<Connection> c) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!reader_done_) {
        incoming_.push_back(std::move(c));
        c = nullptr;
      }
    }
    if (c)
      close_now(*c);
    else
      wake();
  }
  void close_now(Connection& c) {
    ::close(c.fd);
    --open_;
  }

  // --- the head reader ---------------------------------------------------------------------------------------
  void read_heads() {
    std::vector<std::unique_ptr<Connection>> waiting;
    std::vector<pollfd> fds;
    for (;;) {
      {
        std::vector<std::unique_ptr<Connection>> arrived;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          arrived.swap(incoming_);
        }
        for (auto& c : arrived) {
          if (!c->closing) {
            begin_wait(*c);
            check_head(c);
          }
          if (c) waiting.push_back(std::move(c));
        }
      }
      if (stop_.stopping) return finish(waiting);
      close_the_longest_waiting(waiting);

      fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
      int64_t timeout = 1000;
      for (auto& c : waiting) {
        fds.push_back(pollfd{c->fd, POLLIN, 0});
        timeout = std::min(timeout, std::max<int64_t>(0, ms_until(c->deadline) + 1));
      }
      if (::poll(fds.data(), fds.size(), static_cast<int>(timeout)) < 0 && errno != EINTR)
        fail("poll: {}", std::strerror(errno));
      if (fds[0].revents) {
        uint64_t n;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &n, sizeof(n));
      }
      const auto now = Clock::now();
      for (size_t i = 0; i < waiting.size(); ++i) {
        auto& c = waiting[i];
        bool open = true;
        if (fds[i + 1].revents) open = receive(c);
        if (open && c && now >= c->deadline) open = expire(*c);
        if (!open) {
          close_now(*c);
          c = nullptr;
        }
      }
      waiting.erase(std::remove(waiting.begin(), waiting.end(), nullptr), waiting.end());
    }
  }

  void begin_wait(Connection& c) {
    c.since = Clock::now();
    c.scanned = 0;
    c.head_started = !c.pending.empty();
    // A new connection has --header_timeout_s to send its head; a kept-alive one may idle first.
    c.deadline = c.since + std::chrono::seconds(c.served == 0 || c.head_started ? options_.header_timeout_s
                                                                                 : options_.keep_alive_timeout_s);
  }

  // Reads what the client sent; false when the connection is to be closed now. Moves a connection whose head is
  // whole to the ready queue (then `c` is null).
  bool receive(std::unique_ptr<Connection>& c) {
    char buf[16384];
    if (c->closing) {
      ssize_t n = ::recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
      if (n > 0) c->swallowed += static_cast<size_t>(n);
      return n > 0 && c->swallowed < (16u << 20);
    }
    // At most one byte past the limit is read: enough to know the head is too large.
    const size_t limit = static_cast<size_t>(options_.max_header_bytes) + 1;
    const size_t room = c->pending.size() < limit ? limit - c->pending.size() : 1;
    ssize_t n = ::recv(c->fd, buf, std::min(room, sizeof(buf)), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (n <= 0) return false;  // closed by the client (or reset) before a whole head: nothing to answer
    if (!c->head_started) {
      c->head_started = true;
      c->deadline = Clock::now() + std::chrono::seconds(options_.header_timeout_s);
    }
    c->pending.append(buf, static_cast<size_t>(n));
    check_head(c);
    return true;
  }

  // A whole head goes to the ready queue (`c` becomes null); a head that cannot fit is answered 431.
  void check_head(std::unique_ptr<Connection>& c) {
    const size_t max = static_cast<size_t>(options_.max_header_bytes);
    const size_t from = c->scanned >= 3 ? c->scanned - 3 : 0;
    const size_t end = c->pending.find("\r\n\r\n", from);
    c->scanned = c->pending.size();
    if (end != std::string::npos && end + 4 <= max) {
      const bool light = !announces_body(std::string_view(c->pending).substr(0, end));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        (light ? ready_light_ : ready_).push_back(std::move(c));
      }
      any_ready_.notify_one();
      if (light) light_ready_.notify_one();
    } else if (end != std::string::npos || c->pending.size() > max) {
      reply_and_close(*c, 431, "Request Header Fields Too Large",
                      fmt::format("request head (request line and headers) over {} bytes (--max_header_bytes)",
                                  options_.max_header_bytes));
    }
  }

  // On a deadline: an idle connection closes, a partial head is answered 408, a swallow ends.
  bool expire(Connection& c) {
    if (c.closing || c.pending.empty()) return false;
    reply_and_close(c, 408, "Request Timeout",
                    fmt::format("request head not received whole within {} s (--header_timeout_s)",
                                options_.header_timeout_s));
    return true;
  }

  // The status line and JSON body written here, not by httplib: the request never reached it.
  void reply_and_close(Connection& c, int status, const char* reason, const std::string& message) {
    const std::string body = error_reply(status, message).body;
    const std::string reply = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        status, reason, body.size(), body);
    [[maybe_unused]] ssize_t n = ::send(c.fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    log::info("- - {} {:.1f} ms {}: {}", status, std::chrono::duration<double, std::milli>(Clock::now() - c.since)
                                                     .count(), peer_address(c.fd), message);
    start_swallow(c);
  }
  void start_swallow(Connection& c) {
    ::shutdown(c.fd, SHUT_WR);
    c.closing = true;
    c.pending.clear();
    c.pending.shrink_to_fit();
    c.deadline = Clock::now() + std::chrono::seconds(1);
  }

  // Past --max_connections: the longest waiting connections go (an idle keep-alive one, or the slowest head).
  void close_the_longest_waiting(std::vector<std::unique_ptr<Connection>>& waiting) {
    while (open_ > options_.max_connections && !waiting.empty()) {
      auto oldest = std::min_element(waiting.begin(), waiting.end(),
                                     [](const auto& a, const auto& b) { return a->since < b->since; });
      log::debug("{} connections open (--max_connections {}): closing the one waiting longest", open_.load(),
                 options_.max_connections);
      close_now(**oldest);
      waiting.erase(oldest);
    }
  }

  // Stopping: a connection not served yet whose request has arrived whole is still served; the rest close.
  void finish(std::vector<std::unique_ptr<Connection>>& waiting) {
    for (auto& c : waiting) {
      if (!c->closing && c->served == 0) {
        char buf[16384];
        ssize_t n;
        while (c->pending.size() <= static_cast<size_t>(options_.max_header_bytes) &&
               (n = ::recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
          c->pending.append(buf, static_cast<size_t>(n));
        c->scanned = 0;
        check_head(c);
        if (!c) continue;
      }
      close_now(*c);
    }
    waiting.clear();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      reader_done_ = true;
      for (auto& c : incoming_) close_now(*c);
      incoming_.clear();
    }
    any_ready_.notify_all();
    light_ready_.notify_all();
  }

  // --- the workers -------------------------------------------------------------------------------------------
  // Requests without a body come first; the light worker serves only those.
  void work(bool light_only) {
    for (;;) {
      std::unique_ptr<Connection> c;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        auto has_work = [&] { return !ready_light_.empty() || (!light_only && !ready_.empty()); };
        (light_only ? light_ready_ : any_ready_).wait(lock, [&] { return has_work() || reader_done_; });
        if (!has_work()) return;
        auto& queue = ready_light_.empty() ? ready_ : ready_light_;
        c = std::move(queue.front());
        queue.pop_front();
      }
      const After after = serve_one_(*c);
      if (after == After::close) {
        ::shutdown(c->fd, SHUT_RDWR);
        close_now(*c);
        continue;
      }
      if (after == After::drain) start_swallow(*c);
      hand_to_reader(std::move(c));
    }
  }

  const ServeOptions& options_;
  const StopState& stop_;
  ServeOne serve_one_;
  int wake_fd_ = -1;
  std::atomic<int> open_{0};
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> incoming_;  // new or back from a worker, for the head reader
  std::deque<std::unique_ptr<Connection>> ready_;        // a whole head received, for the workers
  std::deque<std::unique_ptr<Connection>> ready_light_;  // the same without a body (GET /health)
  std::condition_variable any_ready_, light_ready_;
  bool reader_done_ = false;
  std::thread reader_;
  std::vector<std::thread> workers_;
};

// httplib runs each accepted connection's task on its TaskQueue; ours runs it at once on the accept thread,
// where process_and_close_socket (httplib's documented override point) only hands the socket to the pool.
class HandOverQueue final : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

// httplib's server with our connections in place of its own: it parses, routes and answers one request at a time
// on a ConnectionStream; the pool decides when connections get a thread and when they close.
class EndpointServer final : public httplib::Server {
 public:
  StopState stop_state;
  std::unique_ptr<ConnectionPool> pool;

  ~EndpointServer() override {
    stop_state.begin();  // the pool's threads end only once stopping
    pool.reset();
  }

  void start(const ServeOptions& options) {
    options_ = &options;
    pool = std::make_unique<ConnectionPool>(options, stop_state, [this](Connection& c) { return serve(c); });
    pool->start();
  }
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
    pool->add(sock);
    return true;
  }

  // One request whose head has arrived whole. A request answered before its body was read closes the connection
  // (the unread body must not parse as the next request), after a drain.
  After serve(Connection& c) {
    ConnectionStream stream(c.fd, std::move(c.pending), options_->read_timeout_s * 1000,
                            options_->read_timeout_s * 1000,
                            Clock::now() + std::chrono::seconds(options_->body_timeout_s), stop_state);
    t_request = RequestState{};
    const bool last = ++c.served >= static_cast<size_t>(options_->keep_alive_max_requests) || stop_state.stopping;
    bool client_closes = false;
    const bool ok = process_request(stream, last, client_closes, nullptr);
    if (t_request.status >= 400 && !t_request.body_read && (t_request.has_body || !t_request.routed))
      return After::drain;
    // Requests pipelined behind the last one are swallowed before the close, so that the answers already sent
    // are not lost to a reset.
    if (!ok || client_closes || last)
      return stream.has_buffered() || poll_one(c.fd, POLLIN, 0) ? After::drain : After::close;
    c.pending = stream.take_buffered();
    return After::keep;
  }

  const ServeOptions* options_ = nullptr;
};

void set_reply(httplib::Response& res, const Reply& reply) {
  res.status = reply.status;
  if (reply.retry_after_s > 0) res.set_header("Retry-After", std::to_string(reply.retry_after_s));
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
  if (header_timeout_s < 1 || header_timeout_s > 3600)
    usage_fail("--header_timeout_s {}: must be in [1, 3600] seconds", header_timeout_s);
  if (body_timeout_s < 1 || body_timeout_s > 86400)
    usage_fail("--body_timeout_s {}: must be in [1, 86400] seconds", body_timeout_s);
  if (max_header_bytes < 1024 || max_header_bytes > (16 << 20))
    usage_fail("--max_header_bytes {}: must be in [1024, 16777216]", max_header_bytes);
  if (max_connections < 1 || max_connections > 1000000)
    usage_fail("--max_connections {}: must be in [1, 1000000]", max_connections);
  if (keep_alive_timeout_s < 1 || keep_alive_timeout_s > 3600)
    usage_fail("--keep_alive_timeout_s {}: must be in [1, 3600] seconds", keep_alive_timeout_s);
  if (keep_alive_max_requests < 1)
    usage_fail("--keep_alive_max_requests {}: must be at least 1", keep_alive_max_requests);
  if (log_format != "text" && log_format != "json")
    usage_fail("--log_format {}: must be text or json", log_format);
  service_options().validate();
}

ServiceOptions ServeOptions::service_options() const { return {batching, memory, request_timeout_ms}; }

// ---------------------------------------------------------------------------------------------------------------
namespace {
std::string status_text(int status) {
  switch (status) {
    case 400: return "malformed HTTP request";
    case 404: return "no such endpoint";
    case 408: return "request not received in time";
    case 413: return "request too large";
    case 414: return "request line too long";
    case 431: return "request header fields too large";
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
// --max_connections needs as many file descriptors, and the process more (threads, model files, the listener):
// past the soft limit, accept() fails and new clients, /health's included, wait in the listen queue instead of
// evicting the connection waiting longest. The soft limit is raised up to the hard one; if that is not enough,
// max_connections is lowered to what fits.
void allow_descriptors_for(ServeOptions& options) {
  constexpr rlim_t kSpare = 128;
  const rlim_t need = static_cast<rlim_t>(options.max_connections) + kSpare;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= need) return;
  rlimit raised = limit;
  raised.rlim_cur = std::min(need, limit.rlim_max);
  if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  if (limit.rlim_cur >= need) return;
  const int fits = limit.rlim_cur > 2 * kSpare ? static_cast<int>(limit.rlim_cur - kSpare) : 64;
  log::warn("--max_connections {}: only {} file descriptors allowed (ulimit -n, hard limit); using {}",
            options.max_connections, static_cast<uint64_t>(limit.rlim_cur), fits);
  options.max_connections = fits;
}

// The routes, their labels in metrics, and whether they take a body. Model names are [A-Za-z0-9_.-] (model_set.hpp).
struct RouteMatch {
  Route route = Route::none;
  std::string model;
};

RouteMatch match_route(const std::string& path) {
  auto tail = [&](std::string_view prefix) -> std::optional<std::string> {
    if (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0) return path.substr(prefix.size());
    return std::nullopt;
  };
  if (path == "/inference") return {Route::inference, ""};
  if (path == "/health") return {Route::health, ""};
  if (path == "/metrics") return {Route::metrics, ""};
  if (path == "/v1/models") return {Route::v1_models, ""};
  if (path == "/v2" || path == "/v2/") return {Route::v2_server, ""};
  if (path == "/v2/health/live") return {Route::v2_live, ""};
  if (path == "/v2/health/ready") return {Route::v2_ready, ""};
  if (auto rest = tail("/v1/models/")) {
    static const std::string kPredict = ":predict";
    if (rest->size() > kPredict.size() && rest->compare(rest->size() - kPredict.size(), kPredict.size(), kPredict) == 0)
      return {Route::v1_predict, rest->substr(0, rest->size() - kPredict.size())};
    if (rest->find('/') == std::string::npos && rest->find(':') == std::string::npos) return {Route::v1_model, *rest};
  }
  if (auto rest = tail("/v2/models/")) {
    static const std::string kReady = "/ready";
    if (rest->size() > kReady.size() && rest->compare(rest->size() - kReady.size(), kReady.size(), kReady) == 0) {
      std::string name = rest->substr(0, rest->size() - kReady.size());
      if (name.find('/') == std::string::npos) return {Route::v2_model_ready, name};
    }
    if (rest->find('/') == std::string::npos) return {Route::v2_model, *rest};
  }
  return {};
}

// The route as a metrics label: its pattern, never the raw path (bounded label values).
const char* route_label(Route route) {
  switch (route) {
    case Route::inference: return "/inference";
    case Route::health: return "/health";
    case Route::metrics: return "/metrics";
    case Route::v1_models: return "/v1/models";
    case Route::v1_model: return "/v1/models/{name}";
    case Route::v1_predict: return "/v1/models/{name}:predict";
    case Route::v2_server: return "/v2";
    case Route::v2_live: return "/v2/health/live";
    case Route::v2_ready: return "/v2/health/ready";
    case Route::v2_model: return "/v2/models/{name}";
    case Route::v2_model_ready: return "/v2/models/{name}/ready";
    case Route::none: break;
  }
  return "other";
}

bool is_predict(Route route) { return route == Route::inference || route == Route::v1_predict; }

constexpr const char* kEndpoints =
    "POST /inference, POST /v1/models/NAME:predict, GET /health, /metrics, /v1/models, /v1/models/NAME, "
    "/v2/health/live, /v2/health/ready, /v2/models/NAME, /v2/models/NAME/ready";

// X-Request-Id: the client's when it is 1 to 128 visible ASCII characters, else 32 random hex digits.
std::string request_id_of(const httplib::Request& req) {
  const std::string given = req.get_header_value("X-Request-Id");
  if (!given.empty() && given.size() <= 128 &&
      std::all_of(given.begin(), given.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    return given;
  thread_local std::mt19937_64 random(std::random_device{}() ^
                                      static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
  return fmt::format("{:016x}{:016x}", random(), random());
}

}  // namespace

struct HttpServer::Impl {
  using Handled = httplib::Server::HandlerResponse;

  ModelSet& models;
  ServeOptions options;
  EndpointServer server;
  RequestCounts counts;

  Impl(ModelSet& m, ServeOptions o) : models(m), options(std::move(o)) {
    configure_connections();
    install_routes();
    install_error_replies();
  }

  // Our connection pool (EndpointServer) in place of httplib's thread per connection, and the body limit httplib
  // enforces itself.
  void configure_connections() {
    server.new_task_queue = [] { return new HandOverQueue(); };
    // httplib's default also sets SO_REUSEPORT, which would let a second em-serve share the port silently.
    server.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server.set_payload_max_length(static_cast<size_t>(options.max_body_bytes));
  }

  // Every path goes through pre_route (which matched it, checked its method, model and body headers) and then to
  // one handler per method, which answers t_request.route.
  void install_routes() {
    using httplib::Request;
    using httplib::Response;
    server.set_pre_routing_handler([this](const Request& req, Response& res) { return pre_route(req, res); });
    server.set_expect_100_continue_handler([this](const Request& req, Response& res) {
      return pre_route(req, res) == Handled::Handled ? res.status : 100;
    });
    server.Post(".*", [this](const Request& req, Response& res, const httplib::ContentReader& reader) {
      predict(req, res, reader);
    });
    server.Get(".*", [this](const Request&, Response& res) { get(res); });
  }

  // Errors httplib answers itself (a malformed request line, a bad range...) and exceptions get a JSON body like
  // ours; the logger writes the access-log line and counts the request.
  void install_error_replies() {
    using httplib::Request;
    using httplib::Response;
    server.set_error_handler(httplib::Server::HandlerWithResponse([](const Request& req, Response& res) {
      if (t_request.request_id.empty()) t_request.request_id = request_id_of(req);
      if (!res.has_header("X-Request-Id")) res.set_header("X-Request-Id", t_request.request_id);
      if (!res.body.empty()) return Handled::Unhandled;
      set_reply(res, error_reply(res.status, status_text(res.status)));
      return Handled::Handled;
    }));
    server.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
      set_reply(res, error_reply(500, "internal error: " + exception_text(ep)));
    });
    server.set_logger([this](const Request& req, const Response& res) { log_request(req, res); });
  }

  void log_request(const httplib::Request& req, const httplib::Response& res) {
    t_request.status = res.status;
    const double ms = ms_since(t_request.start);
    counts.add(route_label(t_request.route), t_request.model, res.status);
    if (is_predict(t_request.route))
      if (const ModelSet::Model* m = models.find(t_request.model); m && m->ready.load(std::memory_order_acquire))
        m->service->record_request(ms / 1000);
    if (log::level() < log::Level::info) return;
    const std::string error = error_of(res);
    if (options.log_format == "json") {
      io::Json line = {{"time", log::utc_timestamp()},
                       {"level", "info"},
                       {"program", log::program()},
                       {"request_id", t_request.request_id},
                       {"method", req.method.empty() ? "-" : req.method},
                       {"path", req.path.empty() ? "-" : req.path},
                       {"status", res.status},
                       {"ms", std::round(ms * 10) / 10},
                       {"client", req.remote_addr}};
      if (!t_request.model.empty()) line["model"] = t_request.model;
      if (is_predict(t_request.route)) line["images"] = t_request.images;
      if (!error.empty()) line["error"] = error.substr(2);  // without error_of's ": "
      log::write_line(io::dump_json(line));
      return;
    }
    log::info("{} {} {} {:.1f} ms {} id={}{}", req.method.empty() ? "-" : req.method,
              req.path.empty() ? "-" : req.path, res.status, ms, req.remote_addr,
              t_request.request_id.empty() ? "-" : t_request.request_id, error);
  }

  // Path, method and model first, then the body's size from its headers: everything refusable is refused before a
  // byte of the body is read (also answering "Expect: 100-continue", so curl never sends a body that would be
  // refused).
  Handled pre_route(const httplib::Request& req, httplib::Response& res) {
    const auto length = content_length(req);
    const bool chunked = req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos;
    t_request.routed = true;
    t_request.has_body = chunked || (length && *length > 0);
    if (t_request.request_id.empty()) t_request.request_id = request_id_of(req);
    // Pre-routing runs twice for "Expect: 100-continue" (once to answer the expectation): one header each.
    if (!res.has_header("X-Request-Id")) res.set_header("X-Request-Id", t_request.request_id);
    auto refuse = [&](const Reply& reply) {
      set_reply(res, reply);
      return Handled::Handled;
    };
    RouteMatch match = match_route(req.path);
    t_request.route = match.route;
    if (match.route == Route::none)
      return refuse(error_reply(404, fmt::format("{}: no such endpoint ({})", req.path, kEndpoints)));
    const bool post = is_predict(match.route);
    const std::string allow = post ? "POST" : "GET, HEAD";
    if (post ? req.method != "POST" : req.method != "GET" && req.method != "HEAD") {
      if (!res.has_header("Allow")) res.set_header("Allow", allow);
      return refuse(
          error_reply(405, fmt::format("{} {}: method not allowed (allowed: {})", req.method, req.path, allow)));
    }
    if (match.route == Route::inference) match.model = models.default_model().spec.name;
    t_request.model = match.model;
    if (!match.model.empty() && !models.find(match.model)) {
      t_request.model.clear();  // not a label value: the client chose it
      return refuse(error_reply(404, fmt::format("no model named \"{}\" (models: {})", match.model,
                                                 fmt::join(models.names(), ", "))));
    }
    if (post) {
      if (auto refusal = refuse_inference_body(req, length, chunked)) return refuse(*refusal);
      if (!models.service(match.model))
        return refuse(error_reply(503, fmt::format("model \"{}\" is still loading; retry later", match.model), 5));
    }
    return Handled::Unhandled;
  }

  // A predict route's body, judged from its headers alone.
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
      return error_reply(411, fmt::format("POST {} needs a Content-Length (or chunked transfer encoding)", req.path));
    if (req.get_header_value("Content-Type").rfind("multipart/", 0) == 0)
      return error_reply(415,
                         "send the request JSON itself as the body ({\"instances\": [...]}), not a multipart form");
    return std::nullopt;
  }

  void predict(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
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
    InferenceService* service = models.service(t_request.model);
    if (!service) return set_reply(res, error_reply(503, "server is stopping or the model is loading", 5));
    InferCall call;
    call.start = t_request.start;
    call.v1 = t_request.route == Route::v1_predict;
    const Reply reply = service->infer(body, call);
    t_request.images = reply.images;
    set_reply(res, reply);
  }

  static Reply json_reply(int status, const io::Json& body) { return {status, io::dump_json(body) + "\n"}; }

  void get(httplib::Response& res) {
    const std::string& name = t_request.model;
    switch (t_request.route) {
      case Route::health: return set_reply(res, health());
      case Route::metrics: {
        res.status = 200;
        res.set_content(metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
        return;
      }
      case Route::v1_models: return set_reply(res, json_reply(200, {{"models", models.names()}}));
      case Route::v2_server:
        return set_reply(res, json_reply(200, {{"name", "emkit"}, {"version", EM_VERSION},
                                               {"extensions", io::Json::array()}}));
      case Route::v2_live: return set_reply(res, json_reply(200, {{"live", true}}));
      case Route::v2_ready: {
        const bool ready = models.ready();
        return set_reply(res, not_ready_retry(json_reply(ready ? 200 : 503, {{"ready", ready}})));
      }
      case Route::v1_model:
      case Route::v2_model_ready: {
        const bool ready = models.service(name) != nullptr;
        return set_reply(res, not_ready_retry(json_reply(ready ? 200 : 503, {{"name", name}, {"ready", ready}})));
      }
      case Route::v2_model: {
        InferenceService* service = models.service(name);
        if (!service) return set_reply(res, error_reply(503, fmt::format("model \"{}\" is still loading", name), 5));
        const io::Json tensor_bytes = {{"datatype", "BYTES"}, {"shape", {-1}}};
        io::Json input = {{"name", "image"}}, output = {{"name", "predictions"}};
        input.update(tensor_bytes);
        output.update(tensor_bytes);
        const infer::Predictor& predictor = service->predictor();
        const io::Json parameters = {{"algo", algo_name(predictor.algo())},
                                     {"precision", tensor::precision_name(predictor.precision().precision)}};
        return set_reply(res, json_reply(200, {{"name", name},
                                               {"versions", {"1"}},
                                               {"platform", "emkit_libtorch"},
                                               {"inputs", {input}},
                                               {"outputs", {output}},
                                               {"parameters", parameters}}));
      }
      default: return set_reply(res, error_reply(404, fmt::format("no such endpoint ({})", kEndpoints)));
    }
  }
  static Reply not_ready_retry(Reply r) {
    if (r.status == 503) r.retry_after_s = 5;
    return r;
  }

  // GET /health: 200 once every model is ready, with the default model's description at the top level (one-model
  // servers read it so) and every model's under "models"; 503 {"status": "loading"} before.
  Reply health() const {
    const bool ready = models.ready();
    io::Json body = {{"status", ready ? "ok" : "loading"}};
    io::Json each = io::Json::object();
    for (const auto& m : models.models()) {
      if (m->ready.load(std::memory_order_acquire)) {
        io::Json d = m->service->describe();
        if (m.get() == &models.default_model()) body.update(d);
        d["ready"] = true;
        each[m->spec.name] = std::move(d);
      } else {
        each[m->spec.name] = {{"model", m->spec.dir}, {"ready", false}};
      }
    }
    body["models"] = std::move(each);
    Reply r = json_reply(ready ? 200 : 503, body);
    if (!ready) r.retry_after_s = 5;
    return r;
  }

  std::string metrics_text() const {
    PrometheusText out;
    out.family("emkit_requests_total", "counter", "HTTP requests answered, by route pattern, model and status code.");
    for (const auto& [key, n] : counts.snapshot()) {
      const auto& [route, model, code] = key;
      out.sample("emkit_requests_total", {{"route", route}, {"model", model}, {"code", std::to_string(code)}},
                 static_cast<double>(n));
    }
    // The ready models, each with one snapshot of its batcher's counters.
    std::vector<std::pair<const ModelSet::Model*, BatcherStats>> ready;
    for (const auto& m : models.models())
      if (m->ready.load(std::memory_order_acquire)) ready.emplace_back(m.get(), m->service->stats());
    auto per_model = [&](const char* name, const char* type, const char* help,
                         const std::function<void(const ModelSet::Model&, const BatcherStats&)>& sample) {
      out.family(name, type, help);
      for (const auto& [m, stats] : ready) sample(*m, stats);
    };
    auto model_label = [](const ModelSet::Model& m) { return PrometheusText::Labels{{"model", m.spec.name}}; };
    per_model("emkit_request_duration_seconds", "histogram",
              "Predict requests from their whole head to their answer, by model.",
              [&](const ModelSet::Model& m, const BatcherStats&) {
                out.histogram("emkit_request_duration_seconds", model_label(m),
                              m.service->metrics().request_seconds.snapshot());
              });
    per_model("emkit_batch_size", "histogram", "Images per forward pass, by model.",
              [&](const ModelSet::Model& m, const BatcherStats&) {
                out.histogram("emkit_batch_size", model_label(m), m.service->metrics().batch_size.snapshot());
              });
    per_model("emkit_queue_images", "gauge", "Images waiting for a forward pass, by model.",
              [&](const ModelSet::Model& m, const BatcherStats& st) {
                out.sample("emkit_queue_images", model_label(m), static_cast<double>(st.queued_images));
              });
    per_model("emkit_images_total", "counter", "Images predicted, by model.",
              [&](const ModelSet::Model& m, const BatcherStats& st) {
                out.sample("emkit_images_total", model_label(m), static_cast<double>(st.images));
              });
    per_model("emkit_forward_passes_total", "counter", "Forward passes, by model.",
              [&](const ModelSet::Model& m, const BatcherStats& st) {
                out.sample("emkit_forward_passes_total", model_label(m), static_cast<double>(st.batches));
              });
    per_model("emkit_images_per_second", "gauge", "Images predicted per second over the last 10 seconds, by model.",
              [&](const ModelSet::Model& m, const BatcherStats&) {
                out.sample("emkit_images_per_second", model_label(m), m.service->metrics().images_per_second());
              });
    per_model("emkit_model_load_seconds", "gauge", "Seconds the model took to load and run its warm-up pass.",
              [&](const ModelSet::Model& m, const BatcherStats&) {
                out.sample("emkit_model_load_seconds", model_label(m), m.load_seconds);
              });
    out.family("emkit_model_ready", "gauge", "1 once the model is loaded and warmed up, else 0.");
    for (const auto& m : models.models())
      out.sample("emkit_model_ready", {{"model", m->spec.name}}, m->ready.load(std::memory_order_acquire) ? 1 : 0);
    out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    out.sample("process_resident_memory_bytes", {}, static_cast<double>(process_resident_bytes()));
    out.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    out.sample("process_start_time_seconds", {}, process_start_time_seconds());
    return out.text();
  }
};

HttpServer::HttpServer(ModelSet& models, ServeOptions options)
    : impl_(std::make_unique<Impl>(models, std::move(options))) {}

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
  allow_descriptors_for(impl_->options);
  s.start(impl_->options);
  return port;
}

void HttpServer::run() {
  EndpointServer& s = impl_->server;
  const bool listened = s.listen_after_bind();
  const bool stopped = s.stop_state.stopping;
  if (!stopped) s.stop_state.begin();
  if (s.pool) s.pool->shut_down();
  if (!listened && !stopped) fail("the listening socket failed");
}

void HttpServer::stop() {
  EndpointServer& s = impl_->server;
  s.stop_state.begin();
  s.close_listener();
  if (s.pool) s.pool->wake();
}

}  // namespace em::serve
