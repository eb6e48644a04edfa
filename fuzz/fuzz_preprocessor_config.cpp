// libFuzzer target: a model folder's preprocessor_config.json, read by both readers the loaders use
// (PreprocessorConfig: classification and segmentation; DetrImageProcessorConfig: detection), each from_json +
// validate. An accepted config must survive its own round trip (to_json, printed, parsed and read again gives an
// equal config), write back every field it took as the file said it, and resize any image to a bounded size. The
// readers include no LibTorch header, so this target compiles them beside em_base (fuzz/CMakeLists.txt).
#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "fuzz_support.hpp"
#include "em/models/preprocessor_config.hpp"

namespace {

using em::io::Json;
using em::models::DetrImageProcessorConfig;
using em::models::PreprocessorConfig;

// Every member of each config, for the round trip's equality (a member added to a config belongs here too).
auto common_members(const PreprocessorConfig& c) {
  return std::tie(c.do_resize, c.height, c.width, c.resample, c.do_rescale, c.rescale_factor, c.do_normalize,
                  c.image_mean, c.image_std, c.image_processor_type);
}
auto members(const PreprocessorConfig& c) { return std::tuple_cat(common_members(c), std::tie(c.extra)); }
// Not common.extra: DETR's to_json adds "format" and "do_convert_annotations" when absent, which a read-back keeps
// in extra, by design (same file, one more member); the round trip's to_json equality covers what extra writes.
auto members(const DetrImageProcessorConfig& c) {
  return std::tuple_cat(common_members(c.common),
                        std::tie(c.shortest_edge, c.longest_edge, c.height, c.width, c.do_pad));
}

// Members a reader derives or normalises on purpose: "size" (an integer, {"shortest_edge"}, DETR's "max_size" form),
// a single mean/std (a number or a list of one) for every channel, and DETR's do_pad where pad_and_return_pixel_mask
// (HF's older name) overrides it. The round trip checks them.
std::vector<std::string> derived(const Json& input) {
  std::vector<std::string> names{"size"};
  for (const char* key : {"image_mean", "image_std"})
    if (auto it = input.find(key); it != input.end() && !(it->is_array() && it->size() > 1)) names.push_back(key);
  if (input.contains("pad_and_return_pixel_mask")) names.push_back("do_pad");
  return names;
}

// The largest sizes an accepted config resizes to (preprocessor_config.cpp's bounds: a side of 8192, DETR's longest
// edge detr_longest_edge(8192)), unless it keeps an image's own size.
constexpr int64_t kMaxSide = 8192;
constexpr int64_t kMaxResizedSide = 13650;

void check_bounded(const PreprocessorConfig& c) {
  EM_FUZZ_CHECK(c.height >= 1 && c.width >= 1 && c.height <= kMaxSide && c.width <= kMaxSide);
}
void check_bounded(const DetrImageProcessorConfig& c) {
  check_bounded(c.common);
  if (!c.common.do_resize || (c.height == 0 && c.longest_edge == 0)) return;  // no limit asked for
  for (auto [h, w] : {std::pair<int, int>{1, 1}, {1, 20000}, {20000, 1}, {13000, 13000}, {480, 640}}) {
    const auto [oh, ow] = c.output_size(h, w);
    EM_FUZZ_CHECK(oh >= 1 && ow >= 1 && std::max(oh, ow) <= std::max<int64_t>({h, w, kMaxResizedSide}));
  }
}

template <typename Config>
void read_family(const Json& input) {
  std::optional<Config> config;
  em::fuzz::expect_clean([&] {
    Config c = Config::from_json(input, "preprocessor_config.json");
    c.validate("preprocessor_config.json");
    config = std::move(c);
  });
  if (!config) return;
  check_bounded(*config);
  const Json written = config->to_json();
  em::fuzz::check_written_as_read(input, written, derived(input));
  em::fuzz::expect_accepted("a preprocessor config's own to_json", [&] {
    const Json reread = em::io::parse_json(em::io::dump_json(written), "round trip");
    const Config again = Config::from_json(reread, "round trip");
    EM_FUZZ_CHECK(members(again) == members(*config));
    EM_FUZZ_CHECK(again.to_json() == written);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = (em::fuzz::quiet_logs(), true);  // "size" {"shortest_edge"} and resample warnings
  (void)quiet;
  std::optional<Json> input;
  const std::string text(em::fuzz::bytes_of(data, size));
  em::fuzz::expect_clean([&] { input = em::io::parse_json(text, "preprocessor_config.json"); });
  if (!input) return 0;
  read_family<PreprocessorConfig>(*input);
  read_family<DetrImageProcessorConfig>(*input);
  return 0;
}
