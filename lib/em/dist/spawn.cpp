#include "em/dist/spawn.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "em/core/error.hpp"
#include "em/core/log.hpp"

namespace em::dist {
namespace {

constexpr int kMaxWorkers = 1024;
volatile sig_atomic_t g_num_workers = 0;
pid_t g_workers[kMaxWorkers];
volatile sig_atomic_t g_signal = 0;

// Only async-signal-safe calls: kill each live worker once per signal.
void forward_signal(int sig) {
  g_signal = sig;
  for (int i = 0; i < g_num_workers; ++i)
    if (g_workers[i] > 0) ::kill(g_workers[i], sig);
}

void install_forwarding() {
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

[[noreturn]] void exec_worker(int rank, int nproc, int port, const std::vector<std::string>& argv, int threads) {
  ::setpgid(0, 0);                    // signals reach the worker through the launcher alone
  ::prctl(PR_SET_PDEATHSIG, SIGTERM); // and it stops if the launcher dies
  if (::getppid() == 1) std::_Exit(1);
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("GROUP_RANK", "0", 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  if (threads > 0) ::setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv("/proc/self/exe", args.data());
  std::fprintf(stderr, "em-train: error: could not start worker %d: %s\n", rank, std::strerror(errno));
  std::_Exit(1);
}

// After the first failure: the others usually stop by themselves within seconds (a lost peer breaks their next
// collective); then SIGTERM, then SIGKILL.
void stop_the_rest(int grace_s) {
  const auto start = std::chrono::steady_clock::now();
  bool termed = false;
  while (true) {
    bool any = false;
    for (int i = 0; i < g_num_workers; ++i) any = any || g_workers[i] > 0;
    if (!any) return;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > grace_s && !termed) {
      for (int i = 0; i < g_num_workers; ++i)
        if (g_workers[i] > 0) ::kill(g_workers[i], SIGTERM);
      termed = true;
    }
    if (waited > grace_s + 30) {
      for (int i = 0; i < g_num_workers; ++i)
        if (g_workers[i] > 0) ::kill(g_workers[i], SIGKILL);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (int i = 0; i < g_num_workers; ++i)
        if (g_workers[i] == pid) g_workers[i] = 0;
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("no socket for a free port: {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    fail("could not find a free port on 127.0.0.1: {}", std::strerror(errno));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int run_local_workers(int nproc, const std::vector<std::string>& argv, int threads_per_worker) {
  if (nproc < 1 || nproc > kMaxWorkers) usage_fail("--nproc_per_node {}: expected 1 to {}", nproc, kMaxWorkers);
  const int port = free_local_port();
  log::info("starting {} worker processes (rendezvous 127.0.0.1:{})", nproc, port);
  install_forwarding();
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) fail("could not start worker {}: {}", rank, std::strerror(errno));
    if (pid == 0) exec_worker(rank, nproc, port, argv, threads_per_worker);
    g_workers[rank] = pid;
    g_num_workers = rank + 1;
  }
  int first_failure = 0;
  int live = nproc;
  while (live > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    int rank = -1;
    for (int i = 0; i < g_num_workers; ++i)
      if (g_workers[i] == pid) rank = i, g_workers[i] = 0;
    if (rank < 0) continue;
    --live;
    const int code = status_code(status);
    if (code == 0 || first_failure != 0) continue;
    first_failure = code;
    // A stop that was asked for (exit 130 after the checkpoint) is not a failure to explain.
    if (!(g_signal != 0 && code == static_cast<int>(ExitCode::interrupted)))
      log::error("worker rank {} (pid {}) {}; stopping the others", rank, pid, describe_status(status));
    stop_the_rest(10);
    live = 0;
  }
  return first_failure;
}

}  // namespace em::dist
