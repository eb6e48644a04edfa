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
#include <vector>

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/io/json.hpp"

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


// Calls f() on input the parser must accept (what it wrote itself): an em::Error here is a finding, printed.
template <typename F>
void expect_accepted(const char* what, F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const em::Error& e) {
    std::fprintf(stderr, "EM_FUZZ: %s refused: %s\n", what, e.what());
    std::abort();
  }
}

// Whether two JSON values say the same: numbers by value (an integer past int64 is not the int64 it wraps to; an
// integer and a float compare as doubles), arrays and objects member by member, the rest by nlohmann's ==.
bool same_json(const em::io::Json& a, const em::io::Json& b);

// What a config reader promises about the fields it takes as they are: each member of `written` (the config's
// to_json()) that `input` also has says what the input said (same_json). `derived` lists the members the reader
// derives or normalises on purpose (labels, sizes...), which are left to the round trip. Aborts naming the member.
void check_written_as_read(const em::io::Json& input, const em::io::Json& written,
                           const std::vector<std::string>& derived);

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
