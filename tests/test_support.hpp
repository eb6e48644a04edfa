// Helpers shared by the unit tests: where shared/ and the source tree are, scratch folders.
// A test that needs ../shared calls shared_path() and returns early when it is absent: the test case is then
// reported as skipped (em_unit_tests exits 77, ctest's SKIP_RETURN_CODE), not passed.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace em::dist {
class Group;
}

namespace em::test {

// Path of ../shared/<rel> (EM_SHARED overrides ../shared), or nullopt when shared/ is absent; then the running test case counts as skipped
// (skip()) and should return.
std::optional<std::filesystem::path> shared_path(const std::string& rel);
// The same for a test that has a fallback when shared/ is absent: nothing is skipped.
std::optional<std::filesystem::path> find_shared(const std::string& rel);

// Marks the running test case skipped (a WARN gives the reason); the caller returns. A run whose test cases all
// passed or were skipped, with at least one skipped, exits 77.
void skip(const std::string& reason);
// How many skip() calls this run made.
int skipped_count();

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

// Runs body(group) as ranks 0 and 1 of a Gloo group on loopback, on two threads of this process (as two processes
// would); rethrows the first failure.
void with_two_ranks(const std::function<void(em::dist::Group&)>& body);

// What fn() writes to stderr (stderr goes to a temporary file meanwhile).
std::string stderr_of(const std::function<void()>& fn);

}  // namespace em::test
