// Shared by the libFuzzer targets of fuzz/: run one parser call on the fuzzer's bytes, treat em::Error (and its
// UsageError) as the expected rejection of bad input, and let anything else (a crash, a sanitizer report, another
// exception escaping, a broken invariant) end the run as a finding. docs/fuzzing.md lists the targets.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "em/core/error.hpp"
#include "em/core/log.hpp"

namespace em::fuzz {

inline std::string_view bytes_of(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Calls f(); an em::Error is the parser refusing the input, which is what hostile input should get.
template <typename F>
void expect_clean(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const em::Error&) {
  }
}

// A property the parser promises about what it accepts does not hold: a finding like a crash.
#define EM_FUZZ_CHECK(cond)                                                              \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "EM_FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)


// Warnings about accepted-but-odd input (a label id without a name, ...) would flood the fuzzer's output.
inline void quiet_logs() { em::log::set_level(em::log::Level::error); }

// A fresh private folder for the targets whose parser reads files (segmentation splits, id2label, hyperparameters):
// under $TMPDIR (scripts/fuzz.sh points it at /dev/shm when it can), removed at exit.
std::string scratch_dir();
// Writes bytes to path (truncating); aborts when it cannot, as that is the harness failing, not the parser.
void write_bytes(const std::string& path, std::string_view bytes);
// The fuzzer's input cut in two at the first "\n#####\n" (for targets that parse a pair of files); no separator:
// the whole input is the first part and the second is empty.
std::pair<std::string_view, std::string_view> split_pair(std::string_view input);

}  // namespace em::fuzz
