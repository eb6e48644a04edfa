// Segmentation augmentation: the image and its label map stay aligned through scale, flip and crop; padding is
// ignore (255) in the map; draws depend only on the sample seed and cover the configured ranges.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/sampling.hpp"
#include "em/tensor/loader.hpp"
#include "em/data/segmentation_transforms.hpp"
#include "em/data/transforms.hpp"
#include "segmentation_test_data.hpp"

#include <set>

using em::data::SegmentationAugmentDraw;
using em::data::SegmentationAugmentOptions;
using em::data::SegmentationSample;
using em::test::make_image;

namespace {

constexpr int kClasses = 5;
// A distinct colour per class, far apart in every channel.
uint8_t colour(int cls, int channel) { return static_cast<uint8_t>(20 + 50 * ((cls + channel) % kClasses)); }

// An image of rectangular blocks (uneven sizes, >= 11 pixels) whose label map is derived from it: the class of a pixel
// is the class whose colour it has. The block pattern is asymmetric, so a flip of one but not the other shows.
SegmentationSample blocks(int width, int height) {
  auto cls = [](int y, int x) {
    const int bx = x < 12 ? 0 : x < 27 ? 1 : x < 39 ? 2 : 3 + (x - 39) / 14;
    const int by = y < 11 ? 0 : y < 25 ? 1 : 2 + (y - 25) / 12;
    return (bx * 3 + by * 2) % kClasses;
  };
  SegmentationSample s;
  s.image = make_image(width, height, 3, [&](int y, int x, int c) { return colour(cls(y, x), c); });
  s.label_map = make_image(width, height, 1, [&](int y, int x, int) { return static_cast<uint8_t>(cls(y, x)); });
  return s;
}

struct AlignmentCheck {
  int64_t checked = 0, mismatched = 0, padded = 0, bad_padding = 0;
};

// Every pixel whose 3x3 neighbourhood in the map holds one class must show that class's colour (within 1 for
// fixed-point rounding); map pixels of 255 must be the padding colour. Exact for any downscale and for upscales up to
// 2x: PIL's bilinear filter then reads only source pixels between those the neighbours' nearest samples hit.
AlignmentCheck check_alignment(const SegmentationSample& out) {
  AlignmentCheck r;
  const auto& map = out.label_map;
  for (int y = 0; y < map.height; ++y)
    for (int x = 0; x < map.width; ++x) {
      const int v = map.at(y, x, 0);
      if (v == 255) {
        ++r.padded;
        r.bad_padding += out.image.at(y, x, 0) != 124 || out.image.at(y, x, 1) != 116 || out.image.at(y, x, 2) != 104;
        continue;
      }
      bool uniform = y > 0 && x > 0 && y + 1 < map.height && x + 1 < map.width;
      for (int dy = -1; uniform && dy <= 1; ++dy)
        for (int dx = -1; uniform && dx <= 1; ++dx) uniform = map.at(y + dy, x + dx, 0) == v;
      if (!uniform) continue;
      ++r.checked;
      for (int c = 0; c < 3; ++c)
        if (std::abs(int(out.image.at(y, x, c)) - int(colour(v, c))) > 1) {
          ++r.mismatched;
          break;
        }
    }
  return r;
}

}  // namespace

TEST_CASE("augmentation keeps a label map derived from its image aligned through scale, flip and crop",
          "[data][segmentation][augment]") {
  const SegmentationSample sample = blocks(61, 47);
  SegmentationAugmentOptions options;
  options.crop_size = 32;  // scaled sizes 16..64: from 0.26x to 1.36x of the 61x47 source
  int flips = 0, pads = 0, crops = 0;
  int64_t checked = 0, image_pixels = 0;
  for (int64_t index = 0; index < 60; ++index) {
    const uint64_t seed = em::data::sample_seed(7, 0, index);
    const SegmentationAugmentDraw d = em::data::draw_segmentation_augment(seed, options);
    const SegmentationSample out = em::data::apply_segmentation_augment(sample, d, options);
    INFO("index " << index << " scaled " << d.scaled_width << " crop " << d.crop_x << "," << d.crop_y << " flip "
                  << d.flip);
    REQUIRE(out.image.width == 32);
    REQUIRE(out.image.height == 32);
    REQUIRE(out.label_map.channels == 1);
    const AlignmentCheck r = check_alignment(out);
    CHECK(r.mismatched == 0);
    CHECK(r.bad_padding == 0);
    CHECK(r.checked > 0);
    checked += r.checked;
    image_pixels += 32 * 32 - r.padded;
    flips += d.flip;
    pads += r.padded > 0;
    crops += d.scaled_width > 32;
  }
  // Not vacuous: most image pixels were checked, and the 60 draws exercised flips, padding and crops.
  CHECK(checked > image_pixels / 3);
  CHECK(flips > 10);
  CHECK(pads > 5);
  CHECK(crops > 5);
}

TEST_CASE("the alignment check catches a map shifted by one pixel or flipped without its image",
          "[data][segmentation][augment]") {
  const SegmentationSample sample = blocks(61, 47);
  SegmentationAugmentOptions options;
  options.crop_size = 40;
  SegmentationAugmentDraw d;
  d.scaled_width = d.scaled_height = 56;
  d.crop_x = 7;
  d.crop_y = 5;
  SegmentationSample out = em::data::apply_segmentation_augment(sample, d, options);
  REQUIRE(check_alignment(out).mismatched == 0);
  SegmentationSample shifted = out;
  for (int y = 0; y < 40; ++y)
    for (int x = 39; x > 0; --x) shifted.label_map.at(y, x, 0) = shifted.label_map.at(y, x - 1, 0);
  CHECK(check_alignment(shifted).mismatched > 0);
  SegmentationSample flipped = out;
  flipped.label_map = em::data::horizontal_flip(out.label_map);
  CHECK(check_alignment(flipped).mismatched > 0);
}

TEST_CASE("padding where the scaled image is smaller than the crop is ignore in the map", "[data][segmentation][augment]") {
  const SegmentationSample sample = blocks(40, 40);
  SegmentationAugmentOptions options;
  options.crop_size = 40;
  SegmentationAugmentDraw d;
  d.scaled_width = d.scaled_height = 20;  // scale 0.5, placed at (5, 15) inside the window
  d.crop_x = -5;
  d.crop_y = -15;
  const SegmentationSample out = em::data::apply_segmentation_augment(sample, d, options);
  int64_t ignore = 0;
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 40; ++x) {
      const bool inside = x >= 5 && x < 25 && y >= 15 && y < 35;
      ignore += out.label_map.at(y, x, 0) == 255;
      if (!inside) CHECK(out.label_map.at(y, x, 0) == 255);
    }
  CHECK(ignore == 40 * 40 - 20 * 20);
  // Nearest resampling keeps ids: the top-left map pixel of the placed image is the source's (1, 1) class.
  CHECK(out.label_map.at(15, 5, 0) == sample.label_map.at(1, 1, 0));
}

TEST_CASE("augmentation draws depend only on the sample seed and cover the scale range",
          "[data][segmentation][augment]") {
  SegmentationAugmentOptions options;
  options.crop_size = 64;
  std::set<int> sizes;
  int smaller = 0, larger = 0;
  for (int64_t index = 0; index < 400; ++index) {
    const uint64_t seed = em::data::sample_seed(42, 3, index);
    const auto a = em::data::draw_segmentation_augment(seed, options);
    const auto b = em::data::draw_segmentation_augment(seed, options);
    CHECK((a.scaled_width == b.scaled_width && a.crop_x == b.crop_x && a.crop_y == b.crop_y && a.flip == b.flip));
    CHECK(a.scaled_width == a.scaled_height);
    CHECK(a.scaled_width >= 32);
    CHECK(a.scaled_width <= 128);
    if (a.scaled_width >= 64) {
      CHECK(a.crop_x >= 0);
      CHECK(a.crop_x <= a.scaled_width - 64);
    } else {
      CHECK(a.crop_x <= 0);
      CHECK(a.crop_x >= a.scaled_width - 64);
    }
    sizes.insert(a.scaled_width);
    smaller += a.scaled_width < 48;
    larger += a.scaled_width > 112;
  }
  CHECK(sizes.size() > 60);
  CHECK(smaller > 30);  // about a quarter of the range [32, 128] each
  CHECK(larger > 30);

  // Same (seed, epoch, index) -> same pixels; another epoch -> another crop of the same sample.
  const SegmentationSample sample = blocks(50, 40);
  options.crop_size = 24;
  auto run = [&](int64_t epoch) {
    auto d = em::data::draw_segmentation_augment(em::data::sample_seed(42, epoch, 5), options);
    return em::data::apply_segmentation_augment(sample, d, options);
  };
  CHECK(run(0).image.pixels == run(0).image.pixels);
  CHECK(run(0).label_map.pixels == run(0).label_map.pixels);
  int differing = 0;
  for (int64_t epoch = 1; epoch < 6; ++epoch) differing += run(epoch).label_map.pixels != run(0).label_map.pixels;
  CHECK(differing >= 4);

  options.flip = false;
  for (int64_t index = 0; index < 50; ++index)
    CHECK_FALSE(em::data::draw_segmentation_augment(em::data::sample_seed(1, 0, index), options).flip);
}

TEST_CASE("augmentation refuses a map of another size than its image", "[data][segmentation][augment]") {
  SegmentationSample s = blocks(20, 20);
  s.label_map = make_image(19, 20, 1, [](int, int, int) { return 0; });
  SegmentationAugmentOptions options;
  options.crop_size = 16;
  auto d = em::data::draw_segmentation_augment(1, options);
  CHECK_THROWS_AS(em::data::apply_segmentation_augment(s, d, options), em::Error);
}
