#include "test_support.hpp"

#include <catch2/catch.hpp>

#include "em/dist/group.hpp"
#include "em/dist/spawn.hpp"

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <cstdlib>
#include <random>
#include <thread>
#include <unistd.h>

namespace em::test {

namespace {
std::atomic<int> skipped{0};
}

void skip(const std::string& reason) {
  WARN("skipped: " << reason);
  skipped.fetch_add(1);
}

int skipped_count() { return skipped.load(); }

std::optional<std::filesystem::path> find_shared(const std::string& rel) {
  const char* env = std::getenv("EM_SHARED");
  std::filesystem::path p = std::filesystem::path(env && *env ? env : EM_SHARED_DIR) / rel;
  if (!std::filesystem::exists(p)) return std::nullopt;
  return p;
}

std::optional<std::filesystem::path> shared_path(const std::string& rel) {
  auto p = find_shared(rel);
  if (!p) skip(rel + " is absent from shared/ (../shared is only in the team's checkouts and CI)");
  return p;
}

std::string stderr_of(const std::function<void()>& fn) {
  TempDir dir;
  const std::string path = (dir / "stderr.txt").string();
  std::fflush(stderr);
  const int saved = dup(fileno(stderr));
  REQUIRE(std::freopen(path.c_str(), "w", stderr) != nullptr);
  fn();
  std::fflush(stderr);
  dup2(saved, fileno(stderr));
  close(saved);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("em-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void with_two_ranks(const std::function<void(em::dist::Group&)>& body) {
  const int port = em::dist::free_local_port();
  std::exception_ptr errors[2];
  auto run = [&](int rank) {
    try {
      em::dist::LaunchEnv env;
      env.rank = rank;
      env.world_size = 2;
      env.local_rank = rank;
      env.local_world_size = 2;
      env.master_port = port;
      env.launcher = "test";
      auto group = em::dist::Group::join(env, torch::kCPU, std::chrono::seconds(30));
      body(*group);
    } catch (...) {
      errors[rank] = std::current_exception();
    }
  };
  std::thread one(run, 1);
  run(0);
  one.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace em::test
