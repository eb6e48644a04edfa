// em::Error and the one exit-code table of every emkit tool.
// The library throws; only tools/common's run_main() catches, prints "TOOL: error: ..." and maps to an exit code.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace em {

enum class ExitCode : int {
  ok = 0,
  failure = 1,      // data or runtime error: invalid dataset, unreadable file, bad request
  usage = 2,        // unknown flag, bad hyperparameter, wrong combination of options
  interrupted = 130 // SIGINT/SIGTERM: work saved, stopped early
};

// A data or runtime error (exit 1). The message names the file, field or parameter and what would be right.
// An error about one file may carry its path apart from the reason: what() is then "PATH: REASON", and reports that
// list path and reason in separate fields (em-validate's problems) take them from path() and reason().
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ExitCode code = ExitCode::failure)
      : std::runtime_error(message), reason_(message), code_(code) {}
  Error(std::string path, const std::string& reason, ExitCode code = ExitCode::failure)
      : std::runtime_error(path + ": " + reason), path_(std::move(path)), reason_(reason), code_(code) {}
  ExitCode code() const { return code_; }
  const std::string& path() const { return path_; }      // "" when the error is not about one file
  const std::string& reason() const { return reason_; }  // what() without the "PATH: " prefix

 private:
  std::string path_, reason_;
  ExitCode code_;
};

// A usage error (exit 2): bad flag value, out-of-range hyperparameter, unknown name.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message, ExitCode::usage) {}
};

// Raised when a stop signal arrived and the work has been saved (exit 130).
class Interrupted : public Error {
 public:
  explicit Interrupted(const std::string& message) : Error(message, ExitCode::interrupted) {}
};

// fmt-style helpers: throw em::fail("{}: not an image", path);
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}
// The same about one file: throw em::Error{path, reason}, so that reports can keep the two apart.
template <typename... Args>
[[noreturn]] void fail_at(const std::string& path, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(path, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
[[noreturn]] void usage_fail(fmt::format_string<Args...> f, Args&&... args) {
  throw UsageError(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace em
