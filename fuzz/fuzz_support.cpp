#include "fuzz_support.hpp"

#include <cstdint>
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

bool same_json(const em::io::Json& a, const em::io::Json& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_number_integer() && b.is_number_integer()) {  // signed or unsigned
      auto past_int64 = [](const em::io::Json& v) {
        return v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX);
      };
      if (past_int64(a) || past_int64(b))
        return past_int64(a) && past_int64(b) && a.get<uint64_t>() == b.get<uint64_t>();
      return a.get<int64_t>() == b.get<int64_t>();
    }
    return a.get<double>() == b.get<double>();
  }
  if (a.type() != b.type()) return false;
  if (a.is_array() || a.is_object()) {
    if (a.size() != b.size()) return false;
    if (a.is_array()) {
      for (size_t i = 0; i < a.size(); ++i)
        if (!same_json(a[i], b[i])) return false;
      return true;
    }
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !same_json(it.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

void check_written_as_read(const em::io::Json& input, const em::io::Json& written,
                           const std::vector<std::string>& derived) {
  for (auto it = written.begin(); it != written.end(); ++it) {
    bool skip = false;
    for (const std::string& name : derived) skip = skip || it.key() == name;
    auto given = input.find(it.key());
    if (skip || given == input.end() || same_json(*given, it.value())) continue;
    std::fprintf(stderr, "EM_FUZZ: field \"%s\" read as %s, written back as %s\n", it.key().c_str(),
                 em::io::dump_json(*given).c_str(), em::io::dump_json(it.value()).c_str());
    std::abort();
  }
}

}  // namespace em::fuzz
