// libFuzzer target: data/segmentation_dataset's id2label.json reader ({"0": "sky", ...}), the class list of
// segmentation training, em-eval, em-metrics and em-validate.
#include "fuzz_support.hpp"
#include "em/data/segmentation_dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    em::fuzz::quiet_logs();  // "label id N has no name" for every id of a sparse file
    return em::fuzz::scratch_dir() + "/id2label.json";
  }();
  const std::string_view text = em::fuzz::bytes_of(data, size);
  em::fuzz::write_bytes(path, text);
  em::fuzz::expect_clean([&] {
    const std::vector<std::string> labels = em::data::read_id2label(path);
    EM_FUZZ_CHECK(!labels.empty() && labels.size() <= 65536);
  });
  return 0;
}
