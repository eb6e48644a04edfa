// The colour functions of canvas.hpp: class palette, heat map, text colour on a background.
#include <algorithm>
#include <array>
#include <cmath>

#include "em/draw/canvas.hpp"

namespace em::draw {
namespace {

// Ultralytics' Colors() palette, in its order: a class has the colour a YOLO user expects to see it in.
constexpr std::array<Rgb, 20> kPalette{{{0xFF, 0x38, 0x38}, {0xFF, 0x9D, 0x97}, {0xFF, 0x70, 0x1F}, {0xFF, 0xB2, 0x1D},
                                        {0xCF, 0xD2, 0x31}, {0x48, 0xF9, 0x0A}, {0x92, 0xCC, 0x17}, {0x3D, 0xDB, 0x86},
                                        {0x1A, 0x93, 0x34}, {0x00, 0xD4, 0xBB}, {0x2C, 0x99, 0xA8}, {0x00, 0xC2, 0xFF},
                                        {0x34, 0x45, 0x93}, {0x64, 0x73, 0xFF}, {0x00, 0x18, 0xEC}, {0x84, 0x38, 0xFF},
                                        {0x52, 0x00, 0x85}, {0xCB, 0x38, 0xFF}, {0xFF, 0x95, 0xC8}, {0xFF, 0x37, 0xC7}}};

// ColorBrewer's 9-class "Blues" (matplotlib's Blues, which confusion matrices are usually drawn in): each step darker
// than the one before, so the order of values is the order of lightness.
constexpr std::array<Rgb, 9> kBlues{{{0xF7, 0xFB, 0xFF}, {0xDE, 0xEB, 0xF7}, {0xC6, 0xDB, 0xEF}, {0x9E, 0xCA, 0xE1},
                                     {0x6B, 0xAE, 0xD6}, {0x42, 0x92, 0xC6}, {0x21, 0x71, 0xB5}, {0x08, 0x51, 0x9C},
                                     {0x08, 0x30, 0x6B}}};

double linear(uint8_t channel) {  // sRGB -> linear light, for luminance
  const double c = channel / 255.0;
  return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
}

}  // namespace

Rgb class_color(int64_t index) {
  const auto n = static_cast<int64_t>(kPalette.size());
  return kPalette[static_cast<size_t>(((index % n) + n) % n)];
}

Rgb heat_color(double v) {
  if (std::isnan(v)) return {211, 211, 211};
  const double t = std::clamp(v, 0.0, 1.0) * (kBlues.size() - 1);
  const auto i = std::min(static_cast<size_t>(t), kBlues.size() - 2);
  const double f = t - i;
  auto mix = [f](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a + (b - a) * f)); };
  return {mix(kBlues[i].r, kBlues[i + 1].r), mix(kBlues[i].g, kBlues[i + 1].g), mix(kBlues[i].b, kBlues[i + 1].b)};
}

Rgb text_color_on(Rgb background) {
  // WCAG: black text contrasts more than white above relative luminance ~0.179.
  const double y = 0.2126 * linear(background.r) + 0.7152 * linear(background.g) + 0.0722 * linear(background.b);
  return y > 0.179 ? kBlack : kWhite;
}

}  // namespace em::draw
