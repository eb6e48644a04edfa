// A 64-bit content fingerprint (FNV-1a) for telling identical files apart, e.g. em-validate's duplicate images. Not
// for security: anyone can make two files with the same value.
#pragma once
#include <cstdint>
#include <string_view>

namespace em {

constexpr uint64_t fnv1a_64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;  // the FNV offset basis and prime of the 64-bit variant
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace em
