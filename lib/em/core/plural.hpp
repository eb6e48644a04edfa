// Counts in messages: "1 step", "3 steps", "1 forward pass", "2 forward passes".
#pragma once
#include <cstdint>
#include <string>

namespace em {

// "N noun" with the noun singular for 1 and `plural` (default: noun + "s") otherwise.
inline std::string count_of(int64_t n, const std::string& noun, const std::string& plural = "") {
  return std::to_string(n) + " " + (n == 1 ? noun : plural.empty() ? noun + "s" : plural);
}

}  // namespace em
