#include "em/core/signals.hpp"

#include "em/core/error.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <unistd.h>

namespace em::signals {
namespace {
std::atomic<int> g_signal{0};
std::atomic<const char*> g_message{nullptr};
// The self-pipe that wakes StopWatchers: the handler may only write(2). A byte stays in it until reset(), so every
// watcher sees it, whenever it starts polling.
int g_wake_pipe[2] = {-1, -1};

void make_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) fail("cannot create a pipe: {}", std::strerror(errno));
}

void open_wake_pipe() {
  static std::once_flag once;
  std::call_once(once, [] { make_pipe(g_wake_pipe); });
}

void wake_watchers() {
  if (g_wake_pipe[1] < 0) return;
  const char byte = 1;
  ssize_t ignored = ::write(g_wake_pipe[1], &byte, 1);  // a full pipe already wakes them
  (void)ignored;
}

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig)) {
    // Second signal: the user insists. Restore the default action and re-raise.
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  if (const char* message = g_message.load()) {
    ssize_t ignored = ::write(STDERR_FILENO, message, std::strlen(message));
    (void)ignored;
  }
  wake_watchers();
}

void drain_wake_pipe() {
  char buf[64];
  while (::read(g_wake_pipe[0], buf, sizeof(buf)) > 0) {
  }
}

// Waits until a stop is requested (true) or the quit pipe is written (false). A stop sets g_signal before it writes
// the wake byte, so checking g_signal before each poll misses none.
bool wait_for_stop(int quit_fd) {
  pollfd fds[2] = {{g_wake_pipe[0], POLLIN, 0}, {quit_fd, POLLIN, 0}};
  for (;;) {
    if (g_signal.load() != 0) return true;
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return false;
    if (fds[1].revents != 0) return false;
    if (fds[0].revents != 0 && g_signal.load() == 0) drain_wake_pipe();  // a byte from before a reset()
  }
}
}  // namespace

void install_stop_handlers(const char* message) {
  open_wake_pipe();
  g_message = message;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void restore_default_actions() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

bool stop_requested() { return g_signal.load(std::memory_order_relaxed) != 0; }
int stop_signal() { return g_signal.load(); }

void request_stop(int signal_number) {
  g_signal.store(signal_number);
  wake_watchers();
}

void reset() {
  g_signal.store(0);
  if (g_wake_pipe[0] >= 0) drain_wake_pipe();
}

StopWatcher::StopWatcher(std::function<void(int)> on_stop) {
  open_wake_pipe();
  make_pipe(quit_pipe_);
  thread_ = std::thread([this, on_stop = std::move(on_stop)] {
    if (wait_for_stop(quit_pipe_[0])) on_stop(g_signal.load());
  });
}

StopWatcher::~StopWatcher() {
  const char byte = 0;
  ssize_t ignored = ::write(quit_pipe_[1], &byte, 1);
  (void)ignored;
  thread_.join();
  ::close(quit_pipe_[0]);
  ::close(quit_pipe_[1]);
}

}  // namespace em::signals
