// fnv1a_64 is the published 64-bit FNV-1a: its reference test vectors, at compile time and at run time.
#include <catch2/catch.hpp>

#include <string>

#include "em/core/hash.hpp"

static_assert(em::fnv1a_64("") == 0xcbf29ce484222325ULL, "FNV-1a 64 of nothing is the offset basis");
static_assert(em::fnv1a_64("a") == 0xaf63dc4c8601ec8cULL, "FNV-1a 64 test vector \"a\"");
static_assert(em::fnv1a_64("foobar") == 0x85944171f73967e8ULL, "FNV-1a 64 test vector \"foobar\"");

TEST_CASE("fnv1a_64 gives the reference values and tells files one byte apart", "[core][hash]") {
  std::string bytes(1 << 16, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  const uint64_t h = em::fnv1a_64(bytes);
  bytes[12345] ^= 1;
  CHECK(em::fnv1a_64(bytes) != h);
  CHECK(em::fnv1a_64(std::string("foobar")) == 0x85944171f73967e8ULL);
}
