// libFuzzer target: io/request's parser of inference request bodies ({"instances": [{"data": BASE64}]}), what
// em-serve reads from the network and em-predict from stdin.
#include "fuzz_support.hpp"
#include "em/io/request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(em::fuzz::bytes_of(data, size));
  em::fuzz::expect_clean([&] {
    const std::vector<std::string> instances = em::io::decode_request(body);
    EM_FUZZ_CHECK(!instances.empty());
  });
  return 0;
}
