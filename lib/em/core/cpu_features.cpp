#include "em/core/cpu_features.hpp"

#include <fstream>
#include <sstream>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define EM_HAVE_CPUID 1
#else
#define EM_HAVE_CPUID 0
#endif

namespace em {
namespace {

bool starts_with_word(std::string_view line, std::string_view word) {
  if (line.substr(0, word.size()) != word) return false;
  const std::string_view rest = line.substr(word.size());
  const auto colon = rest.find(':');
  return colon != std::string_view::npos && rest.substr(0, colon).find_first_not_of(" \t") == std::string_view::npos;
}

#if EM_HAVE_CPUID
// cpuid leaf 7: AMX-BF16 = EDX bit 22, AMX-TILE = EDX bit 24 (subleaf 0); AVX512_BF16 = EAX bit 5 (subleaf 1).
// The tiles are usable only when the OS saves their state: XCR0 bits 17 and 18 (XTILECFG, XTILEDATA).
CpuFeatures cpuid_features() {
  CpuFeatures f;
  f.source = "cpuid";
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const bool amx_tile = (d >> 24) & 1, amx_bf16 = (d >> 22) & 1;
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512_bf16 = (a1 >> 5) & 1;
  unsigned a0 = 0, b0 = 0, c0 = 0, d0 = 0;
  const bool osxsave = __get_cpuid(1, &a0, &b0, &c0, &d0) && ((c0 >> 27) & 1);
  if (osxsave && amx_tile) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const bool os_saves_tiles = ((lo >> 17) & 3) == 3;
    f.amx_tile = os_saves_tiles;
    f.amx_bf16 = os_saves_tiles && amx_bf16;
  }
  return f;
}
#endif

CpuFeatures read_host_features() {
  std::ifstream in("/proc/cpuinfo");
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    CpuFeatures f = cpu_features_from_cpuinfo(text.str());
    f.source = "/proc/cpuinfo";
    if (text.str().find("flags") != std::string::npos) return f;
  }
#if EM_HAVE_CPUID
  return cpuid_features();
#else
  CpuFeatures none;
  none.source = "unknown";
  return none;
#endif
}

}  // namespace

CpuFeatures cpu_features_from_cpuinfo(std::string_view cpuinfo) {
  CpuFeatures f;
  f.source = "cpuinfo text";
  size_t pos = 0;
  while (pos < cpuinfo.size()) {
    size_t end = cpuinfo.find('\n', pos);
    if (end == std::string_view::npos) end = cpuinfo.size();
    const std::string_view line = cpuinfo.substr(pos, end - pos);
    pos = end + 1;
    if (!starts_with_word(line, "flags")) continue;
    std::istringstream words(std::string(line.substr(line.find(':') + 1)));
    for (std::string w; words >> w;) {
      if (w == "amx_tile") f.amx_tile = true;
      if (w == "amx_bf16") f.amx_bf16 = true;
      if (w == "avx512_bf16") f.avx512_bf16 = true;
    }
    break;  // every core lists the same flags
  }
  return f;
}

const CpuFeatures& host_cpu_features() {
  static const CpuFeatures features = read_host_features();
  return features;
}

}  // namespace em
