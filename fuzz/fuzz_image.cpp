// libFuzzer target: io/image's decode entry (format sniffing, header checks, stb's decoders) on arbitrary bytes, as
// em-predict and em-serve get them from requests and em-validate from dataset files.
#include "fuzz_support.hpp"
#include "em/io/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes = em::fuzz::bytes_of(data, size);
  em::fuzz::expect_clean([&] {
    const em::io::ImageInfo info = em::io::image_info(bytes, "fuzz");
    // The channel count asked for varies with the input, so every conversion path is reached without a selector
    // byte that would spoil the magic numbers.
    const int want = static_cast<int>(size % 4) + 1;
    const em::io::Image image = em::io::decode_image(bytes, "fuzz", want);
    EM_FUZZ_CHECK(image.width == info.width && image.height == info.height && image.channels == want);
    EM_FUZZ_CHECK(image.pixels.size() == image.size());
    EM_FUZZ_CHECK(int64_t(image.width) * image.height <= em::io::max_image_pixels());
  });
  return 0;
}
