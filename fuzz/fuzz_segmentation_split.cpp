// libFuzzer target: data/segmentation_dataset's reader of a split file (DIR/train/train.json, a list of
// {"image", "seg_map"} paths), as em-validate, em-train and em-eval read it. The split folder holds images/a.png and
// annotations/a.png (empty files) so listed paths can resolve.
#include "fuzz_support.hpp"
#include "em/data/segmentation_dataset.hpp"

#include <filesystem>

namespace {

std::string make_dataset() {
  namespace fs = std::filesystem;
  const std::string dir = em::fuzz::scratch_dir() + "/segmentation";
  fs::create_directories(dir + "/train/images");
  fs::create_directories(dir + "/train/annotations");
  em::fuzz::write_bytes(dir + "/train/images/a.png", "");
  em::fuzz::write_bytes(dir + "/train/annotations/a.png", "");
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = make_dataset();
  const std::string_view text = em::fuzz::bytes_of(data, size);
  em::fuzz::write_bytes(dir + "/train/train.json", text);
  em::fuzz::expect_clean([&] {
    const em::data::SegmentationSplitListing listing = em::data::list_segmentation_split(dir, "train");
    EM_FUZZ_CHECK(listing.exists);
    EM_FUZZ_CHECK(static_cast<int64_t>(listing.entries.size()) <= listing.listed);
    for (const auto& e : listing.entries)
      EM_FUZZ_CHECK(e.image.rfind(dir + "/train/", 0) == 0 && e.seg_map.rfind(dir + "/train/", 0) == 0);
  });
  return 0;
}
