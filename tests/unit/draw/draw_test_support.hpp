// Pixel helpers for the drawing tests: what changed on a canvas, where its ink is, images made to order.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <functional>

#include "em/draw/canvas.hpp"
#include "em/io/image.hpp"

namespace em::test {

// Each channel within `tolerance` of the expected colour.
inline bool near(draw::Rgb a, draw::Rgb b, int tolerance) {
  return std::abs(a.r - b.r) <= tolerance && std::abs(a.g - b.g) <= tolerance && std::abs(a.b - b.b) <= tolerance;
}

// The bounding box [x0, x1) x [y0, y1) of the pixels where `is_ink` holds, and how many there are.
struct Ink {
  int count = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};
// Only pixels in rows [from_y, to_y) are looked at, when given.
inline Ink ink_of(const draw::Canvas& c, const std::function<bool(draw::Rgb)>& is_ink, int from_y = 0, int to_y = -1) {
  Ink ink{0, c.width(), c.height(), 0, 0};
  const io::Image image = c.to_image();
  for (int y = from_y; y < (to_y < 0 ? c.height() : to_y); ++y)
    for (int x = 0; x < c.width(); ++x) {
      if (!is_ink({image.at(y, x, 0), image.at(y, x, 1), image.at(y, x, 2)})) continue;
      ++ink.count;
      ink.x0 = std::min(ink.x0, x), ink.y0 = std::min(ink.y0, y);
      ink.x1 = std::max(ink.x1, x + 1), ink.y1 = std::max(ink.y1, y + 1);
    }
  return ink;
}

// An RGB image whose pixels all differ a little (so a blend is checked on many values, not one).
inline io::Image gradient_image(int width, int height) {
  io::Image image{width, height, 3, {}};
  image.pixels.resize(image.size());
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      image.at(y, x, 0) = static_cast<uint8_t>((x * 7 + y * 3) % 256);
      image.at(y, x, 1) = static_cast<uint8_t>((x * 2 + y * 11) % 256);
      image.at(y, x, 2) = static_cast<uint8_t>(255 - (x * 5) % 256);
    }
  return image;
}

inline io::Image solid_image(int width, int height, draw::Rgb c) {
  io::Image image{width, height, 3, {}};
  image.pixels.resize(image.size());
  for (size_t i = 0; i < image.pixels.size(); i += 3) image.pixels[i] = c.r, image.pixels[i + 1] = c.g, image.pixels[i + 2] = c.b;
  return image;
}

}  // namespace em::test
