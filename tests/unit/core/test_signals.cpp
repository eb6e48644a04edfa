#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include "em/core/signals.hpp"

namespace signals = em::signals;

namespace {
// Waits up to 5 s for `value` to become `want`: the watcher runs on a thread of its own.
bool eventually(const std::atomic<int>& value, int want) {
  for (int i = 0; i < 500 && value.load() != want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return value.load() == want;
}
}  // namespace

TEST_CASE("a stop watcher is called once, on its own thread, with the signal number", "[core][signals]") {
  signals::reset();
  std::atomic<int> seen{0};
  std::atomic<int> calls{0};
  {
    signals::StopWatcher watcher([&](int sig) {
      seen = sig;
      ++calls;
    });
    CHECK(seen == 0);
    signals::request_stop(SIGTERM);
    CHECK(eventually(seen, SIGTERM));
  }
  CHECK(calls == 1);
  CHECK(signals::stop_requested());
  signals::reset();
  CHECK_FALSE(signals::stop_requested());
}

TEST_CASE("a stop asked before the watcher exists still reaches it; without a stop it ends quietly",
          "[core][signals]") {
  signals::reset();
  signals::request_stop(SIGINT);
  std::atomic<int> seen{0};
  {
    signals::StopWatcher watcher([&](int sig) { seen = sig; });
    CHECK(eventually(seen, SIGINT));
  }
  signals::reset();
  std::atomic<int> calls{0};
  { signals::StopWatcher watcher([&](int) { ++calls; }); }
  CHECK(calls == 0);
}

TEST_CASE("the first real signal is a cooperative stop", "[core][signals]") {
  signals::reset();
  signals::install_stop_handlers(nullptr);
  std::atomic<int> seen{0};
  signals::StopWatcher watcher([&](int sig) { seen = sig; });
  std::raise(SIGTERM);  // the handler runs: the process lives on
  CHECK(eventually(seen, SIGTERM));
  CHECK(signals::stop_signal() == SIGTERM);
  signals::reset();
  signals::restore_default_actions();
}
