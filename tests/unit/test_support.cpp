#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <cstdlib>
#include <random>
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

}  // namespace em::test
