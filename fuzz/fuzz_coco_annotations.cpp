// libFuzzer target: data/coco_file's reader of COCO annotation files (_annotations.coco.json), by both rule sets:
// the dataset's (training, em-eval, em-validate: problems listed) and pycocotools' (em-metrics' ground truth).
#include "fuzz_support.hpp"
#include "em/data/coco_file.hpp"

#include <set>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = em::fuzz::bytes_of(data, size);
  static const std::string split_dir = em::fuzz::scratch_dir() + "/train";
  em::fuzz::expect_clean([&] {
    const em::data::CocoSplit split = em::data::parse_coco_split(
        std::string(text), split_dir + "/_annotations.coco.json", split_dir, "train", em::data::CocoRules::dataset);
    std::set<int64_t> ids;
    for (const auto& image : split.images) EM_FUZZ_CHECK(ids.insert(image.id).second);  // "ids unique"
  });
  em::fuzz::expect_clean([&] { em::data::parse_coco_ground_truth(text, "fuzz.json"); });
  return 0;
}
