// The canvas on pixels: outlines change exactly their edge pixels, mask blends exactly the masked ones, UTF-8 text
// draws ink and is cut only between code points.
#include <catch2/catch.hpp>

#include "draw_test_support.hpp"
#include "em/core/error.hpp"
#include "em/draw/canvas.hpp"
#include "em/io/file.hpp"

using em::draw::Canvas;
using em::draw::Rgb;
using em::draw::kWhite;

TEST_CASE("rect_outline changes exactly the pixels within line_width inside the rectangle's edge", "[draw][canvas]") {
  const Rgb red{220, 20, 30};
  const int x0 = 5, y0 = 4, x1 = 31, y1 = 25;
  for (int width : {1, 2, 3}) {
    INFO("line width " << width);
    Canvas c(40, 30, kWhite);
    c.rect_outline(x0, y0, x1, y1, red, width);
    int wrong = 0;
    for (int y = 0; y < c.height(); ++y)
      for (int x = 0; x < c.width(); ++x) {
        const bool inside = x >= x0 && x < x1 && y >= y0 && y < y1;
        const int to_edge = std::min({x - x0, x1 - 1 - x, y - y0, y1 - 1 - y});
        const Rgb want = inside && to_edge < width ? red : kWhite;
        if (c.pixel(x, y) != want) ++wrong;
      }
    CHECK(wrong == 0);
  }
}

TEST_CASE("rect_outline clips at the canvas and fills a rectangle thinner than two line widths", "[draw][canvas]") {
  const Rgb blue{10, 40, 200};
  Canvas c(20, 20, kWhite);
  c.rect_outline(-5, -5, 10, 10, blue, 2);  // top and left edges off the canvas: only the right and bottom show
  CHECK(c.pixel(0, 0) == kWhite);
  CHECK(c.pixel(8, 0) == blue);
  CHECK(c.pixel(9, 9) == blue);
  CHECK(c.pixel(7, 7) == kWhite);
  CHECK(c.pixel(10, 10) == kWhite);
  Canvas thin(10, 10, kWhite);
  thin.rect_outline(2, 2, 5, 8, blue, 2);  // 3 px wide: all of it is within 2 px of an edge
  CHECK(em::test::ink_of(thin, [&](Rgb p) { return p == blue; }).count == 3 * 6);
  CHECK(em::test::ink_of(thin, [&](Rgb p) { return p != blue && p != kWhite; }).count == 0);
}

TEST_CASE("blend_mask changes exactly the masked pixels, to the rounded blend", "[draw][canvas]") {
  const em::io::Image image = em::test::gradient_image(23, 17);
  Canvas c(image);
  std::vector<uint8_t> mask(23 * 17);
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = (i * 7 % 5 == 0) ? static_cast<uint8_t>(1 + i % 255) : 0;
  const Rgb color{200, 40, 10};
  const double alpha = 0.3;
  c.blend_mask(mask, color, alpha);
  int wrong = 0;
  for (int y = 0; y < 17; ++y)
    for (int x = 0; x < 23; ++x) {
      const Rgb before{image.at(y, x, 0), image.at(y, x, 1), image.at(y, x, 2)};
      auto blend = [&](uint8_t v, uint8_t t) { return static_cast<uint8_t>(std::lround(v * (1 - alpha) + t * alpha)); };
      const Rgb want = mask[static_cast<size_t>(y) * 23 + x] ? Rgb{blend(before.r, color.r), blend(before.g, color.g),
                                                                   blend(before.b, color.b)}
                                                             : before;
      if (c.pixel(x, y) != want) ++wrong;
    }
  CHECK(wrong == 0);
  CHECK_THROWS_AS(c.blend_mask(std::vector<uint8_t>(10), color, 0.5), em::Error);
}

TEST_CASE("a canvas starts as its image: gray expanded, alpha composited on white", "[draw][canvas]") {
  em::io::Image gray{2, 1, 1, {0, 200}};
  Canvas g(gray);
  CHECK(g.pixel(1, 0) == Rgb{200, 200, 200});
  em::io::Image rgba{2, 1, 4, {255, 0, 0, 255, 0, 0, 255, 0}};  // opaque red, fully transparent blue
  Canvas a(rgba);
  CHECK(a.pixel(0, 0) == Rgb{255, 0, 0});
  CHECK(a.pixel(1, 0) == kWhite);
  const em::io::Image back = em::test::gradient_image(7, 5);
  CHECK(Canvas(back).to_image().pixels == back.pixels);
  CHECK_THROWS_AS(Canvas(0, 10), em::Error);
  CHECK_THROWS_AS(Canvas(40000, 10), em::Error);
}

TEST_CASE("non-ASCII UTF-8 text draws ink and measures wider than zero", "[draw][canvas]") {
  const std::string name = "Żółw Ωmega Жук café";
  Canvas c(400, 60, kWhite);
  c.text(10, 10, name, 20, em::draw::kBlack);
  const auto ink = em::test::ink_of(c, [](Rgb p) { return p != kWhite; });
  CHECK(ink.count > 100);
  CHECK(c.measure(name, 20).width > 100);
  CHECK(c.measure(name, 20).height > 20);
  // The accents are glyphs of their own, not the unaccented letters (nor the same missing-glyph box).
  Canvas z(40, 40, kWhite), z_dot(40, 40, kWhite), zhe(40, 40, kWhite);
  z.text(5, 5, "Z", 24, em::draw::kBlack);
  z_dot.text(5, 5, "Ż", 24, em::draw::kBlack);
  zhe.text(5, 5, "Ж", 24, em::draw::kBlack);
  CHECK(z.to_image().pixels != z_dot.to_image().pixels);
  CHECK(zhe.to_image().pixels != z_dot.to_image().pixels);
  // Text at the anchor's top: no ink above y, some in the first rows under it.
  CHECK(em::test::ink_of(zhe, [](Rgb p) { return p != kWhite; }).y0 >= 5);
}

TEST_CASE("fit_text cuts only between code points and always fits the width", "[draw][canvas]") {
  const Canvas c(10, 10);
  const std::string name = "Żółw Ωmega Жук café 日本";
  const double full = c.measure(name, 14).width;
  CHECK(c.fit_text(name, 14, full + 1) == name);
  for (double width = 0; width < full + 2; width += 1.5) {
    const std::string cut = c.fit_text(name, 14, width);
    INFO("max width " << width << ": \"" << cut << "\"");
    CHECK(em::io::is_valid_utf8(cut));
    CHECK(c.measure(cut, 14).width <= width);
    if (!cut.empty() && cut != name) {
      CHECK(cut.size() >= 3);
      CHECK(cut.substr(cut.size() - 3) == "…");
      CHECK(name.compare(0, cut.size() - 3, cut, 0, cut.size() - 3) == 0);  // a prefix of the name
    }
  }
  // Bytes that are not UTF-8 (a label from a Latin-1 file) come back as valid UTF-8, and draw.
  const std::string latin1 = "caf\xe9 \xff";
  CHECK(em::io::is_valid_utf8(c.fit_text(latin1, 14, 1000)));
  CHECK(em::io::is_valid_utf8(c.fit_text(latin1, 14, 20)));
  Canvas d(100, 30, kWhite);
  d.text(2, 2, latin1, 14, em::draw::kBlack);
  CHECK(em::test::ink_of(d, [](Rgb p) { return p != kWhite; }).count > 20);
}

TEST_CASE("paste scales a canvas into a box, edges included", "[draw][canvas]") {
  Canvas small(4, 2, Rgb{0, 128, 0});
  Canvas c(20, 20, kWhite);
  c.paste(small, 2, 3, 8, 4);
  CHECK(em::test::ink_of(c, [](Rgb p) { return p == Rgb{0, 128, 0}; }).count == 8 * 4);
  CHECK(em::test::ink_of(c, [](Rgb p) { return p != Rgb{0, 128, 0} && p != kWhite; }).count == 0);
  const em::io::Image wide = em::test::gradient_image(10000, 20);
  Canvas thumb(100, 10, kWhite);
  thumb.paste(Canvas(wide), 0, 0, 100, 10);  // 100:1, averaged
  CHECK(thumb.width() == 100);
}

TEST_CASE("heat_color is light for 0, dark for 1 and darker for every larger value", "[draw][canvas]") {
  auto lightness = [](Rgb c) { return c.r + c.g + c.b; };
  for (int k = 0; k < 100; ++k) CHECK(lightness(em::draw::heat_color(k / 100.0)) > lightness(em::draw::heat_color((k + 1) / 100.0)));
  CHECK(em::draw::heat_color(-1) == em::draw::heat_color(0));
  CHECK(em::draw::heat_color(2) == em::draw::heat_color(1));
  CHECK(em::draw::text_color_on(em::draw::heat_color(0)) == em::draw::kBlack);
  CHECK(em::draw::text_color_on(em::draw::heat_color(1)) == kWhite);
  CHECK(em::draw::class_color(0) == em::draw::class_color(20));
  CHECK(em::draw::class_color(0) != em::draw::class_color(1));
}
