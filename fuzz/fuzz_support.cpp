#include "fuzz_support.hpp"

#include <filesystem>
#include <fstream>
#include <system_error>

#include <stdlib.h>

namespace em::fuzz {
namespace {

struct Scratch {
  std::string dir;
  Scratch() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/em-fuzz.XXXXXX";
    if (!mkdtemp(pattern.data())) {
      std::perror("em-fuzz: mkdtemp");
      std::abort();
    }
    dir = pattern;
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

}  // namespace

std::string scratch_dir() {
  static Scratch scratch;
  return scratch.dir;
}

void write_bytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "em-fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

std::pair<std::string_view, std::string_view> split_pair(std::string_view input) {
  constexpr std::string_view kSeparator = "\n#####\n";
  const size_t at = input.find(kSeparator);
  if (at == std::string_view::npos) return {input, {}};
  return {input.substr(0, at), input.substr(at + kSeparator.size())};
}

}  // namespace em::fuzz
