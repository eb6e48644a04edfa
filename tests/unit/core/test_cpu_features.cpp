// CPU feature detection from /proc/cpuinfo's flags line: AMX only with both its tile and bf16 flags, whole words
// only, the first flags line alone.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "em/core/cpu_features.hpp"

namespace {
// Abridged real lines: a 4th-gen Xeon (Sapphire Rapids, AMX) and an AMD EPYC (Zen 4: AVX-512-BF16, no AMX).
const char* kSapphireRapids =
    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\n"
    "flags\t\t: fpu vme de pse tsc msr avx512f avx512dq avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8 "
    "arch_capabilities\nvmx flags\t: vnmi preemption_timer\nbugs\t\t: spectre_v1\n";
const char* kEpyc =
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n"
    "flags\t\t: fpu vme de pse tsc msr avx512f avx512dq avx512_bf16 avx512_vnni vpclmulqdq\n";
}  // namespace

TEST_CASE("cpuinfo flags: a Sapphire Rapids line has AMX tiles, AMX-BF16 and AVX-512-BF16", "[core][cpu_features]") {
  const em::CpuFeatures f = em::cpu_features_from_cpuinfo(kSapphireRapids);
  CHECK(f.amx_tile);
  CHECK(f.amx_bf16);
  CHECK(f.avx512_bf16);
  CHECK(f.amx());
}

TEST_CASE("cpuinfo flags: an AMD EPYC line has AVX-512-BF16 and no AMX", "[core][cpu_features]") {
  const em::CpuFeatures f = em::cpu_features_from_cpuinfo(kEpyc);
  CHECK(f.avx512_bf16);
  CHECK_FALSE(f.amx_tile);
  CHECK_FALSE(f.amx_bf16);
  CHECK_FALSE(f.amx());
}

TEST_CASE("cpuinfo flags: AMX needs both amx_tile and amx_bf16", "[core][cpu_features]") {
  CHECK_FALSE(em::cpu_features_from_cpuinfo("flags : amx_tile amx_int8\n").amx());
  CHECK_FALSE(em::cpu_features_from_cpuinfo("flags : amx_bf16\n").amx());
  CHECK(em::cpu_features_from_cpuinfo("flags: amx_bf16 amx_tile").amx());  // no tab, no final newline
}

TEST_CASE("cpuinfo flags: whole words of the first flags line only", "[core][cpu_features]") {
  // A longer word containing a flag's name is not the flag.
  CHECK_FALSE(em::cpu_features_from_cpuinfo("flags\t: xamx_bf16 amx_tile_x avx512_bf16x\n").amx_bf16);
  CHECK_FALSE(em::cpu_features_from_cpuinfo("flags\t: xamx_bf16 amx_tile_x avx512_bf16x\n").avx512_bf16);
  // "vmx flags" and other lines that merely contain the words are not the flags line.
  CHECK_FALSE(em::cpu_features_from_cpuinfo("vmx flags\t: amx_bf16 amx_tile\nmodel name : amx_bf16 amx_tile\n").amx());
  // Every core repeats the line; the first one is read.
  CHECK_FALSE(em::cpu_features_from_cpuinfo("flags : fpu\nflags : amx_bf16 amx_tile\n").amx());
}

TEST_CASE("cpuinfo flags: text without a flags line (ARM's Features, empty) has no features", "[core][cpu_features]") {
  CHECK_FALSE(em::cpu_features_from_cpuinfo("").amx());
  CHECK_FALSE(em::cpu_features_from_cpuinfo("Features\t: fp asimd bf16 i8mm\n").avx512_bf16);
}

TEST_CASE("this machine's features agree with its /proc/cpuinfo", "[core][cpu_features]") {
  const em::CpuFeatures& host = em::host_cpu_features();
  CHECK(&host == &em::host_cpu_features());  // read once
  if (host.source == "/proc/cpuinfo") {
    // The tests' own reading of the file, by another route: grep-like word search of the first flags line.
    std::FILE* f = std::fopen("/proc/cpuinfo", "r");
    REQUIRE(f);
    std::string text;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    std::fclose(f);
    const auto line_start = text.find("\nflags");
    const auto line = text.substr(line_start + 1, text.find('\n', line_start + 1) - line_start - 1) + " ";
    CHECK(host.amx_bf16 == (line.find(" amx_bf16 ") != std::string::npos));
    CHECK(host.amx_tile == (line.find(" amx_tile ") != std::string::npos));
    CHECK(host.avx512_bf16 == (line.find(" avx512_bf16 ") != std::string::npos));
  }
}
