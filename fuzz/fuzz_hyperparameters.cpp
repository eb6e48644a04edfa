// libFuzzer target: train/hyperparameters' --hyperparameters file reader (a JSON object of name: value, each checked
// for name, type and range), for every algorithm, then the cross-parameter checks. hyperparameters.cpp includes no
// LibTorch header, so this target compiles it alone beside em_base (fuzz/CMakeLists.txt).
#include "fuzz_support.hpp"
#include "em/train/hyperparameters.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    em::fuzz::quiet_logs();
    return em::fuzz::scratch_dir() + "/hyperparameters.json";
  }();
  const std::string_view text = em::fuzz::bytes_of(data, size);
  em::fuzz::write_bytes(path, text);
  for (em::Algo algo : {em::Algo::classification, em::Algo::segmentation, em::Algo::detection}) {
    em::fuzz::expect_clean([&] {
      em::train::Hyperparameters h = em::train::Hyperparameters::defaults(algo);
      h.apply_file(path);
      h.validate();
      h.to_json();
    });
  }
  return 0;
}
