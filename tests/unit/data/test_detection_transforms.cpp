// Detection transforms: HF's resize rule, box-consistent flip/resize/crop (boxes stay on the pixels they cover),
// the DETR recipe's sizes, seeded determinism, padding with a pixel mask.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/sampling.hpp"
#include "em/tensor/detection_tensors.hpp"
#include "em/data/detection_transforms.hpp"
#include "em/tensor/loader.hpp"
#include "em/io/json.hpp"

#include <filesystem>
#include <set>

namespace fs = std::filesystem;
using em::data::BoxTargets;
using em::io::Image;

TEST_CASE("the resize rule equals HF's get_size_with_aspect_ratio", "[data][detection_transforms]") {
  // Golden from scripts/golden/detr_resize_rule.py (HF's function transcribed, run on the same cases).
  auto golden = em::io::read_json_file((fs::path(EM_SOURCE_DIR) / "tests/golden/detr_resize.json").string());
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    const int h = c["height"], w = c["width"];
    auto [oh, ow] = em::data::detr_resize_size(h, w, c["shortest_edge"].get<int64_t>(), c["longest_edge"].get<int64_t>());
    // Where HF rounds an edge to 0 (a 1 x 1000 image) it could not resize at all; we keep one pixel.
    const int want_h = std::max(1, c["out_height"].get<int>()), want_w = std::max(1, c["out_width"].get<int>());
    INFO(h << "x" << w << " shortest " << c["shortest_edge"] << " longest " << c["longest_edge"]);
    CHECK(oh == want_h);
    CHECK(ow == want_w);
    ++checked;
  }
  CHECK(checked == 432);
  // The longest edge DETR pairs with a shortest edge: 1333 at 800 (facebook/detr-resnet-50's processor).
  CHECK(em::data::detr_longest_edge(800) == 1333);
  CHECK(em::data::detr_longest_edge(400) == 667);
  CHECK(em::data::detr_longest_edge(256) == 427);
}

TEST_CASE("the augmentation sizes at image_size 800 are the original DETR recipe's", "[data][detection_transforms]") {
  // datasets/coco.py make_coco_transforms("train"), facebookresearch/detr@29901c5.
  auto s = em::data::DetrAugmentSizes::for_image_size(800);
  CHECK(s.scales == std::vector<int64_t>{480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800});
  CHECK(s.max_size == 1333);
  CHECK(s.crop_resizes == std::vector<int64_t>{400, 500, 600});
  CHECK(s.crop_min == 384);
  CHECK(s.crop_max == 600);
  auto half = em::data::DetrAugmentSizes::for_image_size(400);
  CHECK(half.scales.front() == 240);
  CHECK(half.scales.back() == 400);
  CHECK(half.crop_resizes == std::vector<int64_t>{200, 250, 300});
  CHECK(half.crop_min == 192);
  CHECK(half.max_size == 667);
  CHECK_THROWS_AS(em::data::parse_detection_augmentation("mosaic"), em::UsageError);
}

namespace {

// A 160x120 image with three non-overlapping boxes painted, box k in channel k only (255 inside, 0 elsewhere).
struct Painted {
  Image image;
  BoxTargets targets;
};
Painted painted() {
  Painted p;
  p.image.width = 160;
  p.image.height = 120;
  p.image.channels = 3;
  p.image.pixels.assign(p.image.size(), 0);
  const std::array<std::array<int, 4>, 3> boxes = {{{10, 12, 70, 60}, {90, 20, 150, 110}, {20, 75, 75, 115}}};
  for (int k = 0; k < 3; ++k) {
    const auto& b = boxes[static_cast<size_t>(k)];
    for (int y = b[1]; y < b[3]; ++y)
      for (int x = b[0]; x < b[2]; ++x) p.image.at(y, x, k) = 255;
    p.targets.boxes.push_back({float(b[0]), float(b[1]), float(b[2]), float(b[3])});
    p.targets.labels.push_back(k);
  }
  return p;
}

// The painted region of each remaining box matches its transformed box: pixels `margin` or more inside the box are
// bright in its channel, pixels `margin` or more outside are dark (margin covers the bilinear filter's blur).
// A box the transform dropped has no bright pixel left in its channel.
void check_boxes_cover_paint(const Image& image, const BoxTargets& targets, float margin) {
  std::set<int64_t> present;
  for (size_t i = 0; i < targets.size(); ++i) {
    const int k = static_cast<int>(targets.labels[i]);
    present.insert(k);
    const auto& b = targets.boxes[i];
    int inside = 0, outside = 0, bad_inside = 0, bad_outside = 0;
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < image.width; ++x) {
        const float cx = x + 0.5f, cy = y + 0.5f;
        const bool in = cx > b[0] + margin && cx < b[2] - margin && cy > b[1] + margin && cy < b[3] - margin;
        const bool out = cx < b[0] - margin || cx > b[2] + margin || cy < b[1] - margin || cy > b[3] + margin;
        const int v = image.at(y, x, k);
        if (in) ++inside, bad_inside += v < 200;
        if (out) ++outside, bad_outside += v > 55;
      }
    INFO("box " << k << " [" << b[0] << ", " << b[1] << ", " << b[2] << ", " << b[3] << "] in " << image.width << "x"
                << image.height);
    if (b[2] - b[0] > 2 * margin + 2 && b[3] - b[1] > 2 * margin + 2) CHECK(inside > 0);  // not a crop's sliver
    CHECK(bad_inside == 0);
    CHECK(bad_outside == 0);
  }
  for (int k = 0; k < 3; ++k) {
    if (present.count(k)) continue;
    int bright = 0;
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < image.width; ++x) bright += image.at(y, x, k) > 55;
    INFO("dropped box " << k);
    CHECK(bright == 0);
  }
}

}  // namespace

TEST_CASE("flip, resize and crop keep every box on the pixels it covers", "[data][detection_transforms]") {
  SECTION("horizontal flip") {
    Painted p = painted();
    em::data::hflip(p.image, p.targets);
    CHECK((p.targets.boxes[0] == std::array<float, 4>{90, 12, 150, 60}));
    check_boxes_cover_paint(p.image, p.targets, 0.5f);
  }
  SECTION("resize down and up, unequal factors") {
    for (auto [w, h] : std::vector<std::pair<int, int>>{{97, 61}, {211, 150}, {160, 47}}) {
      Painted p = painted();
      em::data::resize_with_boxes(p.image, p.targets, w, h);
      CHECK(p.image.width == w);
      CHECK(p.image.height == h);
      check_boxes_cover_paint(p.image, p.targets, 2.0f);
    }
  }
  SECTION("crop: boxes shifted, clipped to the crop, dropped when nothing is left (the original crop())") {
    Painted p = painted();
    em::data::crop_with_boxes(p.image, p.targets, 30, 40, 60, 80);  // rows 30..89, columns 40..119
    REQUIRE(p.targets.size() == 3);
    CHECK((p.targets.boxes[0] == std::array<float, 4>{0, 0, 30, 30}));
    CHECK((p.targets.boxes[1] == std::array<float, 4>{50, 0, 80, 60}));
    CHECK((p.targets.boxes[2] == std::array<float, 4>{0, 45, 35, 60}));  // x 20..75, y 75..115: the crop's corner
    check_boxes_cover_paint(p.image, p.targets, 0.5f);
    Painted q = painted();
    em::data::crop_with_boxes(q.image, q.targets, 0, 75, 12, 10);  // a strip touching no box
    check_boxes_cover_paint(q.image, q.targets, 0.5f);
    CHECK(q.targets.size() == 0);
    CHECK_THROWS_AS(em::data::crop_with_boxes(q.image, q.targets, 5, 5, 20, 20), em::Error);
  }
  SECTION("the whole DETR recipe, for many seeds") {
    std::set<std::pair<int, int>> sizes;
    int flipped = 0;
    for (uint64_t seed = 0; seed < 40; ++seed) {
      Painted p = painted();
      em::data::detection_train_transform(p.image, p.targets, em::data::sample_seed(7, 0, seed),
                                          em::data::DetectionAugmentation::detr, 128);
      sizes.insert({p.image.width, p.image.height});
      if (!p.targets.boxes.empty() && p.targets.labels[0] == 0 && p.targets.boxes[0][0] > p.image.width / 2.0f)
        ++flipped;
      INFO("seed " << seed);
      check_boxes_cover_paint(p.image, p.targets, 4.5f);  // two resizes in a row blur more
      CHECK(std::min(p.image.width, p.image.height) <= 128);
      CHECK(std::max(p.image.width, p.image.height) <= em::data::detr_longest_edge(128));
    }
    CHECK(sizes.size() >= 8);  // multi-scale and crops vary the size
    CHECK(flipped > 0);
  }
}

TEST_CASE("augmentation is a function of the seed alone", "[data][detection_transforms]") {
  for (auto kind : {em::data::DetectionAugmentation::detr, em::data::DetectionAugmentation::flip}) {
    for (uint64_t seed : {1u, 2u, 99u}) {
      Painted a = painted(), b = painted();
      em::data::detection_train_transform(a.image, a.targets, seed, kind, 96);
      em::data::detection_train_transform(b.image, b.targets, seed, kind, 96);
      CHECK(a.image.pixels == b.image.pixels);
      CHECK((a.targets.boxes == b.targets.boxes));
      CHECK(a.targets.labels == b.targets.labels);
    }
  }
  // none: the evaluation resize only (shortest edge 96: 160x120 -> 128x96), no randomness at all.
  Painted n = painted();
  em::data::detection_train_transform(n.image, n.targets, 5, em::data::DetectionAugmentation::none, 96);
  CHECK(n.image.width == 128);
  CHECK(n.image.height == 96);
  const auto& b0 = n.targets.boxes[0];
  CHECK(b0[0] == Approx(8));
  CHECK(b0[1] == Approx(9.6));
  CHECK(b0[2] == Approx(56));
  CHECK(b0[3] == Approx(48));
}

TEST_CASE("pad_images pads bottom/right with zeros and masks the padding", "[data][detection_transforms]") {
  torch::Tensor a = torch::arange(18, torch::kFloat32).reshape({3, 2, 3}) + 1;
  torch::Tensor b = torch::arange(12, torch::kFloat32).reshape({3, 4, 1}) + 100;
  auto batch = em::tensor::pad_images({a, b});
  REQUIRE(batch.pixel_values.sizes() == torch::IntArrayRef({2, 3, 4, 3}));
  REQUIRE(batch.pixel_mask.sizes() == torch::IntArrayRef({2, 4, 3}));
  CHECK(batch.pixel_mask.scalar_type() == torch::kInt64);
  CHECK(torch::equal(batch.pixel_values[0].slice(1, 0, 2), a));
  CHECK(torch::equal(batch.pixel_values[1].slice(2, 0, 1), b));
  CHECK(batch.pixel_values[0].slice(1, 2).abs().sum().item<float>() == 0);
  CHECK(batch.pixel_values[1].slice(2, 1).abs().sum().item<float>() == 0);
  torch::Tensor mask0 = torch::tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0}, torch::kInt64).reshape({4, 3});
  torch::Tensor mask1 = torch::tensor({1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0}, torch::kInt64).reshape({4, 3});
  CHECK(torch::equal(batch.pixel_mask[0], mask0));
  CHECK(torch::equal(batch.pixel_mask[1], mask1));
  CHECK_THROWS_AS(em::tensor::pad_images({}), em::Error);
}

TEST_CASE("targets are (cx, cy, w, h) relative to the padded frame", "[data][detection_transforms]") {
  BoxTargets t;
  t.boxes = {{10, 20, 30, 60}, {0, 0, 100, 50}};
  t.labels = {0, 1};
  torch::Tensor n = em::tensor::normalized_cxcywh(t, 100, 80);
  torch::Tensor want = torch::tensor({0.2f, 0.5f, 0.2f, 0.5f, 0.5f, 0.3125f, 1.0f, 0.625f}).reshape({2, 4});
  CHECK(torch::allclose(n, want, 0, 1e-7));
  CHECK(em::tensor::normalized_cxcywh(BoxTargets{}, 10, 10).sizes() == torch::IntArrayRef({0, 4}));
}
