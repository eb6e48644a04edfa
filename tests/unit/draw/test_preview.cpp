// em-validate --preview's tiles, pixel by pixel: a box is outlined at its place scaled into the tile (x and y not
// swapped, xmax = x + w), a seg map changes exactly its labelled pixels, and a seg map of another size than its image
// is not stretched over it (a mask offset shows). Whole sheets from real data are checked in
// tests/cli/test_validate_preview.sh.
#include <catch2/catch.hpp>

#include <cmath>

#include "em/core/error.hpp"
#include "em/draw/preview.hpp"

namespace {

using em::draw::Rgb;

constexpr Rgb kBackground{40, 90, 160};

// A width x height image of one colour.
em::io::Image solid(int width, int height, Rgb c = kBackground) {
  em::io::Image img{width, height, 3, {}};
  for (int i = 0; i < width * height; ++i) img.pixels.insert(img.pixels.end(), {c.r, c.g, c.b});
  return img;
}

// A seg map: `label` inside [x0, x1) x [y0, y1), 255 (ignore) elsewhere.
em::io::Image label_rect(int width, int height, int x0, int y0, int x1, int y1, uint8_t label) {
  em::io::Image map{width, height, 1, std::vector<uint8_t>(static_cast<size_t>(width) * height, 255)};
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) map.at(y, x, 0) = label;
  return map;
}

// What Canvas::blend_mask makes of `under` with `over` at weight 0.5.
Rgb half_blend(Rgb under, Rgb over) {
  auto mix = [](int a, int b) { return static_cast<uint8_t>(std::lround(a * 0.5 + b * 0.5)); };
  return {mix(under.r, over.r), mix(under.g, over.g), mix(under.b, over.b)};
}

}  // namespace

TEST_CASE("a box tile outlines exactly the box's edge pixels, scaled with the image", "[draw]") {
  // A 64x48 image in a 256-px cell is scaled by 4: the COCO box [16, 8, 32, 16] is [64, 32) x [128, 96) in the tile.
  em::draw::LabeledBox box{"widget", 3, 16, 8, 16 + 32, 8 + 16, std::nullopt};
  const em::draw::Canvas tile = em::draw::box_tile(solid(64, 48), {box}, 256);
  REQUIRE(tile.width() == 256);
  REQUIRE(tile.height() == 192);
  const Rgb color = em::draw::class_color(3);
  const int x0 = 64, y0 = 32, x1 = 192, y1 = 96, line = 2;  // line width 2 for a tile this size
  // Rows above the box hold its tag; everything from its top edge down is the frame or the untouched image.
  for (int y = y0; y < tile.height(); ++y)
    for (int x = 0; x < tile.width(); ++x) {
      const bool in_box = x >= x0 && x < x1 && y >= y0 && y < y1;
      const bool in_frame = in_box && (x < x0 + line || x >= x1 - line || y < y0 + line || y >= y1 - line);
      const Rgb want = in_frame ? color : kBackground;
      if (tile.pixel(x, y) != want) {
        FAIL_CHECK("pixel (" << x << ", " << y << ") is not the " << (in_frame ? "box colour" : "image colour"));
        return;
      }
    }
  // The tag sits on the box's top-left corner, just above it.
  CHECK(tile.pixel(x0 + 1, y0 - 1) == color);
}

TEST_CASE("a label map tile blends exactly the labelled pixels, scaled with the image", "[draw]") {
  const em::io::Image image = solid(64, 48);
  const em::draw::Canvas plain = em::draw::label_map_tile(image, label_rect(64, 48, 0, 0, 0, 0, 0), 256);
  const em::draw::Canvas tile = em::draw::label_map_tile(image, label_rect(64, 48, 16, 8, 48, 24, 2), 256);
  REQUIRE(tile.width() == 256);
  REQUIRE(tile.height() == 192);
  const Rgb blended = half_blend(kBackground, em::draw::class_color(2));
  int changed = 0;
  for (int y = 0; y < tile.height(); ++y)
    for (int x = 0; x < tile.width(); ++x) {
      if (plain.pixel(x, y) != kBackground) {  // an all-ignore map leaves the image as it is
        FAIL_CHECK("pixel (" << x << ", " << y << ") changed under an all-ignore map");
        return;
      }
      const bool masked = x >= 64 && x < 192 && y >= 32 && y < 96;
      if (tile.pixel(x, y) != (masked ? blended : kBackground)) {
        FAIL_CHECK("pixel (" << x << ", " << y << ") " << (masked ? "is not blended" : "changed"));
        return;
      }
      changed += masked;
    }
  CHECK(changed == 128 * 64);
}

TEST_CASE("a seg map smaller than its image is drawn from the top-left corner, not stretched", "[draw]") {
  // A 32x24 map of class 0 on a 64x48 image covers the tile's top-left quarter only.
  const em::draw::Canvas tile = em::draw::label_map_tile(solid(64, 48), label_rect(32, 24, 0, 0, 32, 24, 0), 256);
  const Rgb blended = half_blend(kBackground, em::draw::class_color(0));
  CHECK(tile.pixel(0, 0) == blended);
  CHECK(tile.pixel(127, 95) == blended);
  CHECK(tile.pixel(128, 95) == kBackground);
  CHECK(tile.pixel(127, 96) == kBackground);
  CHECK(tile.pixel(255, 191) == kBackground);
}

TEST_CASE("a small image is enlarged to the cell, a large one shrunk, aspect kept", "[draw]") {
  CHECK(em::draw::box_tile(solid(28, 28), {}, 256).width() == 256);
  const em::draw::Canvas wide = em::draw::box_tile(solid(1000, 10), {}, 100);
  CHECK((wide.width() == 100 && wide.height() == 1));
  const em::draw::Canvas tall = em::draw::box_tile(solid(1, 1), {}, 64);
  CHECK((tall.width() == 64 && tall.height() == 64));
}

TEST_CASE("preview options: '-' and out-of-range counts are usage errors", "[draw]") {
  em::draw::PreviewOptions o;
  o.out_dir = "out";
  CHECK_NOTHROW(o.validate());
  o.out_dir = "-";
  CHECK_THROWS_AS(o.validate(), em::UsageError);
  o.out_dir = "out";
  o.images_per_sheet = 0;
  CHECK_THROWS_AS(o.validate(), em::UsageError);
}
