// libFuzzer target: io/safetensors' header parser (8-byte length, JSON header, dtypes, shapes, data offsets) on a
// whole file's bytes, as model folders downloaded from anywhere give them; then what it promises about an accepted
// header: every tensor's byte range inside the file, ranges in order without overlap or hole, shape x dtype size ==
// range length without overflow.
#include "fuzz_support.hpp"
#include "em/io/safetensors.hpp"

#include <algorithm>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  em::fuzz::expect_clean([&] {
    const em::io::SafetensorsHeader h =
        em::io::parse_safetensors_header(reinterpret_cast<const char*>(data), size, "fuzz.safetensors");
    EM_FUZZ_CHECK(h.data_start >= 8 && h.data_start <= size);
    const uint64_t buffer = size - h.data_start;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const em::io::SafetensorsEntry& e : h.entries) {
      EM_FUZZ_CHECK(e.begin <= e.end && e.end <= buffer);
      EM_FUZZ_CHECK(e.element_size > 0 && e.element_size == em::io::safetensors_element_size(e.dtype));
      for (int64_t d : e.shape) EM_FUZZ_CHECK(d >= 0);
      unsigned __int128 bytes = std::count(e.shape.begin(), e.shape.end(), 0) ? 0 : e.element_size;
      for (int64_t d : e.shape) {
        bytes *= static_cast<uint64_t>(d);
        if (bytes > buffer) break;  // cannot match a range inside the buffer: the check below reports it
      }
      EM_FUZZ_CHECK(bytes == e.end - e.begin);
      ranges.emplace_back(e.begin, e.end);
    }
    std::sort(ranges.begin(), ranges.end());
    uint64_t at = 0;
    for (const auto& [begin, end] : ranges) {
      EM_FUZZ_CHECK(begin == at);  // no overlap, no hole
      at = end;
    }
    EM_FUZZ_CHECK(at == buffer);  // no trailing bytes
  });
  return 0;
}
