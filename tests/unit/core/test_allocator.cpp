// core/allocator: glibc's settings for the tools that run many forward passes, and the environment's last word.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "em/core/allocator.hpp"

TEST_CASE("keep_freed_memory sets glibc's thresholds unless a MALLOC_*_ variable is set", "[core][allocator]") {
#if defined(__GLIBC__)
  const char* saved = std::getenv("MALLOC_TOP_PAD_");
  const std::string value = saved ? saved : "";
  setenv("MALLOC_TOP_PAD_", "131072", 1);
  CHECK_FALSE(em::core::keep_freed_memory());  // the user's setting rules
  unsetenv("MALLOC_TOP_PAD_");
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") ||
      std::getenv("MALLOC_MMAP_MAX_") || std::getenv("GLIBC_TUNABLES")) {
    CHECK_FALSE(em::core::keep_freed_memory());
  } else {
    CHECK(em::core::keep_freed_memory());  // mallopt accepted every value (32 MiB is glibc's largest threshold)
  }
  if (saved) setenv("MALLOC_TOP_PAD_", value.c_str(), 1);
#else
  CHECK_FALSE(em::core::keep_freed_memory());
#endif
}
