// Helpers shared by the unit tests: where shared/ and the source tree are, scratch folders.
// A test that needs ../shared calls shared_path() and returns early (with a WARN) when it is absent.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace em::test {

// Path of ../shared/<rel>, or nullopt (after a WARN naming what is skipped) when shared/ is absent.
std::optional<std::filesystem::path> shared_path(const std::string& rel);

// A fresh empty folder under the system temp dir, removed when the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

}  // namespace em::test
