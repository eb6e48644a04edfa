// libFuzzer target: io/base64's strict decoder on arbitrary text, and both directions round-tripping.
#include "fuzz_support.hpp"
#include "em/io/base64.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes = em::fuzz::bytes_of(data, size);
  // Any bytes encode, and decode back to themselves.
  EM_FUZZ_CHECK(em::io::base64_decode(em::io::base64_encode(bytes)) == bytes);
  em::fuzz::expect_clean([&] {
    const std::string decoded = em::io::base64_decode(bytes, "fuzz");
    // Accepted text is the canonical encoding up to whitespace: re-encoding and decoding gives the same bytes.
    EM_FUZZ_CHECK(em::io::base64_decode(em::io::base64_encode(decoded)) == decoded);
    EM_FUZZ_CHECK(decoded.size() <= size / 4 * 3);
  });
  return 0;
}
