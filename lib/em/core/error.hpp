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
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ExitCode code = ExitCode::failure)
      : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
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
template <typename... Args>
[[noreturn]] void usage_fail(fmt::format_string<Args...> f, Args&&... args) {
  throw UsageError(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace em
