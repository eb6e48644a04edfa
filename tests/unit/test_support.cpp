#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <random>
#include <unistd.h>

namespace em::test {

std::optional<std::filesystem::path> shared_path(const std::string& rel) {
  std::filesystem::path p = std::filesystem::path(EM_SHARED_DIR) / rel;
  if (!std::filesystem::exists(p)) {
    WARN("skipped: " << p.string() << " is absent (../shared is only in the team's checkouts and CI)");
    return std::nullopt;
  }
  return p;
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
