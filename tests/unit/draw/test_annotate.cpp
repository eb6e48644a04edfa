// Annotations on pixels: box outlines in their class colour with tags that stay on the canvas, label-map overlays,
// score panels, every algorithm's response drawn (and a malformed one refused), from 1x1 to 10000-px images.
#include <catch2/catch.hpp>

#include "draw_test_support.hpp"
#include "em/core/error.hpp"
#include "em/draw/annotate.hpp"
#include "em/io/base64.hpp"

using em::draw::Canvas;
using em::draw::LabeledBox;
using em::draw::Rgb;
using em::draw::kWhite;

namespace {

// Tag text: the pixels that are neither the background nor the box's colour (tag bands are filled in the box's
// colour, outlines are drawn in it, on integer pixels).
em::test::Ink tag_ink(const Canvas& c, Rgb box_color) {
  return em::test::ink_of(c, [&](Rgb p) { return p != kWhite && p != box_color; });
}

// A single-channel mask PNG in base64, as the segmentation response carries it: 255 where `on(x, y)`.
std::string mask_b64(int w, int h, const std::function<bool(int, int)>& on) {
  em::io::Image mask{w, h, 1, std::vector<uint8_t>(static_cast<size_t>(w) * h)};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) mask.at(y, x, 0) = on(x, y) ? 255 : 0;
  return em::io::base64_encode(em::io::encode_png(mask));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const em::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("draw_boxes: outlines in the class colour, tags whole and on the canvas at its edges", "[draw][annotate]") {
  const Rgb color = em::draw::class_color(2);
  const std::string label = "a long label name";
  const Canvas probe(1, 1);
  const double tag_width = probe.measure(label + " 0.93", 12).width;

  SECTION("a box at the top edge: the tag goes inside it") {
    Canvas c(300, 200, kWhite);
    em::draw::draw_boxes(c, {{label, 2, 20, 0, 250, 80, 0.93}});
    const auto ink = tag_ink(c, color);
    CHECK(ink.count > 50);
    CHECK(ink.y0 >= 1);
    CHECK(ink.y1 <= 80);  // inside the box, under its top edge
    CHECK(ink.x1 - ink.x0 >= 0.8 * tag_width);
    CHECK(c.pixel(100, 79) == color);  // bottom edge
    CHECK(c.pixel(249, 40) == color);  // right edge
    CHECK(c.pixel(100, 77) == kWhite);  // inside, away from the tag
  }
  SECTION("a box at the right edge: the tag moves left, whole") {
    Canvas c(300, 200, kWhite);
    em::draw::draw_boxes(c, {{label, 2, 230, 60, 300, 150, 0.93}});
    const auto ink = tag_ink(c, color);
    CHECK(ink.count > 50);
    CHECK(ink.x1 <= 299);
    CHECK(ink.y1 <= 60);  // above the box: there is room there
    CHECK(ink.x1 - ink.x0 >= 0.8 * tag_width);
    CHECK(c.pixel(299, 100) == color);
    CHECK(c.pixel(260, 149) == color);
  }
  SECTION("a box larger than the canvas: clamped, its tag inside the canvas") {
    Canvas c(300, 200, kWhite);
    em::draw::draw_boxes(c, {{label, 2, -50, -40, 400, 320, 0.93}});
    const auto ink = tag_ink(c, color);
    CHECK(ink.count > 50);
    CHECK(ink.x0 >= 1);
    CHECK(ink.y0 >= 1);
    CHECK(ink.x1 - ink.x0 >= 0.8 * tag_width);
    CHECK(c.pixel(0, 100) == color);
    CHECK(c.pixel(150, 199) == color);
    CHECK(c.pixel(299, 100) == color);
  }
  SECTION("a tag longer than the canvas is cut to it; empty boxes are skipped") {
    Canvas c(60, 40, kWhite);
    em::draw::draw_boxes(c, {{label, 2, 5, 20, 50, 38, 0.93}, {"empty", 3, 10, 10, 10, 30, std::nullopt}});
    const auto ink = tag_ink(c, color);
    CHECK(ink.count > 10);
    CHECK(ink.x1 <= 59);
    CHECK(em::test::ink_of(c, [](Rgb p) { return p == em::draw::class_color(3); }).count == 0);
  }
}

TEST_CASE("draw_label_map blends exactly the labelled pixels and names the classes present", "[draw][annotate]") {
  const em::io::Image image = em::test::solid_image(120, 90, Rgb{100, 100, 100});
  em::draw::LabelMap map{120, 90, std::vector<int64_t>(120 * 90, 255)};
  for (int y = 45; y < 90; ++y)
    for (int x = 0; x < 60; ++x) map.labels[static_cast<size_t>(y) * 120 + x] = 1;  // bottom-left quarter: class 1
  Canvas plain(image), legend(image);
  em::draw::draw_label_map(plain, map, {"sky", "road"}, 255, 0.5, false);
  const Rgb road = em::draw::class_color(1);
  auto half = [](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a * 0.5 + b * 0.5)); };
  const Rgb blended{half(100, road.r), half(100, road.g), half(100, road.b)};
  CHECK(em::test::ink_of(plain, [&](Rgb p) { return p == blended; }).count == 60 * 45);
  CHECK(em::test::ink_of(plain, [&](Rgb p) { return p == Rgb{100, 100, 100}; }).count == 120 * 90 - 60 * 45);

  em::draw::draw_label_map(legend, map, {"sky", "road"});
  const auto box = em::test::ink_of(legend, [&](Rgb p) { return p == road; });  // the legend's swatch
  CHECK(box.count > 0);
  CHECK(box.y1 < 45);  // top-left corner, over the unlabelled part
  CHECK(legend.pixel(100, 80) == Rgb{100, 100, 100});
  CHECK(legend.pixel(30, 80) == blended);
  CHECK_THROWS_AS(em::draw::draw_label_map(legend, {10, 10, std::vector<int64_t>(100)}, {}), em::Error);
}

TEST_CASE("a 1x1 and a 10000x20 image: every drawing works and gives sane sizes", "[draw][annotate]") {
  for (auto [w, h] : {std::pair{1, 1}, std::pair{10000, 20}}) {
    INFO(w << "x" << h);
    const em::io::Image image = em::test::gradient_image(w, h);
    Canvas c(image);
    CHECK(c.width() == w);
    CHECK(c.height() == h);
    em::draw::draw_boxes(c, {{"person", 0, 0, 0, double(w), double(h), 0.5}, {"dog", 1, w / 2.0, 0, w / 2.0 + 1, 1, {}}});
    em::draw::LabelMap map{w, h, std::vector<int64_t>(static_cast<size_t>(w) * h, 3)};
    em::draw::draw_label_map(c, map, {"a", "b"});
    CHECK(c.width() == w);

    const Canvas scores = em::draw::draw_scores(image, {{"cat", 0.9}, {"dog", 0.05}, {"bird", 0.01}});
    CHECK(scores.width() > 0);
    CHECK(scores.width() <= 512 + 600);  // the image at most 512 px wide, plus the panel
    CHECK(scores.height() <= 512);
    CHECK(scores.height() >= 3 * 20);  // room for three bars

    const em::io::Json classification = {{{"score", 0.9}, {"label", "cat"}}};
    const em::io::Json detection = {{{"score", 0.8}, {"label", "cat"}, {"box", {{"xmin", 0}, {"ymin", 0}, {"xmax", w}, {"ymax", h}}}}};
    const em::io::Json segmentation = {{{"score", nullptr}, {"label", "cat"}, {"mask", mask_b64(w, h, [](int x, int) { return x % 2 == 0; })}}};
    const Canvas a = em::draw::draw_prediction(image, em::Algo::classification, classification, {"cat"});
    const Canvas b = em::draw::draw_prediction(image, em::Algo::detection, detection, {"cat"});
    const Canvas s = em::draw::draw_prediction(image, em::Algo::segmentation, segmentation, {"cat"});
    CHECK(a.height() <= 512);
    CHECK(b.width() == w);
    CHECK(b.height() == h);
    CHECK(s.width() == w);
    CHECK(s.height() == h);
  }
}

TEST_CASE("draw_scores scales a large image down to 512 px and enlarges a thumbnail", "[draw][annotate]") {
  const Rgb green{0, 160, 0};
  const Canvas big = em::draw::draw_scores(em::test::solid_image(2048, 1024, green), {{"a", 0.5}});
  // The picture's extent: the green pixels.
  const auto picture = em::test::ink_of(big, [&](Rgb p) { return em::test::near(p, green, 2); });
  CHECK(picture.x0 == 0);
  CHECK(picture.x1 == 512);
  CHECK(picture.y1 == 256);
  const Canvas small = em::draw::draw_scores(em::test::solid_image(28, 28, green), {{"a", 0.5}});
  const auto thumb = em::test::ink_of(small, [&](Rgb p) { return em::test::near(p, green, 2); });
  CHECK(thumb.x1 == 28 * 9);  // 256 / 28 = 9 whole times
  CHECK(small.height() >= 28 * 9);
  // Bars: the first in class colour 0, as long as its score tells.
  const Canvas bars = em::draw::draw_scores(em::test::solid_image(200, 200, kWhite), {{"cat", 1.0}, {"dog", 0.5}});
  const auto first = em::test::ink_of(bars, [](Rgb p) { return p == em::draw::class_color(0); });
  const auto second = em::test::ink_of(bars, [](Rgb p) { return p == em::draw::class_color(1); });
  CHECK(first.x0 >= 200);
  CHECK(second.x1 - second.x0 == Approx((first.x1 - first.x0) / 2.0).margin(1));
}

TEST_CASE("draw_prediction draws each algorithm's response in the colours of the model's label ids", "[draw][annotate]") {
  const em::io::Image image = em::test::solid_image(64, 48, Rgb{100, 100, 100});
  const std::vector<std::string> labels{"dog", "cat"};

  const em::io::Json boxes = {{{"score", 0.8}, {"label", "cat"}, {"box", {{"xmin", 10}, {"ymin", 20}, {"xmax", 40}, {"ymax", 46}}}},
                              {{"score", 0.7}, {"label", "zebra"}, {"box", {{"xmin", 45}, {"ymin", 30}, {"xmax", 60}, {"ymax", 44}}}}};
  const Canvas detected = em::draw::draw_prediction(image, em::Algo::detection, boxes, labels);
  CHECK(detected.pixel(25, 45) == em::draw::class_color(1));  // "cat" is id 1
  CHECK(detected.pixel(59, 40) == em::draw::class_color(2));  // "zebra" is not a label: the next id

  const em::io::Json segments = {{{"score", nullptr}, {"label", "cat"}, {"mask", mask_b64(64, 48, [](int x, int) { return x < 32; })}}};
  const Canvas segmented = em::draw::draw_prediction(image, em::Algo::segmentation, segments, labels);
  const Rgb cat = em::draw::class_color(1);
  auto half = [](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a * 0.5 + b * 0.5)); };
  CHECK(segmented.pixel(10, 45) == Rgb{half(100, cat.r), half(100, cat.g), half(100, cat.b)});
  CHECK(segmented.pixel(50, 45) == Rgb{100, 100, 100});

  const em::io::Json top = {{{"score", 0.7}, {"label", "cat"}}, {{"score", 0.3}, {"label", "dog"}}};
  const Canvas scored = em::draw::draw_prediction(image, em::Algo::classification, top, labels);
  CHECK(scored.width() > 64 * 4);  // the (enlarged) image and the panel
}

TEST_CASE("draw_prediction refuses a malformed response and names the entry and field", "[draw][annotate]") {
  const em::io::Image image = em::test::solid_image(8, 6, Rgb{0, 0, 0});
  auto draw = [&](em::Algo algo, const em::io::Json& response) {
    return error_of([&] { em::draw::draw_prediction(image, algo, response, {"a"}); });
  };
  using em::io::Json;
  CHECK_THAT(draw(em::Algo::classification, Json::object()), Catch::StartsWith("response: expected the array"));
  CHECK_THAT(draw(em::Algo::classification, Json::array({1})), Catch::StartsWith("response[0]: expected an object"));
  CHECK_THAT(draw(em::Algo::classification, Json::array({{{"label", "a"}}})), Catch::Contains("response[0]: missing field \"score\""));
  CHECK_THAT(draw(em::Algo::classification, Json::array({{{"label", "a"}, {"score", "high"}}})),
             Catch::Contains("response[0].score: expected a number"));
  CHECK_THAT(draw(em::Algo::detection, Json::array({{{"label", 3}, {"score", 0.5}}})),
             Catch::Contains("response[0].label: expected a string"));
  CHECK_THAT(draw(em::Algo::detection, Json::array({{{"label", "a"}, {"score", 0.5}, {"box", {{"xmin", 1}, {"ymin", 1}, {"xmax", 2}}}}})),
             Catch::Contains("response[0].box: expected an object with numbers xmin, ymin, xmax, ymax"));
  CHECK_THAT(draw(em::Algo::segmentation, Json::array({{{"label", "a"}, {"score", nullptr}, {"mask", "not base64!"}}})),
             Catch::Contains("response[0].mask") && Catch::Contains("base64"));
  CHECK_THAT(draw(em::Algo::segmentation, Json::array({{{"label", "a"}, {"score", nullptr}, {"mask", em::io::base64_encode("GIF89a")}}})),
             Catch::Contains("response[0].mask") && Catch::Contains("not an image"));
  CHECK_THAT(draw(em::Algo::segmentation,
                  Json::array({{{"label", "a"}, {"score", nullptr}, {"mask", mask_b64(4, 4, [](int, int) { return true; })}}})),
             Catch::Contains("response[0].mask: 4x4 pixels for a 8x6 image"));
  CHECK(draw(em::Algo::detection, Json::array()).empty());  // nothing found is a valid answer: the image as it is
}

TEST_CASE("with_caption and side_by_side add their bands around the pictures", "[draw][annotate]") {
  Canvas a(100, 50, Rgb{255, 0, 0}), b(50, 25, Rgb{0, 0, 255});
  const Canvas captioned = em::draw::with_caption(a, "Żółw", 14);
  CHECK(captioned.width() == 100);
  CHECK(captioned.height() > 50 + 14);
  CHECK(em::test::ink_of(captioned, [](Rgb p) { return p != kWhite && p != Rgb{255, 0, 0}; }).y0 >= 50);
  const Canvas both = em::draw::side_by_side({&a, &b}, {"truth", "prediction"});
  CHECK(both.height() > 50);
  // b scaled to a's height: both 100 px wide, blue as much as red.
  CHECK(em::test::ink_of(both, [](Rgb p) { return p == Rgb{255, 0, 0}; }).count == 100 * 50);
  CHECK(em::test::ink_of(both, [](Rgb p) { return p == Rgb{0, 0, 255}; }).count == 100 * 50);
  CHECK_THROWS_AS(em::draw::side_by_side({&a}, {"one", "two"}), em::Error);
}
