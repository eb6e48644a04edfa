// What the host CPU offers for lower-precision arithmetic: AMX (tiles and their bf16 multiply) and AVX-512-BF16,
// read from the kernel's /proc/cpuinfo flags (cpuid elsewhere), so the predict tools can choose bf16 where it pays.
#pragma once
#include <string>
#include <string_view>

namespace em {

struct CpuFeatures {
  bool amx_tile = false;     // AMX tile registers (the kernel lists them only when it saves their state)
  bool amx_bf16 = false;     // AMX bf16 tile multiply (TDPBF16PS): oneDNN's fast bf16 convolutions and matmuls
  bool avx512_bf16 = false;  // AVX-512 bf16 dot products (VDPBF16PS)
  std::string source;        // where this was read: "/proc/cpuinfo", "cpuid" or "unknown"

  // bf16 matmuls and convolutions on AMX: both the tiles and their bf16 multiply.
  bool amx() const { return amx_tile && amx_bf16; }
};

// The features named in the first "flags" line of /proc/cpuinfo text (x86 Linux: "flags\t\t: fpu vme ... amx_bf16
// amx_tile"), whole words only. Text without such a line gives no features.
CpuFeatures cpu_features_from_cpuinfo(std::string_view cpuinfo);

// This machine's features, read once: /proc/cpuinfo where it exists (the kernel hides AMX when it does not enable
// it), else cpuid with the OS's XSAVE state (x86-64), else none.
const CpuFeatures& host_cpu_features();

}  // namespace em
